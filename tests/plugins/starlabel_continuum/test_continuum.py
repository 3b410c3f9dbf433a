"""Known-answer and contract tests of the ``chebyshev`` and ``running_quantile`` normalisers."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from numpy.polynomial import chebyshev
from pydantic import ValidationError

from starlabel.components import Normaliser
from starlabel.descriptor import Arm, load_descriptor
from starlabel.errors import DescriptorError, StarlabelError
from starlabel.plugins import Plugins, load_plugins
from starlabel_continuum.errors import ContinuumInputError
from starlabel_continuum.running import boxcar, running_quantile, window_bounds

METHODS = ("chebyshev", "running_quantile")
WAVE = 846.0 + 0.01 * np.arange(2401)  # Gaia RVS-like grid, nm
SNR = 200.0
LINES = (  # centre (nm), depth, Gaussian sigma (nm): narrow next to the 5 nm running window
    (847.6, 0.30, 0.04),
    (851.3, 0.60, 0.05),
    (854.8, 0.45, 0.03),
    (858.2, 0.50, 0.05),
    (861.9, 0.60, 0.06),
    (865.4, 0.35, 0.04),
    (868.8, 0.40, 0.05),
)


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return load_plugins(entry_points=False, environ={})


def make(plugins: Plugins, method: str, **options: object) -> Normaliser:
    return plugins.normalisers.get(method)(options)


def profile(wave: np.ndarray) -> np.ndarray:
    """Absorption profile: the product of the Gaussian lines of :data:`LINES`."""
    out = np.ones_like(wave)
    for centre, depth, sigma in LINES:
        out *= 1.0 - depth * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)
    return out


def observe(
    continuum: np.ndarray, shape: np.ndarray, seed: int, snr: float = SNR
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flux, ivar and an empty mask for (N, P) ``continuum`` × ``shape`` with Gaussian noise at ``snr``."""
    rng = np.random.default_rng(seed)
    truth = continuum * shape
    sigma = truth / snr
    flux = truth + rng.normal(size=truth.shape) * sigma
    return flux, 1.0 / sigma**2, np.zeros(truth.shape, dtype=bool)


def cubic(wave: np.ndarray, coef: tuple[float, ...], n: int, seed: int) -> np.ndarray:
    """(n, P) continua: a polynomial in x ∈ [-1, 1] across ``wave``, times a random level per spectrum."""
    x = (2 * wave - wave[0] - wave[-1]) / (wave[-1] - wave[0])
    levels = np.random.default_rng(seed).uniform(0.5, 2.0, size=(n, 1))
    return levels * np.polynomial.polynomial.polyval(x, coef)[None, :]


@contextmanager
def no_warnings() -> Iterator[None]:
    """Fail on any warning (a silent division by zero shows up as a RuntimeWarning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


GENTLE = (1.0, 0.015, 0.01)  # about 2.5 % across the range: a running quantile's realistic use
STEEP = (1.0, 0.15, -0.10, 0.05)  # about 35 % across the range, with curvature


# ------------------------------------------------------------------------------------------ registration
def test_both_methods_are_registered_by_the_plugin(plugins: Plugins) -> None:
    for method in METHODS:
        entry = plugins.normalisers.entry(method)
        assert entry.plugin == "starlabel_continuum"
        assert entry.cls.citation and entry.cls.data_model_url and entry.cls.status == "experimental"


# ---------------------------------------------------------------------------------------- known answers
def test_chebyshev_recovers_a_cubic_continuum_under_deep_lines(plugins: Plugins) -> None:
    continuum = cubic(WAVE, STEEP, n=16, seed=1)
    flux, ivar, mask = observe(continuum, profile(WAVE), seed=2)
    out = make(plugins, "chebyshev").normalise(WAVE, flux, ivar, mask)
    error = out.continuum / continuum - 1
    assert np.abs(error).max() < 0.003  # reached: 0.15 %
    assert np.sqrt(np.mean((out.flux - profile(WAVE)) ** 2)) < 1.1 / SNR  # only the noise is left
    assert not out.mask.any()


def test_running_quantile_recovers_a_gentle_continuum_under_narrow_lines(plugins: Plugins) -> None:
    continuum = cubic(WAVE, GENTLE, n=16, seed=3)
    flux, ivar, mask = observe(continuum, profile(WAVE), seed=4)
    out = make(plugins, "running_quantile").normalise(WAVE, flux, ivar, mask)
    error = out.continuum / continuum - 1
    assert np.abs(error).max() < 0.01
    # the 0.9 quantile of pure noise lies 1.28 sigma high: the documented bias of the method
    assert 0.8 * 1.28 / SNR < error.mean() < 1.3 * 1.28 / SNR
    assert np.abs(out.flux - profile(WAVE)).mean() < 0.01
    assert not out.mask.any()


def test_running_quantile_stride_only_skips_work(plugins: Plugins) -> None:
    continuum = cubic(WAVE, GENTLE, n=4, seed=5)
    flux, ivar, mask = observe(continuum, profile(WAVE), seed=6)
    every = make(plugins, "running_quantile").normalise(WAVE, flux, ivar, mask)
    strided = make(plugins, "running_quantile", stride=10).normalise(WAVE, flux, ivar, mask)
    np.testing.assert_allclose(strided.continuum, every.continuum, rtol=1e-3)


def test_chebyshev_without_clipping_is_numpys_weighted_fit(plugins: Plugins) -> None:
    continuum = cubic(WAVE, STEEP, n=3, seed=7)
    flux, ivar, mask = observe(continuum, np.ones_like(WAVE), seed=8, snr=50)
    ivar[:, ::7] *= 3.0  # uneven weights
    out = make(plugins, "chebyshev", degree=4, iterations=0).normalise(WAVE, flux, ivar, mask)
    x = (2 * WAVE - WAVE[0] - WAVE[-1]) / (WAVE[-1] - WAVE[0])
    for row in range(3):
        coef = chebyshev.chebfit(x, flux[row], 4, w=np.sqrt(ivar[row]))
        np.testing.assert_allclose(out.continuum[row], chebyshev.chebval(x, coef), rtol=1e-9)


def test_chebyshev_windows_keep_a_non_continuum_bump_out_of_the_fit(plugins: Plugins) -> None:
    continuum = cubic(WAVE, STEEP, n=4, seed=9)
    bump = 1 + 0.5 * np.exp(-0.5 * ((WAVE - 858.0) / 1.5) ** 2)  # broad emission no clipping can reject
    flux, ivar, mask = observe(continuum, bump, seed=10)
    windows = [[846.0, 853.0], [863.0, 870.0]]
    fitted = make(plugins, "chebyshev", windows=windows).normalise(WAVE, flux, ivar, mask)
    np.testing.assert_allclose(fitted.continuum / continuum, 1, atol=0.01)
    everywhere = make(plugins, "chebyshev").normalise(WAVE, flux, ivar, mask)
    assert np.abs(everywhere.continuum / continuum - 1).max() > 0.05


def test_per_arm_fits_follow_a_jump_between_arms(plugins: Plugins) -> None:
    arms = [(846.0, 857.5), (858.5, 870.0)]  # pixels in the 857.5–858.5 gap belong to no arm
    blue, red = WAVE <= 857.5, WAVE >= 858.5
    continuum = np.where(
        blue, cubic(WAVE, (1.0, 0.01), n=8, seed=11), 2.5 * cubic(WAVE, (1.0, 0.0, 0.01), n=8, seed=12)
    )
    flux, ivar, mask = observe(continuum, profile(WAVE), seed=13)
    inside = blue | red
    for method, tolerance in (("chebyshev", 0.003), ("running_quantile", 0.01)):
        out = make(plugins, method).normalise(WAVE, flux, ivar, mask, arms=arms)
        assert np.abs(out.continuum[:, inside] / continuum[:, inside] - 1).max() < tolerance, method
        assert out.mask[:, ~inside].all() and not out.mask[:, inside].any(), method
        assert np.isnan(out.flux[:, ~inside]).all() and (out.ivar[:, ~inside] == 0).all(), method
    whole = make(plugins, "chebyshev").normalise(WAVE, flux, ivar, mask)
    assert np.abs(whole.continuum / continuum - 1).max() > 0.1  # one polynomial cannot follow the jump


def test_arms_may_be_descriptor_arms(plugins: Plugins) -> None:
    continuum = cubic(WAVE, GENTLE, n=2, seed=14)
    flux, ivar, mask = observe(continuum, profile(WAVE), seed=15)
    cheb = make(plugins, "chebyshev")
    pairs = cheb.normalise(WAVE, flux, ivar, mask, arms=[(846.0, 858.0), (858.0, 870.0)])
    models = cheb.normalise(
        WAVE, flux, ivar, mask, arms=[Arm(name="a", start=846.0, stop=858.0), Arm(name="b", start=858.0, stop=870.0)]
    )
    np.testing.assert_array_equal(pairs.continuum, models.continuum)


# -------------------------------------------------------------------------------------- ivar and masks
@pytest.mark.parametrize("method", METHODS)
def test_ivar_scales_as_continuum_squared_exactly(plugins: Plugins, method: str) -> None:
    continuum = cubic(WAVE, STEEP, n=5, seed=16)
    flux, ivar, mask = observe(continuum, profile(WAVE), seed=17)
    out = make(plugins, method).normalise(WAVE, flux, ivar, mask)
    np.testing.assert_array_equal(out.ivar, ivar * out.continuum**2)
    np.testing.assert_array_equal(out.flux, flux / out.continuum)
    assert out.flux.dtype == np.float64


@pytest.mark.parametrize("method", METHODS)
def test_masked_pixels_stay_masked_and_do_not_change_the_fit(plugins: Plugins, method: str) -> None:
    continuum = cubic(WAVE, STEEP, n=6, seed=18)
    flux, ivar, _ = observe(continuum, profile(WAVE), seed=19)
    mask = np.random.default_rng(20).random(flux.shape) < 0.05
    mask[:, 1200:1210] = True
    clean = make(plugins, method).normalise(WAVE, flux, ivar, mask)
    junk_flux, junk_ivar = flux.copy(), ivar.copy()
    junk_flux[mask] = np.resize([1e30, np.nan, -np.inf, -5.0, 0.0], mask.sum())
    junk_ivar[mask] = np.resize([np.nan, 1e30, -1.0, 0.0], mask.sum())
    with no_warnings():
        junk = make(plugins, method).normalise(WAVE, junk_flux, junk_ivar, mask)
    np.testing.assert_array_equal(junk.continuum, clean.continuum)  # everywhere, masked pixels included
    np.testing.assert_array_equal(junk.flux[~mask], clean.flux[~mask])
    np.testing.assert_array_equal(junk.ivar[~mask], clean.ivar[~mask])
    np.testing.assert_array_equal(junk.mask, clean.mask)
    assert junk.mask[mask].all()


def test_an_arm_with_too_few_good_pixels_is_masked(plugins: Plugins) -> None:
    arms = [(846.0, 857.99), (858.0, 870.0)]
    red = WAVE >= 858.0
    continuum = cubic(WAVE, GENTLE, n=3, seed=21)
    flux, ivar, mask = observe(continuum, profile(WAVE), seed=22)
    keep = np.flatnonzero(red)[[10, 500, 1000]]  # three good pixels: too few for degree 3
    mask[0, red] = True
    mask[0, keep] = False
    with no_warnings():
        out = make(plugins, "chebyshev", degree=3).normalise(WAVE, flux, ivar, mask, arms=arms)
    assert out.mask[0, red].all() and np.isnan(out.continuum[0, red]).all() and (out.ivar[0, red] == 0).all()
    assert not out.mask[0, ~red].any()
    assert not out.mask[1:].any()
    linear = make(plugins, "chebyshev", degree=2).normalise(WAVE, flux, ivar, mask, arms=arms)
    assert not linear.mask[0, keep].any()  # three points are enough for degree 2


def test_running_quantile_masks_an_arm_without_good_pixels(plugins: Plugins) -> None:
    arms = [(846.0, 857.99), (858.0, 870.0)]
    red = WAVE >= 858.0
    continuum = cubic(WAVE, GENTLE, n=2, seed=23)
    flux, ivar, mask = observe(continuum, profile(WAVE), seed=24)
    ivar[0, red] = 0.0  # unknown variance counts as bad
    with no_warnings():
        out = make(plugins, "running_quantile").normalise(WAVE, flux, ivar, mask, arms=arms)
    assert out.mask[0, red].all() and not out.mask[0, ~red].any() and not out.mask[1].any()


def test_a_non_positive_continuum_is_masked_not_divided(plugins: Plugins) -> None:
    flux = np.linspace(-1.0, 1.0, WAVE.size)[None, :]  # a continuum that crosses zero
    ivar = np.ones_like(flux)
    with no_warnings():
        out = make(plugins, "chebyshev", degree=1).normalise(WAVE, flux, ivar, np.zeros(flux.shape, bool))
    low = np.flatnonzero(out.mask[0])
    assert low.size and (flux[0, low] <= 1e-9).all() and not out.mask[0, flux[0] > 1e-3].any()
    assert np.isnan(out.flux[0, low]).all() and (out.ivar[0, low] == 0).all()


# ------------------------------------------------------------------------------------------- contracts
@pytest.mark.parametrize("method", METHODS)
def test_no_spectra_and_all_masked_spectra_do_not_raise(plugins: Plugins, method: str) -> None:
    normaliser = make(plugins, method)
    empty = np.zeros((0, WAVE.size))
    with no_warnings():
        out = normaliser.normalise(WAVE, empty, empty, empty.astype(bool))
    assert out.flux.shape == out.ivar.shape == out.mask.shape == out.continuum.shape == (0, WAVE.size)
    flux = np.ones((3, WAVE.size))
    with no_warnings():
        out = normaliser.normalise(WAVE, flux, flux, np.ones(flux.shape, bool), arms=[(846.0, 860.0)])
    assert out.mask.all() and np.isnan(out.flux).all() and (out.ivar == 0).all()


@pytest.mark.parametrize("method", METHODS)
def test_float32_stays_float32(plugins: Plugins, method: str) -> None:
    continuum = cubic(WAVE, GENTLE, n=2, seed=25)
    flux, ivar, mask = observe(continuum, profile(WAVE), seed=26)
    out = make(plugins, method).normalise(WAVE, flux.astype(np.float32), ivar.astype(np.float32), mask)
    assert out.flux.dtype == out.ivar.dtype == out.continuum.dtype == np.float32


@pytest.mark.parametrize("method", METHODS)
def test_inconsistent_inputs_raise_a_starlabel_error(plugins: Plugins, method: str) -> None:
    normaliser = make(plugins, method)
    flux = np.ones((2, WAVE.size))
    mask = np.zeros(flux.shape, bool)
    with pytest.raises(ContinuumInputError, match="must have one shape"):
        normaliser.normalise(WAVE, flux, flux[:, :-1], mask)
    with pytest.raises(ContinuumInputError, match=r"flux must be \(N, 2400\)"):
        normaliser.normalise(WAVE[:-1], flux, flux, mask)
    with pytest.raises(ContinuumInputError, match="strictly increasing"):
        normaliser.normalise(WAVE[::-1], flux, flux, mask)
    with pytest.raises(ContinuumInputError, match=r"arms\[1\]: start \(870.0\) must be less than stop"):
        normaliser.normalise(WAVE, flux, flux, mask, arms=[(846.0, 858.0), (870.0, 858.0)])
    assert issubclass(ContinuumInputError, StarlabelError)


@pytest.mark.parametrize(
    ("method", "options", "field"),
    [
        ("chebyshev", {"degree": -1}, "degree"),
        ("chebyshev", {"degree": 2.5}, "degree"),
        ("chebyshev", {"clip_low": 0}, "clip_low"),
        ("chebyshev", {"clip_high": -1.0}, "clip_high"),
        ("chebyshev", {"iterations": -2}, "iterations"),
        ("chebyshev", {"windows": [[500.0, 400.0]]}, "windows"),
        ("chebyshev", {"windows": [[400.0]]}, "windows"),
        ("chebyshev", {"dgree": 3}, "dgree"),
        ("running_quantile", {"quantile": 1.5}, "quantile"),
        ("running_quantile", {"quantile": -0.1}, "quantile"),
        ("running_quantile", {"width": 0}, "width"),
        ("running_quantile", {"stride": 0}, "stride"),
    ],
)
def test_invalid_options_raise_validation_errors(plugins: Plugins, method: str, options: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        plugins.normalisers.get(method)(options)


def test_defaults(plugins: Plugins) -> None:
    cheb = plugins.normalisers.get("chebyshev").Options()
    assert (cheb.degree, cheb.windows, cheb.clip_low, cheb.clip_high, cheb.iterations) == (3, (), 2.0, 3.0, 5)
    quant = plugins.normalisers.get("running_quantile").Options()
    assert (quant.quantile, quant.width, quant.stride) == (0.9, 5.0, 1)


# ------------------------------------------------------------------------------------ running kernels
def test_running_kernels_match_a_loop_with_numpy_quantile() -> None:
    rng = np.random.default_rng(27)
    wave = np.cumsum(rng.uniform(0.5, 1.5, size=60))  # uneven grid
    values = rng.normal(size=(3, 60))
    good = rng.random((3, 60)) > 0.3
    good[1, 20:45] = False  # windows with no good pixel
    values[~good] = np.nan
    lo, hi = window_bounds(wave, 6.0)
    got = running_quantile(values, good, lo, hi, 0.8)
    averaged = boxcar(got, lo, hi)
    for row in range(3):
        for i in range(60):
            inside = np.abs(wave - wave[i]) <= 3.0
            assert inside[lo[i] : hi[i]].all() and inside.sum() == hi[i] - lo[i]
            pick = values[row, inside & good[row]]
            expected = np.quantile(pick, 0.8) if pick.size else np.nan
            np.testing.assert_allclose(got[row, i], expected, rtol=1e-6, atol=1e-6)
            finite = got[row, inside][np.isfinite(got[row, inside])]
            np.testing.assert_allclose(averaged[row, i], finite.mean() if finite.size else np.nan, rtol=1e-9)


# ------------------------------------------------------------------------------------------ descriptors
DESCRIPTOR = """\
schema_version: 1
name: cont_test
instrument: {reader: gaia_xp_sampled}
grid: {start: 336, stop: 1020, step: 2}
normalise: {method: METHOD, options: {degree: 4, windows: [[400, 500]]}}
"""


def test_a_descriptor_names_the_normaliser_and_its_options(plugins: Plugins, tmp_path: Path) -> None:
    path = tmp_path / "cont_test.yaml"
    path.write_text(DESCRIPTOR.replace("METHOD", "chebyshev"))
    resolved = load_descriptor(path, plugins)
    options = resolved.options["normalise"]
    assert options.degree == 4 and options.windows == ((400.0, 500.0),)
    assert resolved.resolved()["normalise"]["options"]["clip_low"] == 2.0


def test_a_misspelt_normaliser_is_suggested(plugins: Plugins, tmp_path: Path) -> None:
    path = tmp_path / "cont_test.yaml"
    path.write_text(DESCRIPTOR.replace("METHOD", "chebychev"))
    with pytest.raises(DescriptorError) as caught:
        load_descriptor(path, plugins)
    assert "unknown normaliser 'chebychev'. Did you mean chebyshev?" in str(caught.value)
    assert f"{path}:5: normalise.method" in str(caught.value)


def test_descriptor_option_errors_name_the_key(plugins: Plugins, tmp_path: Path) -> None:
    path = tmp_path / "cont_test.yaml"
    path.write_text(DESCRIPTOR.replace("METHOD", "chebyshev").replace("degree: 4", "degree: -4"))
    with pytest.raises(DescriptorError, match=r"normalise\.options\.degree"):
        load_descriptor(path, plugins)
