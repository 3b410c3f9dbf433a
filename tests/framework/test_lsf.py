"""Gaussian line-spread function: convolution to a lower resolving power against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from spectra_helpers import SMALL, bad_input_setup, equivalent_width, gaussian_line, line_sigma, spectra

from starlabel.grid import WavelengthGrid
from starlabel.lsf import FWHM_PER_SIGMA, convolve_to_resolution
from starlabel.wavelengths import GridError


# -------------------------------------------------------------------------------------- line shapes
@pytest.mark.parametrize("grid", [WavelengthGrid.linear(846.0, 870.0, 0.005), WavelengthGrid.log(846.0, 870.0, 2.5e-6)])
def test_convolution_keeps_equivalent_width_and_adds_widths_in_quadrature(grid: WavelengthGrid) -> None:
    wave, sigma0, r_in, r_out = grid.wavelength, 0.03, 11500.0, 5000.0
    flux = gaussian_line(wave, 858.0, sigma0)[None, :]
    out = convolve_to_resolution(grid, flux, np.ones_like(flux), np.zeros(flux.shape, bool), r_in, r_out)
    good = ~out.mask[0]
    assert good[wave.size // 10 : -wave.size // 10].all() and out.mask[0, 0] and out.mask[0, -1]
    assert abs(equivalent_width(wave[good], out.flux[0, good]) / equivalent_width(wave, flux[0]) - 1) < 1e-4
    sigma_kernel = 858.0 * math.sqrt(1 / r_out**2 - 1 / r_in**2) / FWHM_PER_SIGMA
    expected = math.hypot(sigma0, sigma_kernel)
    assert abs(line_sigma(wave[good], out.flux[0, good]) / expected - 1) < 0.01


# ------------------------------------------------------------------------------------------------ masks
def test_convolution_masks_by_bad_weight_fraction_without_contamination() -> None:
    wave, flux, ivar, mask = bad_input_setup(seed=7)  # kernel σ ≈ 5.4 px: one pixel carries < 10% of the weight
    out = convolve_to_resolution(SMALL, flux, ivar, mask, 20000.0, 400.0)
    clean = convolve_to_resolution(SMALL, flux, ivar, np.zeros_like(mask), 20000.0, 400.0)
    assert out.mask[0, [10, 11]].all() and not out.mask[0, 40] and not out.mask[2, 77]
    assert not np.array_equal(out.flux[0, 40], clean.flux[0, 40])
    flux2 = flux.copy()
    flux2[mask] = np.nan
    again = convolve_to_resolution(SMALL, flux2, ivar, mask, 20000.0, 400.0)
    assert np.array_equal(again.flux, out.flux) and np.array_equal(again.ivar, out.ivar)
    strict = convolve_to_resolution(SMALL, flux, ivar, mask, 20000.0, 400.0, max_bad_fraction=0.0)
    assert strict.mask[0, 30:50].all()


# ------------------------------------------------------------------------------------------------ errors
def test_resolution_must_decrease() -> None:
    flux, ivar, mask = spectra(SMALL.wavelength, 1, seed=13)
    with pytest.raises(GridError) as info:
        convolve_to_resolution(SMALL, flux, ivar, mask, 5000.0, 5000.0)
    assert str(info.value) == (
        "target resolving power r_out=5000 must be lower than the input r_in=5000; convolution can only lower the resolution"
    )
