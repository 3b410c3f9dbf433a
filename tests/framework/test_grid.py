"""Wavelength grids, air/vacuum and Doppler conversions, resampling and convolution against known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from starlabel.descriptor import GridSection
from starlabel.errors import StarlabelError
from starlabel.grid import (
    C_KMS,
    FWHM_PER_SIGMA,
    GridError,
    WavelengthGrid,
    air_to_vacuum,
    convert_wavelength,
    convolve_to_resolution,
    doppler_shift_to_rest,
    pixel_edges,
    resample,
    resampling_operator,
    vacuum_to_air,
)

MODES = ("flux", "interpolate")
RVS = WavelengthGrid.linear(846.0, 870.0, 0.01)


def gaussian_line(wave: np.ndarray, centre: float, sigma: float, depth: float = 0.6) -> np.ndarray:
    return 1.0 - depth * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)


def equivalent_width(wave: np.ndarray, flux: np.ndarray) -> float:
    return float(np.sum((1.0 - flux) * np.diff(pixel_edges(wave))))


def line_sigma(wave: np.ndarray, flux: np.ndarray) -> float:
    depth = 1.0 - flux
    centre = np.sum(depth * wave) / np.sum(depth)
    return float(np.sqrt(np.sum(depth * (wave - centre) ** 2) / np.sum(depth)))


def spectra(wave: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.05, 0.2, size=(n, wave.size))
    flux = 1.0 + sigma * rng.standard_normal((n, wave.size))
    return flux, 1.0 / sigma**2, np.zeros(flux.shape, dtype=bool)


# ------------------------------------------------------------------------------------------------ grids
def test_from_section_equals_section_wavelength() -> None:
    for section in (
        GridSection(start=846.0, stop=870.0, step=0.01),
        GridSection(start=1514.0, stop=1514.0 * 10 ** (8000 * 6e-6), step=6e-6, spacing="log"),
        GridSection(start=8460.0, stop=8700.0, step=0.1, unit="Angstrom", medium="air"),
    ):
        grid = WavelengthGrid.from_section(section)
        assert np.array_equal(grid.wavelength, section.wavelength())
        assert (grid.unit, grid.medium, grid.spacing, len(grid)) == (
            section.unit,
            section.medium,
            section.spacing,
            section.n_pixels,
        )


def test_linear_and_log_constructors() -> None:
    assert len(RVS) == 2401 and RVS.wavelength[0] == 846.0 and abs(RVS.wavelength[-1] - 870.0) < 1e-9
    assert RVS == WavelengthGrid.from_section(GridSection(start=846.0, stop=870.0, step=0.01))
    log = WavelengthGrid.log(1500.0, 1700.0, 6e-6)
    assert np.allclose(np.diff(np.log10(log.wavelength)), 6e-6, rtol=1e-6, atol=0)
    assert log.wavelength[7] == 1500.0 * 10 ** (7 * 6e-6)
    assert not RVS.wavelength.flags.writeable


@pytest.mark.parametrize(
    "grid",
    [RVS, WavelengthGrid.log(1500.0, 1700.0, 6e-6, medium="air"), WavelengthGrid.explicit([500.0, 500.5, 502.0], "AA")],
)
def test_as_dict_round_trip_through_json(grid: WavelengthGrid) -> None:
    data = json.loads(json.dumps(grid.as_dict()))
    again = WavelengthGrid.from_dict(data)
    assert again == grid and hash(again) == hash(grid)
    assert np.array_equal(again.wavelength, grid.wavelength) and again.spacing == grid.spacing
    if grid.spacing != "explicit":
        assert "values" not in data and data["n_pixels"] == len(grid)


def test_edges_are_midpoints_with_half_pixel_ends() -> None:
    grid = WavelengthGrid.explicit([1.0, 2.0, 4.0, 8.0])
    assert np.array_equal(grid.edges(), [0.5, 1.5, 3.0, 6.0, 10.0])


def test_unit_and_medium_changes() -> None:
    in_aa = RVS.to_unit("Angstrom")
    assert in_aa.spacing == "linear" and in_aa.step == 0.1 and in_aa.unit == "Angstrom"
    assert np.allclose(in_aa.wavelength, RVS.wavelength * 10, rtol=1e-15, atol=0)
    assert np.allclose(in_aa.to_unit("nm").wavelength, RVS.wavelength, rtol=1e-15, atol=0)
    air = RVS.to_medium("air")
    assert air.medium == "air" and air.spacing == "explicit"
    assert np.allclose(air.to_medium("vacuum").wavelength, RVS.wavelength, rtol=0, atol=1e-9)
    assert RVS != in_aa and RVS.to_medium("vacuum") is RVS


# ----------------------------------------------------------------------------------------- air / vacuum
def test_air_vacuum_round_trip_is_exact() -> None:
    vacuum = np.linspace(300.0, 2500.0, 100_001)
    assert np.max(np.abs(air_to_vacuum(vacuum_to_air(vacuum)) - vacuum)) <= 1e-6
    assert np.max(np.abs(vacuum_to_air(air_to_vacuum(vacuum)) - vacuum)) <= 1e-6


@pytest.mark.parametrize(("vacuum", "air"), [(850.035, 849.802), (656.461, 656.280)])
def test_air_vacuum_known_lines(vacuum: float, air: float) -> None:
    assert abs(vacuum_to_air(vacuum) - air) < 0.002
    assert abs(air_to_vacuum(air) - vacuum) < 0.002
    assert abs(vacuum_to_air(vacuum * 10, "Angstrom") / 10 - vacuum_to_air(vacuum)) < 1e-9
    assert convert_wavelength(vacuum, "nm", "vacuum", "Angstrom", "air") == pytest.approx(vacuum_to_air(vacuum) * 10)


def test_no_air_conversion_below_200_nm() -> None:
    assert vacuum_to_air(150.0) == 150.0 and air_to_vacuum(150.0) == 150.0


# ---------------------------------------------------------------------------------------------- doppler
def test_doppler_shift_returns_line_to_rest() -> None:
    rest = 850.035
    beta = 100.0 / C_KMS
    relativistic = rest * math.sqrt((1 + beta) / (1 - beta))
    back = doppler_shift_to_rest(np.array([relativistic, rest * (1 + beta)]), np.array([100.0]))
    assert back.shape == (1, 2)
    assert abs(back[0, 0] / rest - 1) < 1e-12
    assert abs(back[0, 1] / rest - 1) < 1e-6
    per_row = doppler_shift_to_rest(np.array([[rest * (1 + beta)], [rest * (1 - beta)]]), [100.0, -100.0])
    assert np.allclose(per_row[:, 0], rest, rtol=1e-6, atol=0)


def test_doppler_shift_rejects_unusable_velocity() -> None:
    with pytest.raises(GridError, match=r"^velocity of spectrum 1 is unusable \(nan km/s\)"):
        doppler_shift_to_rest(RVS.wavelength, [1.0, np.nan])


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


# ------------------------------------------------------------------------------------ noise propagation
SMALL = WavelengthGrid.linear(500.0, 512.0, 0.1)


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
def bad_input_setup(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    wave = SMALL.wavelength
    flux, ivar, mask = spectra(wave, 4, seed=seed)
    mask[0, [10, 11, 40]] = True
    mask[1, 0] = True
    mask[2, 77] = True
    mask[3, -1] = True
    return wave, flux, ivar, mask


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


def test_grid_errors() -> None:
    with pytest.raises(GridError) as info:
        WavelengthGrid.explicit([850.0, 851.0, 851.0])
    assert str(info.value) == "grid wavelengths are not strictly increasing at index 2 (duplicated value: 851 == 851)"
    with pytest.raises(GridError) as info:
        WavelengthGrid.explicit([850.0, np.nan, 852.0])
    assert str(info.value) == "grid wavelengths are not finite at index 1 (nan)"
    with pytest.raises(GridError, match=r"^grid wavelengths must be 1-D, got shape \(1, 3\)$"):
        WavelengthGrid.explicit([[850.0, 851.0, 852.0]])
    with pytest.raises(GridError) as info:
        WavelengthGrid.linear(846.0, 870.0, 0.01, medium="vac")  # type: ignore[arg-type]
    assert str(info.value) == "unknown medium 'vac'. Did you mean vacuum? Allowed: vacuum, air"


def test_unknown_unit_lists_examples() -> None:
    with pytest.raises(GridError) as info:
        vacuum_to_air(850.0, unit="nmm")
    assert str(info.value) == (
        "unknown wavelength unit 'nmm'. Did you mean nm? Allowed: any astropy length unit, e.g. nm, Angstrom, AA, "
        "um, micron, m"
    )
    with pytest.raises(GridError) as info:
        WavelengthGrid.linear(846.0, 870.0, 0.01, unit="s")
    assert str(info.value) == (
        "'s' is a time unit, not a wavelength unit. Allowed: any astropy length unit, e.g. nm, Angstrom, AA, um, micron, m"
    )


def test_resolution_must_decrease() -> None:
    flux, ivar, mask = spectra(SMALL.wavelength, 1, seed=13)
    with pytest.raises(GridError) as info:
        convolve_to_resolution(SMALL, flux, ivar, mask, 5000.0, 5000.0)
    assert str(info.value) == (
        "target resolving power r_out=5000 must be lower than the input r_in=5000; convolution can only lower the resolution"
    )


def test_grid_error_is_a_starlabel_error_with_exit_code_2() -> None:
    assert issubclass(GridError, StarlabelError) and issubclass(GridError, ValueError) and GridError.exit_code == 2
    with pytest.raises(
        GridError, match=r"^unknown resampling mode 'flx'\. Did you mean flux\? Allowed: flux, interpolate$"
    ):
        resample(SMALL.wavelength, *spectra(SMALL.wavelength, 1, seed=14), SMALL, "flx")  # type: ignore[arg-type]
