"""From fine-grid absorption to the requested pixels: decimation, Gaussian broadening, pixel averages.

1. The fine-grid absorption ``1 − F`` is averaged over blocks of ``factor`` pixels (a "work" grid, still
   uniform in ln λ, with a step of about a quarter of the broadening σ): this conserves its integral.
2. The work grid is convolved with a Gaussian of constant width in velocity (instrumental profile of FWHM
   ``c / R`` combined with the macroturbulence), with :func:`scipy.ndimage.gaussian_filter1d`; the
   variance the block average already added is subtracted.
3. Each output pixel gets the average of the piecewise-linear work-grid absorption between its edges (the
   midpoints between neighbouring wavelengths), from a cumulative integral: flux-conserving where the
   pixels are coarser than the work grid, linear interpolation where they are finer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from starlabel.wavelengths import C_KMS

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True)
class WorkGrid:
    """The decimated grid: node ``j`` sits at ``u = start + j · step`` (``u = ln(λ / nm)``)."""

    start: float
    step: float
    size: int


def broadening_sigma_kms(resolution: float, macroturbulence: float) -> float:
    """σ (km/s) of the Gaussian combining the instrumental FWHM ``c / R`` and a macroturbulent FWHM."""
    return float(np.hypot(C_KMS / resolution, macroturbulence) * FWHM_TO_SIGMA)


def decimation_factor(sigma_kms: float, fine_step_kms: float) -> int:
    """Fine pixels per work pixel: a work step of about σ / 4 (at least 1)."""
    return max(1, int(sigma_kms / (4.0 * fine_step_kms)))


def decimate(absorption: np.ndarray, factor: int) -> np.ndarray:
    """Average (N, M) over blocks of ``factor`` columns (M must be a multiple of ``factor``)."""
    if factor == 1:
        return absorption
    n, m = absorption.shape
    return absorption.reshape(n, m // factor, factor).mean(axis=2)


def broaden(work: np.ndarray, sigma_kms: float, work_step_kms: float, factor: int, fine_step_kms: float) -> np.ndarray:
    """Gaussian convolution along the rows of ``work`` (σ in km/s), less the block-average variance."""
    box_variance = (factor**2 - 1) * fine_step_kms**2 / 12.0
    sigma_px = np.sqrt(max(sigma_kms**2 - box_variance, 0.0)) / work_step_kms
    if sigma_px < 0.25:
        return work
    from scipy.ndimage import gaussian_filter1d  # here, not at import: `starlabel plugins` loads this module

    return gaussian_filter1d(work, sigma_px, axis=1, mode="nearest", truncate=4.0)


def pixel_edges(u: np.ndarray, step: float) -> np.ndarray:
    """Edges in ``u = ln λ`` of pixels centred on the rows of ``u`` (..., P) → (..., P + 1).

    Interior edges are midpoints; the outer edges mirror them. A single pixel gets a width of ``step``.
    """
    if u.shape[-1] == 1:
        return np.concatenate([u - 0.5 * step, u + 0.5 * step], axis=-1)
    mid = 0.5 * (u[..., 1:] + u[..., :-1])
    first = u[..., :1] - 0.5 * (u[..., 1:2] - u[..., :1])
    last = u[..., -1:] + 0.5 * (u[..., -1:] - u[..., -2:-1])
    return np.concatenate([first, mid, last], axis=-1)


def pixel_average(work: np.ndarray, grid: WorkGrid, edges: np.ndarray) -> np.ndarray:
    """Average of the piecewise-linear rows of ``work`` between consecutive ``edges``.

    Parameters
    ----------
    work : numpy.ndarray
        (N, M) values at the work-grid nodes.
    grid : WorkGrid
        Where the nodes are.
    edges : numpy.ndarray
        (P + 1,) edges shared by every row, or (N, P + 1) one set per row, in ``u = ln λ``; all inside the grid.

    Returns
    -------
    numpy.ndarray
        (N, P) averages.
    """
    n, m = work.shape
    cumulative = np.zeros((n, m))
    np.cumsum(0.5 * (work[:, 1:] + work[:, :-1]), axis=1, out=cumulative[:, 1:])
    p = (edges - grid.start) / grid.step
    j = np.clip(np.floor(p).astype(np.int64), 0, m - 2)
    d = p - j
    if edges.ndim == 1:
        a0, a1, c0 = work[:, j], work[:, j + 1], cumulative[:, j]
    else:
        a0 = np.take_along_axis(work, j, axis=1)
        a1 = np.take_along_axis(work, j + 1, axis=1)
        c0 = np.take_along_axis(cumulative, j, axis=1)
    integral = c0 + d * (a0 + 0.5 * d * (a1 - a0))
    return np.diff(integral, axis=-1) / np.diff(p, axis=-1)
