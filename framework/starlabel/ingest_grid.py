"""Ingest's fast path for spectra already on the grid: bad-pixel masks, ivar, float32 and S/N, block by block.

Spectra whose wavelengths are the descriptor's grid and that are not normalised need no resampling: the
work is a few vectorised passes per pixel. :func:`prepare_on_grid` does them :data:`BLOCK_ROWS` rows at a
time in work arrays reused from block to block (:class:`Scratch`), keeping a float32 flux in float32, and
gives exactly the values of the general float64 path. :func:`measured_snr` is the store's S/N definition.
"""

from __future__ import annotations

import numpy as np

from starlabel.containers import Spectra

BLOCK_ROWS = 256
"""Rows prepared at a time on the grid (float64 temporaries of a few MB, reused from the allocator)."""


def largest(values: np.ndarray) -> float:
    """The largest |value| (0 for none), without an |values| copy."""
    return max(float(np.max(values)), -float(np.min(values))) if values.size else 0.0


class Scratch:
    """Work arrays reused from block to block (by one thread): no fresh memory to fault in for every block."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, rows: int, pixels: int, dtype: type) -> np.ndarray:
        """A ``(rows, pixels)`` array of ``dtype`` (uninitialised), the same memory on every call."""
        array = self._arrays.get(name)
        if array is None or array.shape[0] < rows or array.shape[1] != pixels or array.dtype != dtype:
            array = self._arrays[name] = np.empty((max(rows, BLOCK_ROWS), pixels), dtype)
        return array[:rows]


def prepare_on_grid(
    spectra: Spectra, region_mask: np.ndarray, work: Scratch
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """Flux, ivar (float32, as stored), mask and S/N of spectra already on the grid and normalised, block by block.

    The values are those of the whole-array float64 path (bad pixels and mask regions zeroed, S/N from
    float64 products) cast to float32: a float32 flux is used as it is (every step on it is exact), the
    inverse variance is always handled in float64. Also the largest |ivar| and |flux| before the cast.
    """
    n, pixels = spectra.flux.shape
    flux_out = np.empty((n, pixels), np.float32)
    ivar_out = np.empty((n, pixels), np.float32)
    mask_out = np.empty((n, pixels), bool)
    snr = np.empty(n, np.float64)
    given_snr = spectra.meta.get("snr")
    peak_ivar = peak_flux = 0.0
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        rows = stop - start
        flux = spectra.flux[start:stop]
        if flux.dtype != np.float32:  # float64 (or other) values are zeroed in a float64 copy
            copy = work.get("flux", rows, pixels, np.float64)
            np.copyto(copy, flux)
            flux = copy
        ivar = work.get("ivar", rows, pixels, np.float64)
        np.copyto(ivar, spectra.ivar[start:stop])
        mask = mask_out[start:stop]
        test = work.get("test", rows, pixels, bool)
        with np.errstate(invalid="ignore"):
            np.greater(ivar, 0.0, out=mask)  # usable: 0 < ivar < inf, finite flux, not masked by the reader
            mask &= np.less(ivar, np.inf, out=test)
        mask &= np.isfinite(flux, out=test)
        np.logical_not(mask, out=mask)
        np.logical_or(mask, spectra.mask[start:stop], out=mask)
        mask |= region_mask
        np.copyto(ivar, 0.0, where=mask)
        if flux.dtype == np.float32:
            np.copyto(flux_out[start:stop], flux)
            flux = flux_out[start:stop]
        np.copyto(flux, 0.0, where=mask)
        size = np.abs(flux, out=work.get("abs32" if flux.dtype == np.float32 else "abs64", rows, pixels, flux.dtype))
        if ivar.size:  # ivar is 0 or positive now: its largest |value| is its maximum
            peak_ivar = max(peak_ivar, float(ivar.max()))
            peak_flux = max(peak_flux, float(size.max()))
        with np.errstate(over="ignore"):  # refused by the caller once the file's peaks are known
            np.copyto(ivar_out[start:stop], ivar, casting="same_kind")
            if flux.dtype != np.float32:
                np.copyto(flux_out[start:stop], flux, casting="same_kind")
        if given_snr is not None:
            snr[start:stop] = np.asarray(given_snr[start:stop], dtype=np.float64)
            continue
        ratio = work.get("ratio", rows, pixels, np.float64)  # measured_snr's |flux|·sqrt(ivar), in place
        np.sqrt(ivar, out=ratio)
        np.multiply(size, ratio, out=ratio)
        np.copyto(ratio, np.inf, where=mask)
        sorted_ratio = work.get("sorted", rows, pixels, np.float32)
        np.copyto(sorted_ratio, ratio, casting="same_kind")
        sorted_ratio.sort(axis=1)
        snr[start:stop] = median_of_sorted(sorted_ratio, pixels - np.count_nonzero(mask, axis=1))
    return flux_out, ivar_out, mask_out, snr, (peak_ivar, peak_flux)


def measured_snr(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-spectrum S/N as the store records it: the median of |flux|·sqrt(ivar) over unmasked pixels (0 if none).

    ``mask`` must already mark every bad pixel (as it does on the grid, after ingest's checks). Vectorised:
    bad pixels sort to the end as +inf and each row's median is read at its own good count (``np.nanmedian``
    loops over rows in Python).
    """
    if flux.size == 0:
        return np.zeros(len(flux))
    ratio = np.where(mask, np.inf, np.abs(flux) * np.sqrt(ivar)).astype(np.float32)
    ratio.sort(axis=1)
    return median_of_sorted(ratio, (~mask).sum(axis=1))


def median_of_sorted(ratio: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Per row, the median of the first ``good`` values of the sorted float32 ``ratio`` (0 where none)."""
    rows = np.arange(len(ratio))
    low = ratio[rows, np.maximum(good - 1, 0) // 2].astype(np.float64)
    high = ratio[rows, np.maximum(good, 1) // 2 - (good == 0)].astype(np.float64)
    return np.where(good > 0, 0.5 * (low + high), 0.0)
