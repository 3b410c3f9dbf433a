"""The wavelength grid of Gaia DR3 RVS mean spectra: 846-870 nm in 0.01 nm steps, 2401 pixels, vacuum."""

from __future__ import annotations

import numpy as np

RVS_START_NM = 846.0
RVS_STEP_NM = 0.01
RVS_PIXELS = 2401
"""846.00 ... 870.00 nm: every ``rvs_mean_spectrum`` holds exactly these pixels (Gaia DR3 data model)."""

WAVELENGTH_TOLERANCE_NM = 1e-6
"""Stored wavelengths may differ from ``846 + 0.01 i`` by rounding jitter (±1e-13 nm in the archive files)."""


def rvs_wavelength() -> np.ndarray:
    """Return the 2401 wavelengths (nm, vacuum, float64) of the RVS grid, built as ``846 + 0.01 * i``."""
    return RVS_START_NM + RVS_STEP_NM * np.arange(RVS_PIXELS, dtype=np.float64)


def pixel_index(wavelength: np.ndarray) -> np.ndarray | None:
    """Return the RVS pixel index of every wavelength, or None when one is off the grid.

    Parameters
    ----------
    wavelength : numpy.ndarray
        Wavelengths in nm.

    Returns
    -------
    numpy.ndarray or None
        int64 indices in ``0 ... 2400``; None when a value is not finite, outside 846-870 nm or more
        than :data:`WAVELENGTH_TOLERANCE_NM` from its grid point.
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    if not np.all(np.isfinite(wavelength)):
        return None
    index = np.rint((wavelength - RVS_START_NM) / RVS_STEP_NM)
    if index.size and (index.min() < 0 or index.max() > RVS_PIXELS - 1):
        return None
    index = index.astype(np.int64)
    if np.any(np.abs(wavelength - rvs_wavelength()[index]) > WAVELENGTH_TOLERANCE_NM):
        return None
    return index
