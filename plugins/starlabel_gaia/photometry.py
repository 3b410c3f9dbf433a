"""``gaia_photometry``: Gaia G, BP, RP mean magnitudes (and BP−RP, G−RP) from any table file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from starlabel.components import AuxiliaryProvider, ComponentOptions
from starlabel.containers import AuxTable, Population
from starlabel.errors import MissingColumnError
from starlabel.tables import find_column, float_column, id_column, read_table
from starlabel_gaia.ids import null_ids

BANDS: tuple[str, ...] = ("g", "bp", "rp")
ID_CANDIDATES: tuple[str, ...] = ("source_id", "gaiaedr3_source_id", "gaiadr3_source_id")
SENTINEL_BELOW = -90.0
"""Magnitudes below this are placeholders (−99, −999, −9999 in older catalogues), read as missing."""


def band_candidates(band: str) -> list[str]:
    """Column names tried for ``band``: the Gaia archive's, then those of SDSS/APOGEE tables."""
    return [f"phot_{band}_mean_mag", f"gaiaedr3_phot_{band}_mean_mag", f"gaiadr3_phot_{band}_mean_mag"]


def check_simulation_ids(provider: str, population: Population, ids: np.ndarray) -> np.ndarray:
    """``ids`` as an array, checked to hold one id per star of ``population``.

    Raises
    ------
    SimulationError
        Another number of ids than stars.
    """
    from starlabel.errors import SimulationError

    ids = np.asarray(ids)
    if ids.shape != (len(population),):
        raise SimulationError(
            f"{provider}: {ids.shape[0] if ids.ndim else 0} ids for a population of {len(population)} stars; "
            "simulate needs one id per star"
        )
    return ids


class GaiaPhotometryOptions(ComponentOptions):
    """Options of ``gaia_photometry``."""

    colours: bool = Field(True, description="also return the colours bp_rp (BP−RP) and g_rp (G−RP)")
    id_column: str | None = Field(
        None, description=f"source-id column; default: the first present of {', '.join(ID_CANDIDATES)}"
    )
    g_column: str | None = Field(None, description="G magnitude column; default: " + ", ".join(band_candidates("g")))
    bp_column: str | None = Field(None, description="BP magnitude column; default: " + ", ".join(band_candidates("bp")))
    rp_column: str | None = Field(None, description="RP magnitude column; default: " + ", ".join(band_candidates("rp")))
    hdu: int | str | None = Field(None, description="FITS extension to read (default 1)")


class GaiaPhotometry(AuxiliaryProvider):
    """Gaia G, BP and RP mean magnitudes, optionally with BP−RP and G−RP, joined by source id."""

    name = "gaia_photometry"
    Options = GaiaPhotometryOptions
    citation = (
        "Gaia Collaboration, Vallenari et al. 2023, A&A 674, A1 (Gaia DR3); Riello et al. 2021, A&A 649, A3 "
        "(EDR3 photometry)"
    )
    data_model_url = (
        "https://gea.esac.esa.int/archive/documentation/GDR3/Gaia_archive/chap_datamodel/"
        "sec_dm_main_source_catalogue/ssec_dm_gaia_source.html"
    )
    status = "experimental"

    def columns(self) -> list[str]:
        """``g, bp, rp`` and, when ``colours`` is on, ``bp_rp, g_rp``."""
        return [*BANDS, *(("bp_rp", "g_rp") if self.options.colours else ())]

    def load(self, paths: Sequence[Path]) -> AuxTable:
        """Read the magnitudes of every star in ``paths`` (rows with a null id are dropped).

        A magnitude is missing where the table has a null, masked, non-finite or placeholder value; a
        colour is missing where either of its magnitudes is. Missing values are NaN in ``values`` and
        True in ``missing``, never zero.

        Raises
        ------
        MissingColumnError
            A column is not found; the message lists the file's columns and the option to set.
        DataFileError
            Unreadable file, float ids, or files mixing integer and string ids.
        """
        return AuxTable.concat(self.columns(), [(str(path), *self._load_one(Path(path))) for path in paths])

    def _load_one(self, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        table = read_table(path, self.options.hdu)
        id_name = self._resolve(table, path, "id_column", self.options.id_column, ID_CANDIDATES, "source id")
        sid, id_missing = id_column(table, id_name, path)
        keep = ~null_ids(sid, id_missing)
        mags, bad = {}, {}
        for band in BANDS:
            name = self._resolve(
                table,
                path,
                f"{band}_column",
                getattr(self.options, f"{band}_column"),
                band_candidates(band),
                f"{band.upper()} mean magnitude",
            )
            mags[band], bad[band] = float_column(table, name, path)
            bad[band] |= mags[band] < SENTINEL_BELOW
            mags[band][bad[band]] = np.nan
        if self.options.colours:
            for colour, (a, b) in {"bp_rp": ("bp", "rp"), "g_rp": ("g", "rp")}.items():
                bad[colour] = bad[a] | bad[b]
                mags[colour] = np.where(bad[colour], np.nan, mags[a] - mags[b])
        names = self.columns()
        values = np.stack([mags[c] for c in names], axis=1)[keep]
        missing = np.stack([bad[c] for c in names], axis=1)[keep]
        return sid[keep], values, missing

    def simulate(self, population: Population, ids: np.ndarray) -> dict[str, np.ndarray]:
        """``gaia_source`` photometry of ``population``: the id column (``ids``), the three magnitude columns
        :meth:`load` reads (named by the options, else ``phot_<band>_mean_mag``) and the
        ``phot_<band>_mean_flux``, ``_flux_error``, ``_flux_over_error`` columns; G, BP, RP from V and V − I
        (Riello et al. 2021) with DR3-like noise, see :mod:`starlabel_gaia.simulate_aux`.

        Raises
        ------
        SimulationError
            The population has no V or I magnitude, or ``ids`` is not one per star.
        """
        from starlabel_gaia.simulate_aux import photometry_columns

        out = {self.options.id_column or ID_CANDIDATES[0]: check_simulation_ids(self.name, population, ids)}
        columns = photometry_columns(population, self.name)
        for band in BANDS:
            out[getattr(self.options, f"{band}_column") or band_candidates(band)[0]] = columns[f"phot_{band}_mean_mag"]
        out |= {key: value for key, value in columns.items() if not key.endswith("_mean_mag")}
        return out

    @staticmethod
    def _resolve(table: Any, path: Path, option: str, given: str | None, candidates: Sequence[str], what: str) -> str:
        """Column named by the option, else the first candidate present (case-insensitive)."""
        found = find_column(table.colnames, [given] if given else candidates)
        if found is not None:
            return found
        if given:
            hint = f"Option {option} names it; set {option} to the column holding the {what}"
        else:
            hint = f"Looked for {', '.join(candidates)}; set option {option} to the column holding the {what}"
        raise MissingColumnError(str(path), given or candidates[0], list(table.colnames), hint)
