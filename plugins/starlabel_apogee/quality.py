"""Pixel quality of APOGEE spectra: bitmask bits plus the value checks of FORMATS.md §4."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator

from starlabel.components import ComponentOptions
from starlabel.containers import Spectra
from starlabel_apogee.bits import APOGEE_PIXMASK, PIXMASK_BAD, bit_value

MAX_ERROR = 1.0e5
"""Errors above this are the pipeline's "bad pixel" fill values (1e10 in apVisit, 1e5–1e14 in apStar)."""


class PixmaskOptions(ComponentOptions):
    """Options shared by the readers of files with an APOGEE_PIXMASK HDU."""

    bad_bits: tuple[str | int, ...] = Field(
        PIXMASK_BAD,
        description=(
            "APOGEE_PIXMASK bits (names or numbers) that mark a pixel bad; default the pipeline's BAD set "
            "BADPIX, CRPIX, SATPIX, UNFIXABLE, BADDARK, BADFLAT, BADERR, NOSKY, NOT_ENOUGH_PSF (= 16639). "
            "Add SIG_SKYLINE (bit 12) to also drop pixels near bright sky lines (= 20735)"
        ),
    )
    max_error: float = Field(MAX_ERROR, gt=0, description="errors above this mark the pixel bad")

    @field_validator("bad_bits")
    @classmethod
    def _known_bits(cls, bits: tuple[str | int, ...]) -> tuple[str | int, ...]:
        bit_value(bits, APOGEE_PIXMASK, "bad_bits")
        return bits

    @property
    def bad_value(self) -> int:
        """OR of the bad bits."""
        return bit_value(self.bad_bits, APOGEE_PIXMASK, "bad_bits")


def flux_quality(
    flux: np.ndarray, sigma: np.ndarray, bitmask: np.ndarray | None, bad_value: int, max_error: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(flux, ivar, mask)`` as float64, float64 and bool arrays of the input shape.

    A pixel is bad when ``bitmask & bad_value`` is non-zero, the flux is not finite or exactly 0
    (chip gaps and unfilled pixels), or the error is not finite, ≤ 0 or > ``max_error``. ``ivar`` is
    ``1/sigma²`` on good pixels and 0 on bad ones; flux is returned as stored.
    """
    flux = np.asarray(flux, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        mask = ~np.isfinite(flux) | (flux == 0) | ~np.isfinite(sigma) | ~(sigma > 0) | (sigma > max_error)
    if bitmask is not None:
        mask |= (np.asarray(bitmask).astype(np.int64) & np.int64(bad_value)) != 0
    ivar = Spectra.ivar_from_sigma(np.where(mask, np.nan, sigma))
    return flux, ivar, mask


def header_float(header: Any, key: str) -> float:
    """``header[key]`` as float, NaN when absent or not a number (or the −9999 sentinel)."""
    try:
        value = float(header[key])
    except (KeyError, TypeError, ValueError):
        return float("nan")
    return value if np.isfinite(value) and value > -9999 else float("nan")
