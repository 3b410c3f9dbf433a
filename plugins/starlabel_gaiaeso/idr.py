"""``gaia_eso_idr``: Gaia-ESO recommended astrophysical parameters (DR5.1 / iDR6 catalogue).

Reads HDU1 of the recommended-parameter catalogue (or any table with the same column names; names are
case-insensitive): one row per CNAME (a star observed in several configurations may repeat; the row of
highest ``SNR`` is kept). Labels and their columns:

==========  ==========  ==============  =====
label       value       error           unit
==========  ==========  ==============  =====
teff        TEFF        E_TEFF          K
logg        LOGG        E_LOGG          dex
feh         FEH         E_FEH           dex
alpha_fe    ALPHA_FE    E_ALPHA_FE      dex
==========  ==========  ==============  =====

Missing values: NaN, null (TNULL) or the archive's fill values (≤ −9999, e.g. −9.999995e8) are missing.
Flag columns (strings of WG14 codes; empty = no flag): ``PECULI`` (peculiarities, 1000–2999), ``REMARK``
(3000–8999) and ``TECH`` (technical issues, 9000–15000). Column names follow the GES archive schema
(docs/FORMATS.md §5); the Gaia id column name of DR5.1 is unconfirmed, so several are tried
(:data:`GAIA_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from starlabel.components import ComponentOptions, LabelCuts, LabelSource
from starlabel.containers import LabelTable
from starlabel.errors import MissingColumnError
from starlabel.tables import find_column, float_column, id_column, read_table, resolve_column
from starlabel_gaiaeso.citations import GES_ARCHIVE_URL, IDR_CITATION

LABELS: dict[str, tuple[str, str, str]] = {
    "teff": ("TEFF", "E_TEFF", "K"),
    "logg": ("LOGG", "E_LOGG", "dex"),
    "feh": ("FEH", "E_FEH", "dex"),
    "alpha_fe": ("ALPHA_FE", "E_ALPHA_FE", "dex"),
}
"""Label → (value column, error column, unit)."""

GAIA_COLUMNS: tuple[str, ...] = (
    "GAIAEDR3_SOURCE_ID",
    "GAIA_EDR3_SOURCE_ID",
    "GAIADR3_SOURCE_ID",
    "GAIA_DR3_SOURCE_ID",
    "GAIA_SOURCE_ID",
    "GAIA_ID",
    "SOURCE_ID",
)
"""Columns tried, in order, for ``join_by: gaia`` when ``gaia_column`` is not given."""

DEFAULT_FLAGS: tuple[str, ...] = ("PECULI", "TECH")
"""Flag columns whose non-empty entries drop a row by default (each only where the table has it)."""

MISSING_SENTINEL = -9999.0
"""Values at or below this are missing (archive fill values)."""

LAYOUT = (
    "Expected a Gaia-ESO recommended-parameter table (HDU1): CNAME, TEFF/E_TEFF, LOGG/E_LOGG, FEH/E_FEH, "
    "ALPHA_FE/E_ALPHA_FE, SNR, SETUP, flag strings PECULI/REMARK/TECH and, to join by Gaia id, a Gaia "
    f"source id column ({', '.join(GAIA_COLUMNS)})"
)


class IdrOptions(ComponentOptions):
    """Options of ``gaia_eso_idr``."""

    join_by: Literal["cname", "gaia"] = Field(
        "cname",
        description="source id of the labels: cname = CNAME (string, as eso_sdp_1d gives); gaia = the Gaia "
        "source id (int64; 0 or null → row dropped)",
    )
    gaia_column: str | None = Field(
        None, description=f"Gaia id column for join_by: gaia; default: first of {GAIA_COLUMNS}"
    )
    hdu: int = Field(1, ge=1, description="FITS extension of the catalogue")


class IdrCuts(LabelCuts):
    """Row selection for ``gaia_eso_idr``; rows failing a cut are dropped."""

    snr_min: float | None = Field(None, description="drop rows with SNR below this (or SNR missing)")
    reject_flags: tuple[str, ...] | None = Field(
        None,
        description="flag columns whose non-empty entry drops a row; default (null): PECULI and TECH where the "
        "table has them; a list: those columns, each required; []: keep flagged rows",
    )
    require_flags: tuple[str, ...] = Field(
        (), description="keep only rows whose flag columns (PECULI, REMARK, TECH) contain every one of these codes"
    )
    setup: str | None = Field(None, description="keep rows whose SETUP contains this (e.g. HR15N)")


class GaiaEsoIdr(LabelSource):
    """Gaia-ESO recommended Teff, logg, [Fe/H], [α/Fe] (CNAME or Gaia id), with S/N and flag cuts."""

    name = "gaia_eso_idr"
    Options = IdrOptions
    Cuts = IdrCuts
    citation = IDR_CITATION
    data_model_url = GES_ARCHIVE_URL
    status = "experimental"

    def label_names(self) -> list[str]:
        """``teff``, ``logg``, ``feh``, ``alpha_fe``."""
        return list(LABELS)

    def load(self, path: Path, columns: Sequence[str], cuts: LabelCuts) -> LabelTable:
        """Read ``columns`` for the rows of ``path`` that pass ``cuts``.

        A label is ok when its value is finite (above −9999) and its error finite and positive. Rows
        without a join id are dropped; an id on several rows keeps the row of highest SNR.

        Raises
        ------
        MissingColumnError
            A label, its error, a cut's column or the join column is absent (the message lists the columns).
        DataFileError
            Unreadable table.
        ValueError
            A label this source does not have.
        """
        from starlabel.join import keep_best

        if not isinstance(cuts, IdrCuts):
            raise TypeError(f"{self.name} expects {IdrCuts.__name__} cuts, got {type(cuts).__name__}")
        unknown = [c for c in columns if c not in LABELS]
        if unknown:
            raise ValueError(f"{self.name}: unknown label(s) {', '.join(unknown)}; known: {', '.join(LABELS)}")
        path = Path(path)
        table = read_table(path, self.options.hdu)
        ids, null = id_column(table, self._join_column(table, path), path)
        keep = ~null & ((ids != 0) if ids.dtype.kind in "iu" else (ids != ""))
        keep &= self._row_cuts(table, path, cuts)
        snr = self._float(table, path, "SNR")[0] if find_column(table.colnames, ["SNR"]) else np.zeros(len(table))
        rows = np.flatnonzero(keep)
        rows = rows[keep_best(ids[rows], np.nan_to_num(snr[rows], nan=-np.inf))]
        shape = (rows.size, len(columns))
        values, errors, ok = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, dtype=bool)
        for j, label in enumerate(columns):
            value_name, error_name, _ = LABELS[label]
            value, missing = self._float(table, path, value_name)
            error, error_missing = self._float(table, path, error_name)
            values[:, j], errors[:, j] = value[rows], error[rows]
            ok[:, j] = (~missing & ~error_missing & (error > 0))[rows]
        units = {label: LABELS[label][2] for label in columns}
        return LabelTable(ids[rows], list(columns), values, errors, ok, units)

    # ------------------------------------------------------------------------------------------- helpers
    def _join_column(self, table: Any, path: Path) -> str:
        if self.options.join_by == "cname":
            return resolve_column(table, "CNAME", path, LAYOUT)
        if self.options.gaia_column is not None:
            return resolve_column(table, self.options.gaia_column, path, LAYOUT)
        found = find_column(table.colnames, GAIA_COLUMNS)
        if found is None:
            raise MissingColumnError(str(path), GAIA_COLUMNS[0], table.colnames, f"set options.gaia_column. {LAYOUT}")
        return found

    @staticmethod
    def _float(table: Any, path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
        values, missing = float_column(table, resolve_column(table, name, path, LAYOUT), path)
        missing = missing | (values <= MISSING_SENTINEL)
        return np.where(missing, np.nan, values), missing

    @staticmethod
    def _strings(table: Any, path: Path, name: str) -> np.ndarray:
        column = table[resolve_column(table, name, path, LAYOUT)]
        data = np.ma.filled(column, "") if np.ma.isMaskedArray(column) else np.asarray(column)
        return np.char.strip(np.asarray(data).astype(str))

    def _row_cuts(self, table: Any, path: Path, cuts: IdrCuts) -> np.ndarray:
        keep = np.ones(len(table), dtype=bool)
        if cuts.snr_min is not None:
            snr, missing = self._float(table, path, "SNR")
            keep &= ~missing & (snr >= cuts.snr_min)
        flags = cuts.reject_flags
        if flags is None:
            flags = tuple(name for name in DEFAULT_FLAGS if find_column(table.colnames, [name]) is not None)
        for name in flags:
            keep &= self._strings(table, path, name) == ""
        if cuts.require_flags:
            present = [n for n in ("PECULI", "REMARK", "TECH") if find_column(table.colnames, [n]) is not None]
            if not present:
                raise MissingColumnError(str(path), "PECULI", table.colnames, f"cuts.require_flags needs it. {LAYOUT}")
            joined = np.array(
                ["|".join(row) for row in zip(*(self._strings(table, path, n) for n in present), strict=True)]
            )
            for code in cuts.require_flags:
                keep &= np.char.find(joined, code) >= 0
        if cuts.setup is not None:
            setups = np.char.upper(self._strings(table, path, "SETUP"))
            keep &= np.char.find(setups, cuts.setup.upper()) >= 0
        return keep
