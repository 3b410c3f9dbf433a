"""Checks and small helpers shared by the simulation writers of instrument readers (`InstrumentReader.write`)."""

from __future__ import annotations

import numpy as np

from starlabel.containers import NativeGrid, Spectra
from starlabel.errors import SimulationError


def meta_values(spectra: Spectra, key: str) -> np.ndarray:
    """``spectra.meta[key]`` as float64, or NaN for every row when absent.

    Raises
    ------
    SimulationError
        The values are not numbers.
    """
    value = spectra.meta.get(key)
    if value is None:
        return np.full(len(spectra), np.nan)
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise SimulationError(
            f"spectra.meta[{key!r}] holds {np.asarray(value).dtype} values, expected numbers (km/s for vrad)"
        ) from None


def median_snr(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> float:
    """Median ``|flux|·sqrt(ivar)`` over good pixels (NaN when there is none)."""
    flux, ivar = np.asarray(flux, np.float64), np.asarray(ivar, np.float64)
    with np.errstate(invalid="ignore"):
        good = ~np.asarray(mask, bool) & np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    return float(np.median(np.abs(flux[good]) * np.sqrt(ivar[good]))) if good.any() else float("nan")


def check_on_grid(spectra: Spectra, grid: NativeGrid, reader: str) -> None:
    """Refuse spectra that are not on ``grid``: same unit, medium and wavelengths (to 1e-9 relative).

    Raises
    ------
    SimulationError
        Naming the reader, what differs and what is expected.
    """
    import astropy.units as u

    wave = np.asarray(spectra.wavelength, dtype=np.float64)
    try:
        same_unit = u.Unit(spectra.unit) == u.Unit(grid.unit)
    except (ValueError, TypeError):
        same_unit = False
    if not same_unit:
        problem = f"wavelength unit {spectra.unit!r}"
    elif spectra.medium != grid.medium:
        problem = f"medium {spectra.medium!r}"
    elif wave.shape[-1] != grid.wavelength.size:
        problem = f"{wave.shape[-1]} pixels"
    elif not np.allclose(wave, grid.wavelength, rtol=1e-9, atol=0.0):
        problem = "wavelengths that differ from the archive grid"
    else:
        return
    expected = (
        f"{grid.wavelength.size} pixels, {grid.wavelength[0]:.6f}-{grid.wavelength[-1]:.6f} {grid.unit}, "
        f"{grid.medium}"
    )
    raise SimulationError(
        f"reader {reader!r} cannot write spectra with {problem}: its files hold spectra on its simulation grid "
        f"({expected}); put the spectra on reader.simulation_grid() first"
    )


def check_ids(ids: list[str], reader: str) -> None:
    """Refuse empty, repeated or path-like ids (they name the files).

    Raises
    ------
    SimulationError
        Naming the reader, the row and the id.
    """
    seen: dict[str, int] = {}
    for row, value in enumerate(ids):
        if not value or "/" in value or "\\" in value or value in (".", ".."):
            raise SimulationError(
                f"reader {reader!r}: source_id {value!r} of row {row} cannot name a file; ids must be non-empty "
                "and contain no path separator (use reader.simulation_ids(population))"
            )
        if value in seen:
            raise SimulationError(
                f"reader {reader!r}: source_id {value!r} of row {row} repeats row {seen[value]}; each star needs "
                "its own id and file (use reader.simulation_ids(population))"
            )
        seen[value] = row
