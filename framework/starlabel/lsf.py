"""Gaussian line-spread function: degrade spectra on one grid to a lower resolving power.

The kernel FWHM at wavelength λ is ``λ·sqrt(1/r_out² − 1/r_in²)``, so a line of resolving power
``r_in`` leaves with ``r_out``; this is the optional last step of the data flow (see DESIGN.md,
"Data flow") after :func:`~starlabel.resample.resample`.

Conventions
-----------
The kernel is a :class:`~starlabel.resample.SparseOperator`, built once per grid and applied to any
number of spectra, with the conventions of :mod:`starlabel.resample` for good pixels, masked output
(``flux=0.0``, ``ivar=0.0``) and propagation of the inverse variance. An output pixel is masked when
more than ``max_bad_fraction`` of its kernel weight falls on bad pixels, or when less than
``min_coverage`` of its kernel lies on the grid.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from starlabel.grid import WavelengthGrid, _grid_values, pixel_edges
from starlabel.resample import Resampled, SparseOperator
from starlabel.wavelengths import GridError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


# -------------------------------------------------------------------------------------------- convolution
def _kernel_sigma(wave: np.ndarray, r_in: float, r_out: float) -> np.ndarray:
    if not (math.isfinite(r_out) and r_out > 0):
        raise GridError(f"target resolving power r_out must be finite and positive, got {r_out}")
    if not r_out < r_in:
        raise GridError(
            f"target resolving power r_out={r_out:g} must be lower than the input r_in={r_in:g}; convolution can only lower the resolution"
        )
    return wave * math.sqrt(1.0 / r_out**2 - 1.0 / r_in**2) / FWHM_PER_SIGMA


def convolution_operator(
    wave: WavelengthGrid | Any,
    r_in: float,
    r_out: float,
    *,
    max_bad_fraction: float = 0.1,
    min_coverage: float = 0.9,
    truncate: float = 4.0,
) -> SparseOperator:
    """Build the banded Gaussian kernel that degrades spectra on ``wave`` from ``r_in`` to ``r_out``.

    Row j holds ``exp(−(λ_i − λ_j)²/2σ_j²) · Δλ_i / (√(2π) σ_j)`` for ``|λ_i − λ_j| ≤ truncate·σ_j``,
    with ``σ_j = λ_j·sqrt(1/r_out² − 1/r_in²)/2.3548``; the pixel widths ``Δλ_i`` make it correct on
    linear and log grids alike. Output pixels where less than ``min_coverage`` of the (truncated)
    Gaussian lies within the grid's edges are marked uncovered.

    Raises
    ------
    GridError
        When ``r_out ≥ r_in`` or ``r_out`` is not positive, or for bad wavelengths.
    """
    import scipy.sparse as sparse
    from scipy.special import ndtr

    wave = _grid_values(wave)
    sigma = _kernel_sigma(wave, float(r_in), float(r_out))
    lo = np.searchsorted(wave, wave - truncate * sigma, side="left")
    hi = np.searchsorted(wave, wave + truncate * sigma, side="right")
    counts = hi - lo
    rows = np.repeat(np.arange(wave.size), counts)
    cols = np.repeat(lo, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    edges = pixel_edges(wave)
    z = (wave[cols] - wave[rows]) / sigma[rows]
    weights = np.exp(-0.5 * z * z) * np.diff(edges)[cols] / (math.sqrt(2.0 * math.pi) * sigma[rows])
    matrix = sparse.csr_matrix((weights, (rows, cols)), shape=(wave.size, wave.size))
    upper = np.minimum((edges[-1] - wave) / sigma, truncate)
    lower = np.maximum((edges[0] - wave) / sigma, -truncate)
    coverage = (ndtr(upper) - ndtr(lower)) / (ndtr(truncate) - ndtr(-truncate))
    return SparseOperator(matrix, coverage >= min_coverage, max_bad_fraction)


def convolve_to_resolution(
    wave: WavelengthGrid | Any,
    flux: Any,
    ivar: Any,
    mask: Any,
    r_in: float,
    r_out: float,
    *,
    max_bad_fraction: float = 0.1,
    min_coverage: float = 0.9,
    truncate: float = 4.0,
    chunk_rows: int | None = None,
) -> Resampled:
    """Degrade spectra on one grid from resolving power ``r_in`` to ``r_out`` with a Gaussian LSF.

    The kernel FWHM is ``λ·sqrt(1/r_out² − 1/r_in²)`` (see :func:`convolution_operator`). Normalised
    convolution over good pixels g: ``f = K(g f) / K g``, ``var = K²(g σ²) / (K g)²``.

    Parameters
    ----------
    wave : WavelengthGrid or array_like
        (P,) grid of the spectra; the output is on the same grid.
    flux, ivar, mask : array_like
        (N, P) spectra.
    r_in, r_out : float
        Input and target resolving power, ``r_out < r_in`` (``r_in`` may be ``inf``).
    max_bad_fraction : float
        Mask an output pixel when more than this fraction of its kernel weight falls on bad pixels
        (default 10%); otherwise it is computed from the good pixels alone.
    min_coverage : float
        Mask an output pixel when less than this fraction of its kernel lies on the grid (default 90%).
    truncate : float
        Kernel half-width in σ (default 4).
    chunk_rows : int, optional
        Spectra per sparse product.

    Returns
    -------
    Resampled
        (N, P) arrays; masked pixels have flux 0 and ivar 0.

    Raises
    ------
    GridError
        When ``r_out ≥ r_in``.
    """
    operator = convolution_operator(
        wave, r_in, r_out, max_bad_fraction=max_bad_fraction, min_coverage=min_coverage, truncate=truncate
    )
    return operator.apply(flux, ivar, mask, chunk_rows=chunk_rows)
