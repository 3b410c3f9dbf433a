"""Vectorised running statistics over wavelength windows: quantile of good pixels, boxcar mean, interpolation.

Windows are given per centre pixel as half-open index ranges ``[lo, hi)`` on one arm's pixels, so they
hold exactly the pixels within ``width / 2`` of the centre on any grid (linear or logarithmic) and are
truncated at the arm's ends.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def window_bounds(wavelength: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """``[lo, hi)`` index ranges of the pixels within ``width / 2`` of each pixel of a sorted grid."""
    half = 0.5 * width * (1.0 + 1e-9)  # a pixel exactly width/2 away is inside despite rounding
    lo = np.searchsorted(wavelength, wavelength - half, side="left")
    hi = np.searchsorted(wavelength, wavelength + half, side="right")
    return lo, hi


def running_quantile(
    values: np.ndarray, good: np.ndarray, lo: np.ndarray, hi: np.ndarray, quantile: float
) -> np.ndarray:
    """Quantile of the good values in each window, for n rows at once.

    Parameters
    ----------
    values : numpy.ndarray
        (n, p) data; anything (NaN, inf) where ``good`` is False.
    good : numpy.ndarray
        (n, p) pixels that count.
    lo, hi : numpy.ndarray
        (c,) window of each of c centres, as index ranges ``[lo, hi)``.
    quantile : float
        In [0, 1]; linear interpolation between order statistics (numpy's default ``linear`` method).

    Returns
    -------
    numpy.ndarray
        (n, c) quantiles; NaN where a window holds no good pixel.

    Notes
    -----
    Windows are gathered into an (n, c, k) float32 array (k the widest window) with NaN for bad or
    out-of-window pixels, sorted along the last axis (NaN sorts last) and read at the interpolated order
    statistic of each window's own good count. Each row is divided by its largest good absolute value
    first, so float32 neither overflows nor loses relative precision (about 1e-7).
    """
    n, p = values.shape
    width = int((hi - lo).max(initial=0))
    if n == 0 or lo.size == 0 or width == 0:
        return np.full((n, lo.size), np.nan)
    magnitude = np.where(good, np.abs(values), 0.0).max(axis=1, initial=0.0)
    scale = np.where((magnitude > 0) & np.isfinite(magnitude), magnitude, 1.0)[:, None]
    padded = np.full((n, p + width), np.nan, dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        padded[:, :p] = np.where(good, values / scale, np.nan)
    windows = sliding_window_view(padded, width, axis=1)[:, lo]  # (n, c, k) copy
    short = np.flatnonzero(hi - lo < width)  # windows cut by the arm's ends: blank what lies beyond hi
    beyond = np.arange(width) >= (hi - lo)[short, None]
    windows[:, short] = np.where(beyond, np.float32(np.nan), windows[:, short])
    windows.sort(axis=-1)
    counts = np.concatenate([np.zeros((n, 1), dtype=np.int64), np.cumsum(good, axis=1)], axis=1)
    n_good = counts[:, hi] - counts[:, lo]
    position = quantile * np.maximum(n_good - 1, 0)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(n_good - 1, 0))
    low_value = np.take_along_axis(windows, below[..., None], axis=-1)[..., 0].astype(np.float64)
    high_value = np.take_along_axis(windows, above[..., None], axis=-1)[..., 0].astype(np.float64)
    result = low_value + (position - below) * (high_value - low_value)
    result[n_good == 0] = np.nan
    return result * scale


def boxcar(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of the finite values of each window ``[lo, hi)``, for n rows; NaN where a window has none."""
    finite = np.isfinite(values)
    zero = np.zeros((values.shape[0], 1))
    sums = np.concatenate([zero, np.cumsum(np.where(finite, values, 0.0), axis=1)], axis=1)
    counts = np.concatenate([zero, np.cumsum(finite, axis=1, dtype=np.float64)], axis=1)
    total = sums[:, hi] - sums[:, lo]
    count = counts[:, hi] - counts[:, lo]
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def interpolate_centres(values: np.ndarray, wavelength: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Linear interpolation in wavelength from (n, c) values at pixel indices ``centres`` to every pixel.

    ``centres`` must be sorted and include the first and last pixel; NaN spreads to the neighbouring gaps.
    """
    if centres.size == 1:
        return np.repeat(values, wavelength.size, axis=1)
    right = np.clip(np.searchsorted(centres, np.arange(wavelength.size), side="left"), 1, centres.size - 1)
    left = right - 1
    x_left, x_right = wavelength[centres[left]], wavelength[centres[right]]
    t = (wavelength - x_left) / (x_right - x_left)
    return values[:, left] * (1.0 - t) + values[:, right] * t
