"""``chebyshev``: per-arm Chebyshev polynomial continuum with iterative asymmetric sigma clipping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.polynomial import chebyshev
from pydantic import Field, field_validator

from starlabel.components import ComponentOptions, Normalised, Normaliser
from starlabel_continuum.divide import divide_by_continuum, output_dtype
from starlabel_continuum.inputs import arm_pixels, as_slice, check_inputs, good_pixels, in_ranges, row_batches


class ChebyshevOptions(ComponentOptions):
    """Options of ``chebyshev``."""

    degree: int = Field(3, ge=0, le=20, description="degree of the Chebyshev polynomial fitted to each arm")
    windows: tuple[tuple[float, float], ...] = Field(
        (),
        description="continuum windows [[start, stop], ...] in the grid's unit; only pixels inside one are "
        "fitted (empty: every pixel)",
    )
    clip_low: float = Field(2.0, gt=0, description="reject pixels more than this many sigma below the continuum")
    clip_high: float = Field(3.0, gt=0, description="reject pixels more than this many sigma above the continuum")
    iterations: int = Field(5, ge=0, le=100, description="clip-and-refit cycles after the first fit (0: no clipping)")

    @field_validator("windows")
    @classmethod
    def _ordered(cls, windows: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        for index, (start, stop) in enumerate(windows):
            if not stop > start:
                raise ValueError(f"windows[{index}]: stop ({stop}) must be greater than start ({start})")
        return windows


class ChebyshevContinuum(Normaliser):
    """Divide by a Chebyshev polynomial fitted per arm to continuum pixels, ivar-weighted, with sigma clipping.

    For each arm, wavelengths are mapped linearly onto [-1, 1] (the arm's first and last grid pixel) and
    a polynomial of ``degree`` is fitted by weighted least squares (weights ``ivar``) to the good pixels
    inside ``windows``. Pixels more than ``clip_low`` sigma below or ``clip_high`` sigma above the fit
    are dropped and the fit repeated, up to ``iterations`` times; sigma is a pixel's ``1/sqrt(ivar)``
    scaled by the rms of the kept, ivar-normalised residuals. When a spectrum has fewer than
    ``degree + 1`` good window pixels in an arm, that whole arm is masked for that spectrum.
    """

    name = "chebyshev"
    Options = ChebyshevOptions
    citation = (
        "Tody 1986, Proc. SPIE 627, 733 (IRAF continuum: polynomial fit with asymmetric rejection); "
        "Ness et al. 2015, ApJ 808, 16 (The Cannon: per-chip Chebyshev fit to continuum pixels)"
    )
    data_model_url = "https://numpy.org/doc/stable/reference/routines.polynomials.chebyshev.html"
    status = "experimental"
    options: ChebyshevOptions

    def normalise(
        self,
        wavelength: np.ndarray,
        flux: np.ndarray,
        ivar: np.ndarray,
        mask: np.ndarray,
        arms: Sequence[Any] = (),
    ) -> Normalised:
        """Fit and divide out the continuum of (N, P) spectra; see the class docstring.

        Parameters
        ----------
        wavelength : numpy.ndarray
            (P,) grid, strictly increasing.
        flux, ivar, mask : numpy.ndarray
            (N, P) spectra, inverse variances and masks (True = bad).
        arms : sequence of (start, stop)
            Ranges fitted independently; pixels outside every arm come back masked. Empty: one arm.
        """
        dtype = output_dtype(flux, ivar)
        wavelength, flux, ivar, mask = check_inputs(wavelength, flux, ivar, mask)
        continuum = np.full(flux.shape, np.nan)
        fittable = good_pixels(flux, ivar, mask) & in_ranges(wavelength, self.options.windows)
        for pixels in arm_pixels(wavelength, arms):
            basis = chebyshev.chebvander(unit_interval(wavelength[pixels]), self.options.degree)
            cols = as_slice(pixels)
            for rows in row_batches(flux.shape[0], pixels.size):
                continuum[rows, cols] = self._fit(basis, flux[rows, cols], ivar[rows, cols], fittable[rows, cols])
        return divide_by_continuum(flux, ivar, mask, continuum, dtype)

    def _fit(self, basis: np.ndarray, flux: np.ndarray, ivar: np.ndarray, fittable: np.ndarray) -> np.ndarray:
        """Clipped fits of one arm for a batch of spectra: (n, p) continuum, NaN rows where a fit failed."""
        opts = self.options
        n_terms = basis.shape[1]
        flux = np.where(fittable, flux, 0.0)  # garbage in unused pixels never reaches a sum
        weight = np.where(fittable, ivar, 0.0)
        scale = weight.max(axis=1, keepdims=True)
        weight /= np.where(scale > 0, scale, 1.0)  # per-row weight scale changes neither fit nor clipping
        root = np.sqrt(weight)
        solved = fittable.sum(axis=1) >= n_terms
        products = outer_products(basis)
        keep = fittable
        coef = weighted_fits(basis, products, weight, flux, solved)
        for _ in range(opts.iterations):
            z = (flux - coef @ basis.T) * root
            kept = np.where(keep, z, 0.0)
            dof = np.maximum(keep.sum(axis=1) - n_terms, 1)
            sigma = np.sqrt(np.einsum("ij,ij->i", kept, kept) / dof)[:, None]
            new = fittable & (z >= -opts.clip_low * sigma) & (z <= opts.clip_high * sigma)
            too_few = new.sum(axis=1) < n_terms
            new[too_few] = keep[too_few]  # clipping never leaves a fit with too few pixels
            if np.array_equal(new, keep):
                break
            keep = new
            coef = weighted_fits(basis, products, weight * keep, flux, solved)
        continuum = coef @ basis.T
        continuum[~solved] = np.nan
        return continuum


def unit_interval(wavelength: np.ndarray) -> np.ndarray:
    """Map an arm's wavelengths linearly onto [-1, 1] (first pixel → -1, last → +1; one pixel → 0)."""
    low, high = wavelength[0], wavelength[-1]
    if high == low:
        return np.zeros_like(wavelength)
    return (2.0 * wavelength - (low + high)) / (high - low)


def outer_products(basis: np.ndarray) -> np.ndarray:
    """(p, m²) products ``basis[:, i] * basis[:, j]``: one matrix product then gives every normal matrix."""
    n_pixels, n_terms = basis.shape
    return (basis[:, :, None] * basis[:, None, :]).reshape(n_pixels, n_terms * n_terms)


def weighted_fits(
    basis: np.ndarray, products: np.ndarray, weight: np.ndarray, flux: np.ndarray, solved: np.ndarray
) -> np.ndarray:
    """Solve the weighted least-squares problems of n spectra sharing one design matrix, all at once.

    Parameters
    ----------
    basis : numpy.ndarray
        (p, m) design matrix (Chebyshev polynomials at the arm's pixels).
    products : numpy.ndarray
        (p, m²) :func:`outer_products` of ``basis``.
    weight, flux : numpy.ndarray
        (n, p) weights (0 for pixels left out) and data, finite everywhere.
    solved : numpy.ndarray
        (n,) rows with enough pixels to fit; the others get zero coefficients.

    Returns
    -------
    numpy.ndarray
        (n, m) coefficients, from the normal equations ``(Bᵀ W B) c = Bᵀ W f`` solved as one batch.
    """
    n_terms = basis.shape[1]
    normal = (weight @ products).reshape(-1, n_terms, n_terms)
    rhs = (weight * flux) @ basis
    normal[~solved] = np.eye(n_terms)
    rhs[~solved] = 0.0
    try:
        return np.linalg.solve(normal, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:  # an exactly singular system: fall back to the pseudo-inverse
        return (np.linalg.pinv(normal) @ rhs[..., None])[..., 0]
