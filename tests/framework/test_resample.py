"""Resampling onto a grid: flux, inverse variance and mask propagation against known answers."""

from __future__ import annotations

import numpy as np
import pytest
from spectra_helpers import RVS, SMALL, bad_input_setup, equivalent_width, gaussian_line, spectra

from starlabel.errors import StarlabelError
from starlabel.grid import WavelengthGrid, pixel_edges
from starlabel.lsf import convolve_to_resolution
from starlabel.resample import resample, resampling_operator
from starlabel.wavelengths import GridError

MODES = ("flux", "interpolate")


# --------------------------------------------------------------------------------------- constant flux
TARGETS = {
    "log": WavelengthGrid.log(848.0, 868.0, 1e-5),
    "coarser": WavelengthGrid.linear(847.013, 869.0, 0.037),
    "finer": WavelengthGrid.linear(846.0021, 869.99, 0.0031),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_constant_spectrum_stays_constant(mode: str, target: str) -> None:
    flux, ivar, mask = spectra(RVS.wavelength, 3, seed=1)
    flux[:] = 3.7
    out = resample(RVS.wavelength, flux, ivar, mask, TARGETS[target], mode)
    good = ~out.mask
    assert good.sum() >= 0.99 * out.mask.size
    assert np.max(np.abs(out.flux[good] - 3.7)) <= 1e-12
    assert np.all(out.ivar[good] > 0)
    shifted = np.broadcast_to(RVS.wavelength, flux.shape) + np.array([[0.0], [0.0013], [-0.004]])
    per_row = resample(shifted, flux, ivar, mask, TARGETS[target], mode)
    assert np.max(np.abs(per_row.flux[~per_row.mask] - 3.7)) <= 1e-12


# -------------------------------------------------------------------------------------- line shapes
@pytest.mark.parametrize("target", ["coarser", "finer"])
def test_flux_rebinning_keeps_equivalent_width(target: str) -> None:
    wave_out = TARGETS[target].wavelength
    flux = gaussian_line(RVS.wavelength, 858.0, 0.05)[None, :]
    out = resample(RVS.wavelength, flux, np.ones_like(flux), np.zeros(flux.shape, bool), TARGETS[target])
    assert not out.mask.any()
    before = equivalent_width(RVS.wavelength, flux[0])
    after = equivalent_width(wave_out, out.flux[0])
    assert abs(after / before - 1) < 1e-6


# ------------------------------------------------------------------------------------ noise propagation


@pytest.mark.parametrize("how", ["flux", "interpolate", "convolve"])
def test_monte_carlo_variance_matches_ivar(how: str) -> None:
    wave = SMALL.wavelength
    flux, ivar, mask = spectra(wave, 1, seed=2)
    n = 20_000
    rng = np.random.default_rng(3)
    noisy = 1.0 + rng.standard_normal((n, wave.size)) / np.sqrt(ivar)
    ivar, mask = np.broadcast_to(ivar, noisy.shape), np.broadcast_to(mask, noisy.shape)
    if how == "convolve":
        out = convolve_to_resolution(SMALL, noisy, ivar, mask, 20000.0, 1000.0)
    else:
        target = WavelengthGrid.linear(500.31, 511.0, 0.17 if how == "flux" else 0.07)
        out = resample(wave, noisy, ivar, mask, target, how)
    assert np.array_equal(out.mask, np.broadcast_to(out.mask[0], out.mask.shape))
    good = ~out.mask[0]
    assert good.sum() > 50
    predicted = 1.0 / out.ivar[0, good]
    assert np.array_equal(out.ivar[:, good], np.broadcast_to(out.ivar[0, good], (n, good.sum())))
    empirical = out.flux[:, good].var(axis=0, ddof=1)
    assert np.max(np.abs(empirical / predicted - 1)) < 0.05


# ------------------------------------------------------------------------------------------------ masks
def overlaps(wave_in: np.ndarray, wave_out: np.ndarray, mode: str) -> np.ndarray:
    """(P_out, P_in) True where input pixel i has non-zero weight in output pixel j (computed independently)."""
    if mode == "flux":
        e_in, e_out = pixel_edges(wave_in), pixel_edges(wave_out)
        return (e_out[:-1, None] < e_in[None, 1:]) & (e_out[1:, None] > e_in[None, :-1])
    lower = np.concatenate([[-np.inf], wave_in[:-1]])
    upper = np.concatenate([wave_in[1:], [np.inf]])
    return (wave_out[:, None] > lower[None, :]) & (wave_out[:, None] < upper[None, :])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("per_row", [False, True])
def test_masked_inputs_mask_overlapping_outputs_and_never_contaminate(mode: str, per_row: bool) -> None:
    wave, flux, ivar, mask = bad_input_setup(seed=4)
    target = WavelengthGrid.linear(500.03, 511.9, 0.13 if mode == "flux" else 0.05).wavelength
    wave_in = np.broadcast_to(wave, flux.shape).copy() if per_row else wave
    out = resample(wave_in, flux, ivar, mask, target, mode)
    reference = resample(wave, flux, ivar, np.zeros_like(mask), target, mode)
    touched = overlaps(wave, target, mode)
    for row in range(len(flux)):
        expected = reference.mask[row] | touched[:, mask[row]].any(axis=1)
        assert np.array_equal(out.mask[row], expected)
    assert out.mask[0].sum() > reference.mask[0].sum() + 2
    assert np.all(out.flux[out.mask] == 0) and np.all(out.ivar[out.mask] == 0)
    rng = np.random.default_rng(5)
    garbage = [np.nan, np.inf, -np.inf, 1e300, -7.0, 0.0]
    flux2, ivar2 = flux.copy(), ivar.copy()
    flux2[mask] = rng.choice(garbage, mask.sum())
    ivar2[mask] = rng.choice(garbage, mask.sum())
    again = resample(wave_in, flux2, ivar2, mask, target, mode)
    for name in ("flux", "ivar", "mask"):
        assert np.array_equal(getattr(again, name), getattr(out, name))


def test_bad_flux_and_ivar_count_as_masked() -> None:
    wave, flux, ivar, _ = bad_input_setup(seed=6)
    where = [10, 30, 50, 70, 90, 110]
    flux[0, 10], flux[0, 30] = np.nan, np.inf
    ivar[0, 50], ivar[0, 70], ivar[0, 90], ivar[0, 110] = 0.0, -1.0, np.inf, np.nan
    explicit = np.zeros(flux.shape, dtype=bool)
    explicit[0, where] = True
    for mode in MODES:
        implicit = resample(wave, flux, ivar, np.zeros_like(explicit), SMALL, mode)
        assert np.array_equal(implicit.mask, resample(wave, flux, ivar, explicit, SMALL, mode).mask)
        assert implicit.mask[0, where].all() and implicit.mask.sum() == len(where)
        assert np.all(np.isfinite(implicit.flux)) and np.all(np.isfinite(implicit.ivar))


def test_outputs_outside_input_coverage_are_masked() -> None:
    wave = SMALL.wavelength
    flux, ivar, mask = spectra(wave, 2, seed=8)
    target = WavelengthGrid.linear(495.0, 520.0, 0.1)
    e_in, e_out = SMALL.edges(), target.edges()
    inside = (e_out[:-1] >= e_in[0] - 1e-9) & (e_out[1:] <= e_in[-1] + 1e-9)
    for mode in MODES:
        out = resample(wave, flux, ivar, mask, target, mode)
        assert np.array_equal(out.mask[0], ~inside) and np.array_equal(out.mask[1], ~inside)
        assert np.all(out.ivar[:, ~inside] == 0) and np.all(out.flux[:, ~inside] == 0)
        assert np.all(out.ivar[:, inside] > 0)
    partial = resample(wave, flux, ivar, mask, SMALL.wavelength + 0.03)
    assert partial.mask[:, -1].all() and not partial.mask[:, :-1].any()


def test_identity_resampling_returns_the_input() -> None:
    flux, ivar, mask = spectra(SMALL.wavelength, 2, seed=9)
    for mode in MODES:
        out = resample(SMALL.wavelength, flux, ivar, mask, SMALL, mode)
        assert not out.mask.any()
        assert np.allclose(out.flux, flux, rtol=1e-15, atol=0) and np.allclose(out.ivar, ivar, rtol=1e-12, atol=0)


def test_operator_is_reusable_across_chunks() -> None:
    flux, ivar, mask = spectra(RVS.wavelength, 37, seed=10)
    target = TARGETS["coarser"]
    operator = resampling_operator(RVS.wavelength, target)
    whole = operator.apply(flux, ivar, mask)
    chunked = operator.apply(flux, ivar, mask, chunk_rows=5)
    assert operator.weights.shape == (len(target), len(RVS))
    assert np.allclose(chunked.flux, whole.flux, rtol=1e-15, atol=0) and np.array_equal(chunked.mask, whole.mask)


# ------------------------------------------------------------------------------------------------ errors
def test_duplicated_input_wavelengths_are_named() -> None:
    wave = RVS.wavelength.copy()
    wave[17] = wave[16]
    flux, ivar, mask = spectra(wave, 1, seed=11)
    with pytest.raises(GridError) as info:
        resample(wave, flux, ivar, mask, RVS)
    assert (
        str(info.value)
        == "input wavelengths are not strictly increasing at index 17 (duplicated value: 846.16 == 846.16)"
    )


def test_decreasing_input_wavelengths_are_named_per_spectrum() -> None:
    wave = np.broadcast_to(RVS.wavelength, (3, len(RVS))).copy()
    wave[2, 5] = 846.0
    flux, ivar, mask = spectra(RVS.wavelength, 3, seed=12)
    with pytest.raises(GridError) as info:
        resample(wave, flux, ivar, mask, RVS, "interpolate")
    assert str(info.value) == (
        "input wavelengths of spectrum 2 are not strictly increasing at index 5 (decreasing: 846.04 > 846)"
    )


def test_grid_error_is_a_starlabel_error_with_exit_code_2() -> None:
    assert issubclass(GridError, StarlabelError) and issubclass(GridError, ValueError) and GridError.exit_code == 2
    with pytest.raises(
        GridError, match=r"^unknown resampling mode 'flx'\. Did you mean flux\? Allowed: flux, interpolate$"
    ):
        resample(SMALL.wavelength, *spectra(SMALL.wavelength, 1, seed=14), SMALL, "flx")  # type: ignore[arg-type]
