"""``apogee_dr17_allstar``: ASPCAP labels from the APOGEE DR17 allStar catalogue.

Reads HDU1 of ``allStar-dr17-synspec_rev1.fits`` (or ``allStarLite``, or any smaller table with the same
column names): one row per APOGEE_ID × TELESCOPE × FIELD. A descriptor names labels in lower case
(``teff``, ``logg``, ``m_h``, ``alpha_m``, ``mg_fe``…); each maps to the upper-case column, its ``_ERR``
column and, for abundances, its ``_FLAG`` column. Pre-DR16 tables name [M/H] and [α/M] ``PARAM_M_H`` and
``PARAM_ALPHA_M`` and fill missing values with −9999; both are understood.

Bit numbers (``ASPCAPFLAG``, ``STARFLAG``, ``EXTRATARG``): see :mod:`starlabel_apogee.bits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from starlabel.components import ComponentOptions, LabelCuts, LabelSource
from starlabel.containers import LabelTable
from starlabel.tables import find_column, float_column, id_column, read_table, resolve_column
from starlabel_apogee.bits import ASPCAPFLAG, EXTRATARG, STARFLAG, STARFLAG_BAD, bit_value
from starlabel_apogee.citations import ASPCAP_CITATION

PARAMETERS: dict[str, str] = {
    "teff": "K",
    "logg": "dex",
    "m_h": "dex",
    "alpha_m": "dex",
    "vmicro": "km/s",
    "vmacro": "km/s",
    "vsini": "km/s",
    "teff_spec": "K",
    "logg_spec": "dex",
    "fe_h": "dex",
}
"""Named parameters of the DR17 allStar data model and their units."""

ELEMENTS: tuple[str, ...] = (
    "c", "ci", "n", "o", "na", "mg", "al", "si", "p", "s", "k", "ca", "ti", "tiii", "v", "cr", "mn", "co", "ni",
    "cu", "ce",
)  # fmt: skip
"""Elements with an ``X_FE`` column in DR17 (FE itself is ``FE_H``)."""

ALIASES: dict[str, tuple[str, ...]] = {"m_h": ("M_H", "PARAM_M_H"), "alpha_m": ("ALPHA_M", "PARAM_ALPHA_M")}
"""Columns tried for a label, in order (DR12–DR14 tables use ``PARAM_`` names)."""

MISSING_SENTINEL = -9999.0
"""Values at or below this are missing (pre-DR17 fill value)."""

LAYOUT = (
    "Expected an APOGEE allStar table (HDU1): APOGEE_ID, the label columns (TEFF, LOGG, M_H, ALPHA_M, X_FE, "
    "FE_H) with _ERR and, for abundances, _FLAG columns, ASPCAPFLAG, STARFLAG, EXTRATARG, SNR and, to join "
    "by Gaia id, GAIAEDR3_SOURCE_ID"
)
JOIN_COLUMNS = {"gaia": "GAIAEDR3_SOURCE_ID", "apogee_id": "APOGEE_ID"}


class AllStarOptions(ComponentOptions):
    """Options of ``apogee_dr17_allstar``."""

    join_by: Literal["gaia", "apogee_id"] = Field(
        "gaia",
        description="source id of the labels: gaia = GAIAEDR3_SOURCE_ID (int64, 0 = no match, row dropped); "
        "apogee_id = APOGEE_ID (string, as the apStar/apVisit readers give)",
    )
    hdu: int = Field(1, ge=1, description="FITS extension of the main table")


class AllStarCuts(LabelCuts):
    """Row selection for ``apogee_dr17_allstar``; rows failing a cut are dropped."""

    aspcapflag: Literal["ok", "any"] = Field(
        "ok", description="ok: drop rows with ASPCAPFLAG bit 23 (STAR_BAD) set; any: keep them"
    )
    starflag_bad_bits: tuple[str | int, ...] = Field(
        STARFLAG_BAD,
        description="STARFLAG bits (names or numbers) that drop a row; default the pipeline's BAD set "
        "BAD_PIXELS (0), VERY_BRIGHT_NEIGHBOR (3), BAD_RV_COMBINATION (18), RV_FAIL (22); [] keeps all",
    )
    snr_min: float | None = Field(None, description="drop rows with SNR below this (or SNR missing)")
    extratarg: Literal["primary_only", "any"] = Field(
        "primary_only",
        description="primary_only: drop EXTRATARG bit 4 (DUPLICATE: not the highest-S/N entry of an APOGEE_ID)",
    )
    teff_range: tuple[float | None, float | None] | None = Field(None, description="keep TEFF in [low, high]")
    logg_range: tuple[float | None, float | None] | None = Field(None, description="keep LOGG in [low, high]")

    @field_validator("starflag_bad_bits")
    @classmethod
    def _known_bits(cls, bits: tuple[str | int, ...]) -> tuple[str | int, ...]:
        bit_value(bits, STARFLAG, "starflag_bad_bits")
        return bits


def label_column(table: Any, label: str) -> str | None:
    """Column holding ``label`` (case-insensitive), trying the pre-DR16 aliases, or None."""
    return find_column(table.colnames, ALIASES.get(label, (label.upper(),)))


class ApogeeDr17AllStar(LabelSource):
    """APOGEE DR17 ASPCAP labels (Teff, logg, [M/H], [α/M], [X/Fe]) from allStar, with quality cuts."""

    name = "apogee_dr17_allstar"
    Options = AllStarOptions
    Cuts = AllStarCuts
    citation = ASPCAP_CITATION
    data_model_url = "https://data.sdss.org/datamodel/files/APOGEE_ASPCAP/APRED_VERS/ASPCAP_VERS/allStar.html"
    status = "experimental"

    def label_names(self) -> list[str]:
        """Named parameters, ``fe_h`` and every DR17 ``x_fe`` abundance."""
        return [*PARAMETERS, *(f"{element}_fe" for element in ELEMENTS)]

    def load(self, path: Path, columns: Sequence[str], cuts: LabelCuts) -> LabelTable:
        """Read ``columns`` for the rows of ``path`` that pass ``cuts``.

        A label is ok when its value is finite (and above −9999), its error is finite and positive, and,
        where a ``<LABEL>_FLAG`` column exists (abundances), the flag is 0. Rows without a join id
        (Gaia id 0 or null, empty APOGEE_ID) are dropped; when an id remains on several rows the one of
        highest SNR is kept.

        Raises
        ------
        MissingColumnError
            A label, its error, a cut's column or the join column is absent (the message lists the columns).
        DataFileError
            Unreadable table.
        ValueError
            A label that the allStar data model does not have.
        """
        from starlabel.join import keep_best

        if not isinstance(cuts, AllStarCuts):
            raise TypeError(f"{self.name} expects {AllStarCuts.__name__} cuts, got {type(cuts).__name__}")
        unknown = [c for c in columns if c not in self.label_names()]
        if unknown:
            raise ValueError(
                f"{self.name}: unknown label(s) {', '.join(unknown)}; known: {', '.join(self.label_names())}"
            )
        path = Path(path)
        table = read_table(path, self.options.hdu)
        ids, null = id_column(table, resolve_column(table, JOIN_COLUMNS[self.options.join_by], path, LAYOUT), path)
        keep = ~null & ((ids != 0) if ids.dtype.kind in "iu" else (ids != ""))
        keep &= self._row_cuts(table, path, cuts)
        snr = self._snr(table, path)
        rows = np.flatnonzero(keep)
        rows = rows[keep_best(ids[rows], snr[rows])]
        values = np.full((rows.size, len(columns)), np.nan)
        errors = np.full((rows.size, len(columns)), np.nan)
        ok = np.zeros((rows.size, len(columns)), dtype=bool)
        for j, label in enumerate(columns):
            values[:, j], errors[:, j], ok[:, j] = self._label(table, path, label, rows)
        units = {label: self._unit(label) for label in columns}
        return LabelTable(ids[rows], list(columns), values, errors, ok, units)

    # ------------------------------------------------------------------------------------------- helpers
    @staticmethod
    def _unit(label: str) -> str:
        return PARAMETERS.get(label, "dex")

    @staticmethod
    def _float(table: Any, path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
        values, missing = float_column(table, resolve_column(table, name, path, LAYOUT), path)
        missing = missing | (values <= MISSING_SENTINEL)
        return np.where(missing, np.nan, values), missing

    @staticmethod
    def _bits(table: Any, path: Path, name: str, hint: str) -> np.ndarray:
        column = table[resolve_column(table, name, path, f"{LAYOUT}; or {hint}")]
        data = np.ma.filled(column, 0) if np.ma.isMaskedArray(column) else np.asarray(column)
        return np.asarray(data).astype(np.int64)

    def _snr(self, table: Any, path: Path) -> np.ndarray:
        if find_column(table.colnames, ["SNR"]) is None:
            return np.zeros(len(table))
        return self._float(table, path, "SNR")[0]

    def _row_cuts(self, table: Any, path: Path, cuts: AllStarCuts) -> np.ndarray:
        keep = np.ones(len(table), dtype=bool)
        if cuts.aspcapflag == "ok":
            flags = self._bits(table, path, "ASPCAPFLAG", "set cuts.aspcapflag: any")
            keep &= (flags & np.int64(1 << ASPCAPFLAG["STAR_BAD"])) == 0
        bad_star = bit_value(cuts.starflag_bad_bits, STARFLAG, "starflag_bad_bits")
        if bad_star:
            keep &= (self._bits(table, path, "STARFLAG", "set cuts.starflag_bad_bits: []") & bad_star) == 0
        if cuts.extratarg == "primary_only":
            extratarg = self._bits(table, path, "EXTRATARG", "set cuts.extratarg: any")
            keep &= (extratarg & (1 << EXTRATARG["DUPLICATE"])) == 0
        if cuts.snr_min is not None:
            snr, missing = self._float(table, path, "SNR")
            keep &= ~missing & (snr >= cuts.snr_min)
        for name, bounds in (("TEFF", cuts.teff_range), ("LOGG", cuts.logg_range)):
            if bounds is None:
                continue
            value, missing = self._float(table, path, name)
            inside = ~missing
            if bounds[0] is not None:
                inside &= value >= bounds[0]
            if bounds[1] is not None:
                inside &= value <= bounds[1]
            keep &= inside
        return keep

    def _label(self, table: Any, path: Path, label: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        column = label_column(table, label) or label.upper()
        value, missing = self._float(table, path, column)
        error, error_missing = self._float(table, path, f"{column}_ERR")
        ok = ~missing & ~error_missing & (error > 0)
        flag = find_column(table.colnames, [f"{label.upper()}_FLAG"])
        if flag is not None:
            ok &= self._bits(table, path, flag, "") == 0
        return value[rows], error[rows], ok[rows]
