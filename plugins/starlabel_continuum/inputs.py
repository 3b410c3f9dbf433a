"""Checks and pixel selections shared by the normalisers: shapes, good pixels, arms, windows, row batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from starlabel_continuum.errors import ContinuumInputError

ROW_BUDGET = 2**22
"""Elements of the largest temporary a normaliser builds for one batch of rows (32 MB in float64)."""


def check_inputs(
    wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the inputs as float64 / bool arrays after checking their shapes.

    Parameters
    ----------
    wavelength : numpy.ndarray
        (P,) strictly increasing, finite grid.
    flux, ivar, mask : numpy.ndarray
        (N, P) each; N may be 0.

    Raises
    ------
    starlabel_continuum.errors.ContinuumInputError
        When a shape does not match or the grid is not strictly increasing.
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if wavelength.ndim != 1:
        raise ContinuumInputError(f"wavelength must be 1-D (P,), got shape {wavelength.shape}")
    if flux.ndim != 2 or flux.shape[1] != wavelength.shape[0]:
        raise ContinuumInputError(f"flux must be (N, {wavelength.shape[0]}) to match the grid, got {flux.shape}")
    if ivar.shape != flux.shape or mask.shape != flux.shape:
        raise ContinuumInputError(f"flux {flux.shape}, ivar {ivar.shape} and mask {mask.shape} must have one shape")
    if not np.all(np.isfinite(wavelength)) or np.any(np.diff(wavelength) <= 0):
        raise ContinuumInputError("wavelength must be finite and strictly increasing")
    return wavelength, flux, ivar, mask


def good_pixels(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pixels a continuum may be fitted to: unmasked, finite flux, finite and positive ``ivar``."""
    return ~mask & np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)


def arm_ranges(arms: Sequence[Any]) -> list[tuple[float, float]]:
    """Arms as ``(start, stop)`` floats; accepts pairs or objects with ``start``/``stop`` (descriptor arms).

    Raises
    ------
    starlabel_continuum.errors.ContinuumInputError
        When an arm is not a pair of finite numbers with start < stop.
    """
    ranges = []
    for index, arm in enumerate(arms):
        try:
            start, stop = (arm.start, arm.stop) if hasattr(arm, "start") else arm
            start, stop = float(start), float(stop)
        except (TypeError, ValueError):
            raise ContinuumInputError(f"arms[{index}]: expected (start, stop), got {arm!r}") from None
        if not (np.isfinite(start) and np.isfinite(stop) and start < stop):
            raise ContinuumInputError(f"arms[{index}]: start ({start}) must be less than stop ({stop})")
        ranges.append((start, stop))
    return ranges


def arm_pixels(wavelength: np.ndarray, arms: Sequence[Any]) -> list[np.ndarray]:
    """Indices of the grid pixels of each arm that has any, in arm order.

    A pixel belongs to the first arm whose closed range ``[start, stop]`` holds it; no arms means one arm
    covering the whole grid. Pixels in no arm appear in no list.
    """
    if len(arms) == 0:
        return [np.arange(wavelength.shape[0])] if wavelength.shape[0] else []
    taken = np.zeros(wavelength.shape[0], dtype=bool)
    out = []
    for start, stop in arm_ranges(arms):
        mine = (wavelength >= start) & (wavelength <= stop) & ~taken
        taken |= mine
        if mine.any():
            out.append(np.flatnonzero(mine))
    return out


def as_slice(pixels: np.ndarray) -> slice | np.ndarray:
    """A contiguous run of indices as a slice (cheap views), anything else unchanged."""
    if pixels.size and pixels[-1] - pixels[0] + 1 == pixels.size:
        return slice(int(pixels[0]), int(pixels[-1]) + 1)
    return pixels


def in_ranges(wavelength: np.ndarray, ranges: Sequence[tuple[float, float]]) -> np.ndarray:
    """True for pixels inside any closed range; every pixel when ``ranges`` is empty."""
    if len(ranges) == 0:
        return np.ones(wavelength.shape, dtype=bool)
    inside = np.zeros(wavelength.shape, dtype=bool)
    for start, stop in ranges:
        inside |= (wavelength >= start) & (wavelength <= stop)
    return inside


def row_batches(n_rows: int, elements_per_row: int, budget: int = ROW_BUDGET) -> Iterator[slice]:
    """Slices of rows so that each batch holds at most ``budget`` elements (at least one row per batch)."""
    step = max(1, budget // max(1, elements_per_row))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))
