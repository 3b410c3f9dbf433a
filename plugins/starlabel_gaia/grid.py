"""The default wavelength grid of Gaia DR3 XP sampled mean spectra."""

from __future__ import annotations

import numpy as np

XP_START_NM = 336.0
XP_STEP_NM = 2.0
XP_PIXELS = 343
"""336-1020 nm in 2 nm steps: the default ``XP_SAMPLED`` grid of the Gaia archive and of GaiaXPy."""


def xp_sampled_wavelength() -> np.ndarray:
    """Return the 343 wavelengths (nm, float64) of the default XP sampled grid, 336.0 ... 1020.0.

    Built as ``336 + 2 * i`` so that every value is exact.
    """
    return XP_START_NM + XP_STEP_NM * np.arange(XP_PIXELS, dtype=np.float64)
