"""``gaia_xp_coefficients``: the 55 BP + 55 RP Hermite-basis coefficients of Gaia DR3 XP continuous spectra.

Reads ``xp_continuous_mean_spectrum`` rows in every form the archive publishes (see
:mod:`starlabel_gaia.xp_archive`): DataLink/bulk CSV, ECSV, FITS, VOTable (TABLEDATA and BINARY2) and
DataLink zip bundles (members ``XP_CONTINUOUS-Gaia DR3 <id>.<ext>``), or any table holding the two array
columns (a ``gaia_source`` extract joined with the coefficients).

Normalisation (option ``normalise``; default ``by_first_coefficient``), so that the network learns the
shape of the spectrum rather than the brightness of the star:

``by_first_coefficient``
    every coefficient, BP and RP, divided by the first BP coefficient ``bp_0`` (≈ the integrated BP flux
    in the Hermite basis). The BP/RP ratio, a colour, is kept. A star without BP (or with ``bp_0`` not
    finite and positive) has no scale: all 110 columns are missing.
``by_g_flux``
    every coefficient divided by ``phot_g_mean_flux`` (e⁻ s⁻¹) of the same table (option ``g_flux_column``);
    needs a table that has it (a ``gaia_source`` join). Non-finite or non-positive flux → all missing.
``none``
    coefficients as published (no unit in the files; e⁻ s⁻¹ per basis function in the DR3 calibration).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from starlabel.components import AuxiliaryProvider, ComponentOptions
from starlabel.containers import AuxTable, Population
from starlabel.errors import MissingColumnError
from starlabel.tables import find_column, float_column, id_column
from starlabel_gaia.ids import null_ids
from starlabel_gaia.xp_archive import ArchiveTable, array_column, read_archive_tables

N_COEFFICIENTS = 55
"""BP and RP each have 55 basis functions in DR3 (``X_n_parameters``)."""
ID_CANDIDATES: tuple[str, ...] = ("source_id", "gaiaedr3_source_id", "gaiadr3_source_id")
LAYOUT = (
    "expected a Gaia DR3 xp_continuous_mean_spectrum table (archive CSV/ECSV/FITS/VOTable or DataLink zip): "
    "a source-id column and 55-element array columns 'bp_coefficients' and 'rp_coefficients'"
)


def coefficient_columns() -> list[str]:
    """``bp_0 … bp_54, rp_0 … rp_54``."""
    return [f"{band}_{i}" for band in ("bp", "rp") for i in range(N_COEFFICIENTS)]


class GaiaXpCoefficientsOptions(ComponentOptions):
    """Options of ``gaia_xp_coefficients``."""

    normalise: Literal["none", "by_g_flux", "by_first_coefficient"] = Field(
        "by_first_coefficient",
        description="divide BP and RP coefficients by the first BP coefficient, by phot_g_mean_flux, or not at all",
    )
    id_column: str | None = Field(
        None, description=f"source-id column; default: the first present of {', '.join(ID_CANDIDATES)}"
    )
    bp_column: str = Field("bp_coefficients", description="array column of the 55 BP coefficients")
    rp_column: str = Field("rp_coefficients", description="array column of the 55 RP coefficients")
    g_flux_column: str = Field("phot_g_mean_flux", description="G flux column used by normalise: by_g_flux")
    hdu: int | str | None = Field(None, description="FITS extension to read (default 1)")


class GaiaXpCoefficients(AuxiliaryProvider):
    """Gaia DR3 XP continuous coefficients (55 BP + 55 RP), optionally normalised, joined by source id."""

    name = "gaia_xp_coefficients"
    Options = GaiaXpCoefficientsOptions
    citation = (
        "Gaia Collaboration, Vallenari et al. 2023, A&A 674, A1 (Gaia DR3); De Angeli et al. 2023, A&A 674, A2 "
        "(BP/RP spectra); Carrasco et al. 2021, A&A 652, A86 (XP internal calibration, basis functions)"
    )
    data_model_url = (
        "https://gea.esac.esa.int/archive/documentation/GDR3/Gaia_archive/chap_datamodel/"
        "sec_dm_spectroscopic_tables/ssec_dm_xp_continuous_mean_spectrum.html"
    )
    status = "experimental"

    def columns(self) -> list[str]:
        """``bp_0 … bp_54, rp_0 … rp_54`` (110 columns)."""
        return coefficient_columns()

    def load(self, paths: Sequence[Path]) -> AuxTable:
        """Read the coefficients of every source in ``paths`` (rows with a null id are dropped).

        A band without coefficients (the RP-only source 5405570973190252288; empty CSV fields, zero-length
        FITS arrays, VOTable nulls) has its 55 columns missing: NaN in ``values``, True in ``missing``,
        never zero. Normalisation may mask more (see the module docstring).

        Raises
        ------
        MissingColumnError
            No id or coefficient column (or no G flux column for ``by_g_flux``).
        DataFileError
            Unreadable file, a zip without XP_CONTINUOUS member, arrays of another length than 55.
        """
        parts = [
            (str(path), *self._load_table(part))
            for path in map(Path, paths)
            for part in read_archive_tables(path, "XP_CONTINUOUS", self.options.hdu)
        ]
        return AuxTable.concat(self.columns(), parts)

    def simulate(self, population: Population, ids: np.ndarray) -> dict[str, np.ndarray]:
        """The id column (``ids``) and (N, 55) ``bp_coefficients``, ``rp_coefficients`` (named by the options)
        of **XP-like** coefficients: each star's Planck continuum projected on 55 Legendre functions over
        the BP and RP ranges (see :mod:`starlabel_gaia.simulate_aux`; not Gaia's Hermite basis). With
        ``normalise: by_g_flux`` also the G flux column (from the simulated photometry).

        Raises
        ------
        SimulationError
            ``ids`` is not one per star; with ``by_g_flux``, the population has no V or I magnitude.
        """
        from starlabel_gaia.photometry import check_simulation_ids
        from starlabel_gaia.simulate_aux import photometry_columns, xp_coefficients

        options = self.options
        out = {options.id_column or ID_CANDIDATES[0]: check_simulation_ids(self.name, population, ids)}
        out[options.bp_column], out[options.rp_column] = xp_coefficients(population)
        if options.normalise == "by_g_flux":
            out[options.g_flux_column] = photometry_columns(population, self.name)["phot_g_mean_flux"]
        return out

    def _load_table(self, part: ArchiveTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        table, label = part.table, part.label
        id_name = find_column(table.colnames, [self.options.id_column] if self.options.id_column else ID_CANDIDATES)
        if id_name is None:
            raise MissingColumnError(label, self.options.id_column or ID_CANDIDATES[0], list(table.colnames), LAYOUT)
        sid, id_missing = id_column(table, id_name, label)
        keep = ~null_ids(sid, id_missing)
        bands = []
        for option in ("bp_column", "rp_column"):
            wanted = getattr(self.options, option)
            found = find_column(table.colnames, [wanted])
            if found is None:
                raise MissingColumnError(label, wanted, list(table.colnames), f"set option {option}; {LAYOUT}")
            bands.append(array_column(table[found], N_COEFFICIENTS, label, found))
        (bp, bp_missing), (rp, rp_missing) = bands
        values = np.concatenate([bp, rp], axis=1)
        missing = np.concatenate(
            [np.repeat(bp_missing[:, None], N_COEFFICIENTS, 1), np.repeat(rp_missing[:, None], N_COEFFICIENTS, 1)],
            axis=1,
        )
        missing |= ~np.isfinite(values)
        values, missing = self._normalise(table, label, values, missing)
        values = np.where(missing, np.nan, values)
        return sid[keep], values[keep], missing[keep]

    def _normalise(
        self, table: object, label: str, values: np.ndarray, missing: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Apply the ``normalise`` option; rows without a valid scale become wholly missing."""
        mode = self.options.normalise
        if mode == "none":
            return values, missing
        if mode == "by_first_coefficient":
            scale, bad = values[:, 0].copy(), missing[:, 0].copy()
        else:
            name = find_column(table.colnames, [self.options.g_flux_column])  # type: ignore[attr-defined]
            if name is None:
                raise MissingColumnError(
                    label,
                    self.options.g_flux_column,
                    list(table.colnames),  # type: ignore[attr-defined]
                    "normalise: by_g_flux needs the G flux in the same table (a gaia_source join); "
                    "set option g_flux_column, or use normalise: by_first_coefficient",
                )
            scale, bad = float_column(table, name, label)
        bad = bad | ~np.isfinite(scale) | (scale <= 0)
        safe = np.where(bad, 1.0, scale)
        return values / safe[:, None], missing | bad[:, None]
