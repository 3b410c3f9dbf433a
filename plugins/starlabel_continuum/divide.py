"""Dividing spectra by a fitted continuum, the one step every normaliser ends with."""

from __future__ import annotations

import numpy as np

from starlabel.components import Normalised


def divide_by_continuum(
    flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, continuum: np.ndarray, dtype: np.dtype
) -> Normalised:
    """Return ``flux / continuum`` and ``ivar · continuum²``, masking wherever the continuum is unusable.

    Parameters
    ----------
    flux, ivar, mask : numpy.ndarray
        (N, P) inputs (float64, float64, bool).
    continuum : numpy.ndarray
        (N, P) fitted continuum; NaN where none was fitted (outside every arm, a failed arm).
    dtype : numpy.dtype
        Floating type of the returned flux, ivar and continuum.

    Returns
    -------
    starlabel.components.Normalised
        Where the continuum is finite and positive: the divided flux, the scaled ivar and the continuum,
        whatever the input mask says there. Elsewhere: flux NaN, ivar 0, continuum NaN and the pixel
        masked. The input mask is kept: a masked pixel is never unmasked. Nothing is ever divided by zero.
    """
    usable = np.isfinite(continuum) & (continuum > 0)
    out_flux = np.full(flux.shape, np.nan)
    out_ivar = np.zeros(flux.shape)
    with np.errstate(over="ignore", invalid="ignore"):  # masked pixels may hold any value
        np.divide(flux, continuum, out=out_flux, where=usable)
        np.multiply(ivar, np.square(continuum), out=out_ivar, where=usable)
    return Normalised(
        flux=out_flux.astype(dtype, copy=False),
        ivar=out_ivar.astype(dtype, copy=False),
        mask=mask | ~usable,
        continuum=np.where(usable, continuum, np.nan).astype(dtype, copy=False),
    )


def output_dtype(flux: np.ndarray, ivar: np.ndarray) -> np.dtype:
    """Floating type of a normaliser's output: float32 inputs stay float32, anything else gives float64."""
    kinds = [np.asarray(a).dtype for a in (flux, ivar)]
    if all(k == np.float32 for k in kinds):
        return np.dtype(np.float32)
    return np.dtype(np.float64)
