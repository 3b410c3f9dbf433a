from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from starlabel.augment import AugmentSpec, augment, degrade_snr, doppler_shift, snr_of
from starlabel.wavelengths import C_KMS


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def structured_batch(b: int = 200, p: int = 500, snr: float = 200.0, seed: int = 0):
    """Flux ~1 with lines and a slope, ivar giving S/N `snr` in every pixel, a few masked pixels (ivar 0)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, p)
    flux = 1 + 0.05 * np.sin(40 * x)[None, :] + 0.1 * (x[None, :] - 0.5) * rng.normal(size=(b, 1))
    for centre in (0.2, 0.5, 0.8):
        flux -= 0.4 * rng.uniform(0.3, 1, (b, 1)) * np.exp(-0.5 * ((x - centre) / 0.01) ** 2)
    ivar = (snr / flux) ** 2
    mask = rng.random((b, p)) < 0.02
    ivar[mask] = 0
    return (
        torch.tensor(flux, dtype=torch.float32),
        torch.tensor(ivar, dtype=torch.float32),
        torch.tensor(mask),
        torch.tensor(np.linspace(8470.0, 8700.0, p), dtype=torch.float64),
    )


def line(wavelength: np.ndarray, centre: float = 8542.0, depth: float = 0.6, sigma: float = 1.0) -> np.ndarray:
    return 1 - depth * np.exp(-0.5 * ((wavelength - centre) / sigma) ** 2)


def centroid(wavelength: torch.Tensor, flux: torch.Tensor, good: torch.Tensor | None = None) -> float:
    w = (1 - flux.double()).clamp(min=0) * torch.gradient(wavelength.double())[0]  # integral, for any spacing
    if good is not None:
        w = torch.where(good, w, torch.zeros_like(w))
    return float((w * wavelength.double()).sum() / w.sum())


# ----------------------------------------------------------------------------------------------- noise
def test_noise_reaches_target_snr_by_ivar_and_by_empirical_scatter():
    flux, ivar, mask, wl = structured_batch()
    assert torch.allclose(snr_of(flux, ivar, mask), torch.full((200,), 200.0, dtype=torch.float64), rtol=1e-4)
    f2, i2, m2 = augment(flux, ivar, mask, wl, AugmentSpec(snr=(20, 20)), gen())
    assert torch.equal(m2, mask)
    # S/N from the new inverse variance
    measured = snr_of(f2, i2, m2)
    assert torch.all((measured / 20 - 1).abs() < 0.05)
    # S/N from the scatter actually added: added noise ~ sqrt(1/ivar_new - 1/ivar_old) per pixel
    good = ~mask
    added = (f2 - flux).double()[good]
    expected_sigma = torch.sqrt(1 / i2.double()[good] - 1 / ivar.double()[good])
    z = added / expected_sigma
    assert abs(float(z.std()) - 1) < 0.02 and abs(float(z.mean())) < 0.02
    # total noise k * sigma_old with k**2 = 1 + var(added / sigma_old): empirical S/N = 200 / k
    old_sigma = 1 / ivar.double()[good].sqrt()
    k_emp = math.sqrt(1 + float((added / old_sigma).var()))
    assert abs(200 / k_emp / 20 - 1) < 0.05
    # bad pixels untouched
    assert torch.equal(f2[mask], flux[mask]) and torch.equal(i2[mask], ivar[mask])


def test_target_above_current_snr_leaves_data_unchanged():
    flux, ivar, mask, wl = structured_batch(b=20)
    for snr in ((210, 210), (300, 1000)):
        f2, i2, m2 = augment(flux, ivar, mask, wl, AugmentSpec(snr=snr), gen())
        assert torch.equal(f2, flux) and torch.equal(i2, ivar) and torch.equal(m2, mask)


def test_noise_skips_stars_without_good_pixels_and_draws_snr_in_range():
    flux, ivar, mask, wl = structured_batch(b=50)
    mask[0] = True
    ivar[0] = 0
    f2, i2, m2 = augment(flux, ivar, mask, wl, AugmentSpec(snr=(10, 100)), gen(3))
    assert torch.equal(f2[0], flux[0]) and torch.equal(i2[0], ivar[0])
    measured = snr_of(f2[1:], i2[1:], m2[1:])
    assert torch.all((measured > 10 * 0.95) & (measured < 100 * 1.05))
    # log-uniform: about half below the geometric middle
    assert 0.25 < float((measured < math.sqrt(10 * 100)).double().mean()) < 0.75


def test_degrade_snr_checks_shapes():
    flux, ivar, mask, _ = structured_batch(b=4, p=10)
    with pytest.raises(ValueError, match="target must have shape"):
        degrade_snr(flux, ivar, mask, torch.ones(3), torch.zeros(4, 10))


# ----------------------------------------------------------------------------------------------- velocity
@pytest.mark.parametrize("grid", ["linear", "log", "irregular"])
def test_rv_shift_moves_a_line_by_lambda_v_over_c(grid: str):
    n = 2301
    if grid == "linear":
        wl = np.linspace(8470.0, 8700.0, n)  # 0.1 Angstrom step
    elif grid == "log":
        wl = np.exp(np.linspace(np.log(8470.0), np.log(8700.0), n))
    else:
        wl = np.linspace(8470.0, 8700.0, n)
        wl[1:-1] += np.random.default_rng(1).uniform(-0.04, 0.04, n - 2)  # steps of 0.02 to 0.18
    wavelength = torch.tensor(wl)
    flux = torch.tensor(line(wl), dtype=torch.float32)[None, :].repeat(2, 1)
    ivar = torch.full_like(flux, 1e4)
    mask = torch.zeros_like(flux, dtype=torch.bool)
    f2, i2, m2 = doppler_shift(flux, ivar, mask, wavelength, torch.tensor([100.0, -100.0]))
    expected = 8542.0 * 100 / C_KMS
    before = centroid(wavelength, flux[0])
    assert abs(centroid(wavelength, f2[0], ~m2[0]) - before - expected) < 0.02 * expected
    assert abs(centroid(wavelength, f2[1], ~m2[1]) - before + expected) < 0.02 * expected
    # the pixels that read from outside the grid are masked, everything else is good and finite
    for row, v in ((0, 100.0), (1, -100.0)):
        source = wavelength / (1 + v / C_KMS)
        assert torch.equal(m2[row], (source < wavelength[0]) | (source > wavelength[-1]))
    assert torch.equal(m2, i2 == 0) and bool(torch.isfinite(f2).all()) and bool(torch.isfinite(i2).all())
    assert float(i2[~m2].min()) > 0


def test_rv_shift_zero_returns_input_exactly():
    flux, ivar, mask, wl = structured_batch(b=8, p=300)
    f2, i2, m2 = doppler_shift(flux, ivar, mask, wl, torch.zeros(8))
    assert torch.equal(f2, flux) and torch.equal(i2, ivar) and torch.equal(m2, mask)
    f3, i3, m3 = augment(flux, ivar, mask, wl, AugmentSpec(rv_kms=0.0), gen())
    assert torch.equal(f3, flux) and torch.equal(i3, ivar) and torch.equal(m3, mask)


def test_rv_shift_masks_pixels_that_touch_a_masked_pixel_and_interpolates_variance():
    wl = torch.arange(10, dtype=torch.float64) + 1000.0
    flux = torch.ones(1, 10)
    ivar = torch.full((1, 10), 4.0)
    ivar[0, 5] = 1.0
    mask = torch.zeros(1, 10, dtype=torch.bool)
    mask[0, 2] = True
    ivar[0, 2] = 0.0
    flux[0, 2] = float("nan")
    # shift by half a pixel to the red: new pixel j reads between old j-1 and j
    v = torch.tensor([C_KMS * (1005.0 / 1004.5 - 1)])
    f2, i2, m2 = doppler_shift(flux, ivar, mask, wl, v)
    assert m2[0].tolist() == [True, False, True, True, False, False, False, False, False, False]
    assert bool(torch.isfinite(f2).all()) and torch.equal(m2, i2 == 0)
    # pixel 5 reads 0.5 of old 4 (var 1/4) and 0.5 of old 5 (var 1): var 5/8
    assert float(i2[0, 5]) == pytest.approx(8 / 5, rel=1e-5)


# ----------------------------------------------------------------------------------------------- masking
def test_random_masking_fraction():
    b, p = 400, 1000
    flux = torch.ones(b, p)
    ivar = torch.ones(b, p)
    mask = torch.zeros(b, p, dtype=torch.bool)
    wl = torch.linspace(8470, 8700, p)
    f2, i2, m2 = augment(flux, ivar, mask, wl, AugmentSpec(mask_fraction=0.3), gen())
    frac = m2.double().mean(dim=1)
    assert float(frac.min()) >= 0 and float(frac.max()) <= 0.3
    assert abs(float(frac.mean()) - 0.15) < 0.015
    assert float(frac.std()) > 0.05  # drawn per star, not a constant fraction
    assert torch.equal(m2, i2 == 0) and torch.equal(f2, flux)


# ----------------------------------------------------------------------------------------------- together
FULL = AugmentSpec(snr=(10, 50), rv_kms=300.0, mask_fraction=0.2, probability=0.7)


def test_reproducible_from_generator_and_different_with_another_seed():
    flux, ivar, mask, wl = structured_batch(b=32, p=400)
    a = augment(flux, ivar, mask, wl, FULL, gen(7))
    b = augment(flux, ivar, mask, wl, FULL, gen(7))
    c = augment(flux, ivar, mask, wl, FULL, gen(8))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[2], c[2])


def test_invariants_and_inputs_not_modified():
    flux, ivar, mask, wl = structured_batch(b=64, p=400)
    copies = [flux.clone(), ivar.clone(), mask.clone()]
    f2, i2, m2 = augment(flux, ivar, mask, wl.float(), FULL, gen(1))
    assert all(torch.equal(x, y) for x, y in zip((flux, ivar, mask), copies, strict=True))
    for new, old in zip((f2, i2, m2), (flux, ivar, mask), strict=True):
        assert new.shape == old.shape and new.dtype == old.dtype
    assert bool(torch.isfinite(f2).all()) and bool(torch.isfinite(i2).all())
    assert torch.equal(m2, i2 == 0)  # the input satisfies it, and augmentation keeps it
    changed = (f2 != flux).any(dim=1) | (m2 != mask).any(dim=1)
    assert 0.4 < float(changed.double().mean()) < 0.95  # probability 0.7


def test_probability_zero_or_inactive_spec_leaves_data_unchanged():
    flux, ivar, mask, wl = structured_batch(b=16, p=200)
    assert not AugmentSpec().active and not AugmentSpec(snr=(5, 10), probability=0).active and FULL.active
    for spec in (AugmentSpec(snr=(5, 10), rv_kms=100, mask_fraction=0.5, probability=0.0), AugmentSpec()):
        f2, i2, m2 = augment(flux, ivar, mask, wl, spec, gen())
        assert torch.equal(f2, flux) and torch.equal(i2, ivar) and torch.equal(m2, mask)
        assert f2.data_ptr() != flux.data_ptr()


def test_float64_batch_keeps_its_dtype():
    flux, ivar, mask, wl = structured_batch(b=4, p=100)
    f2, i2, m2 = augment(flux.double(), ivar.double(), mask, wl, FULL, gen())
    assert f2.dtype == i2.dtype == torch.float64 and m2.dtype == torch.bool


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"snr": (0, 10)}, "snr must be"),
        ({"snr": (20, 10)}, "snr must be"),
        ({"snr": 10}, "snr must be"),
        ({"rv_kms": -1}, "rv_kms must be"),
        ({"rv_kms": math.nan}, "rv_kms must be"),
        ({"mask_fraction": 1.5}, "mask_fraction must be"),
        ({"probability": -0.1}, "probability must be"),
    ],
)
def test_spec_rejects_bad_values(kwargs: dict, message: str):
    with pytest.raises(ValueError, match=message):
        AugmentSpec(**kwargs)


def test_augment_rejects_bad_batches():
    flux, ivar, mask, wl = structured_batch(b=4, p=50)
    with pytest.raises(ValueError, match="mask must be a bool"):
        augment(flux, ivar, mask.float(), wl, FULL, gen())
    with pytest.raises(ValueError, match="ivar must be"):
        augment(flux, ivar[:, :10], mask, wl, FULL, gen())
    with pytest.raises(ValueError, match="wavelength must have shape"):
        augment(flux, ivar, mask, wl[:10], FULL, gen())
    with pytest.raises(ValueError, match="strictly increasing"):
        augment(flux, ivar, mask, wl.flip(0), FULL, gen())
    with pytest.raises(ValueError, match="flux must be"):
        augment(flux[0], ivar[0], mask[0], wl, FULL, gen())
