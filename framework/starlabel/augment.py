"""Training-time augmentation of a batch of spectra on a known wavelength grid: noise, radial velocity, masking.

Everything is drawn from one :class:`torch.Generator`, in a fixed order and with shapes that depend only on
the batch shape and the :class:`AugmentSpec`, so the same generator state gives the same output.

Conventions
-----------
Batch
    ``flux`` and ``ivar`` are floating ``(B, P)``, ``mask`` is bool ``(B, P)`` (True = bad), ``wavelength``
    is ``(P,)`` and strictly increasing, with any spacing (linear, logarithmic or irregular).
Good pixels
    A pixel is good when its mask is False, its flux is finite and its inverse variance is finite and
    positive. Only good pixels receive noise and only good pixels feed an unmasked shifted pixel.
Order
    A star picked for augmentation (probability :attr:`AugmentSpec.probability`) is shifted in velocity,
    then degraded to its target S/N, then randomly masked: the physical change first, then the
    instrument's. Stars not picked are returned bit for bit.
Masked output
    A pixel that augmentation masks has ``mask=True`` and ``ivar=0``; its flux stays finite (the
    interpolated value where there is one, the input flux for random masking, 0 outside the grid).
    Pixels that augmentation leaves alone keep their input values, whatever they were.
Inputs are never modified in place; shapes and dtypes are preserved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from starlabel.wavelengths import C_KMS


@dataclass(frozen=True)
class AugmentSpec:
    """What to do to each star of a training batch.

    Parameters
    ----------
    snr : (float, float) or None
        Target signal-to-noise ratio, drawn log-uniformly per star in ``[lo, hi]`` (``0 < lo <= hi``);
        a star already noisier than its target is left alone. None: no noise is added.
    rv_kms : float
        Radial-velocity shift in km/s, drawn uniformly per star in ``[-rv_kms, rv_kms]`` (``0 <= rv_kms < c``).
    mask_fraction : float
        Fraction of pixels masked, drawn uniformly per star in ``[0, mask_fraction]`` (``0 <= mask_fraction <= 1``).
    probability : float
        Chance that a star is augmented at all (``0 <= probability <= 1``).
    """

    snr: tuple[float, float] | None = None
    rv_kms: float = 0.0
    mask_fraction: float = 0.0
    probability: float = 1.0

    def __post_init__(self) -> None:
        if self.snr is not None:
            try:
                lo, hi = (float(v) for v in self.snr)
            except (TypeError, ValueError):
                raise ValueError(f"snr must be None or a pair (lo, hi) of numbers, got {self.snr!r}") from None
            if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
                raise ValueError(f"snr must be None or (lo, hi) with finite 0 < lo <= hi, got {self.snr!r}")
            object.__setattr__(self, "snr", (lo, hi))
        if not (math.isfinite(self.rv_kms) and 0 <= self.rv_kms < C_KMS):
            raise ValueError(f"rv_kms must be in [0, {C_KMS}) km/s, got {self.rv_kms!r}")
        if not (0 <= self.mask_fraction <= 1):
            raise ValueError(f"mask_fraction must be in [0, 1], got {self.mask_fraction!r}")
        if not (0 <= self.probability <= 1):
            raise ValueError(f"probability must be in [0, 1], got {self.probability!r}")

    @property
    def active(self) -> bool:
        """Whether :func:`augment` can change anything (some augmentation is on and the probability is > 0)."""
        some = self.snr is not None or self.rv_kms > 0 or self.mask_fraction > 0
        return some and self.probability > 0


def augment(
    flux: Tensor,
    ivar: Tensor,
    mask: Tensor,
    wavelength: Tensor,
    spec: AugmentSpec,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor, Tensor]:
    """Augment a batch of spectra: velocity shift, noise to a target S/N, random masking.

    Parameters
    ----------
    flux, ivar : Tensor
        Floating ``(B, P)``: flux and inverse variance.
    mask : Tensor
        Bool ``(B, P)``, True = bad pixel.
    wavelength : Tensor
        ``(P,)`` strictly increasing wavelengths of the pixels (any spacing).
    spec : AugmentSpec
        What to draw.
    generator : torch.Generator
        Source of every random number; draws are made on its device and moved to ``flux``'s.

    Returns
    -------
    flux, ivar, mask : Tensor
        New tensors with the shapes and dtypes of the inputs.
    """
    _check_batch(flux, ivar, mask, wavelength)
    flux, ivar, mask = flux.clone(), ivar.clone(), mask.clone()
    if not spec.active or flux.shape[0] == 0:
        return flux, ivar, mask
    b, p = flux.shape
    picked = _uniform((b,), generator, flux.device) < spec.probability
    if spec.rv_kms > 0:
        v = (2 * _uniform((b,), generator, flux.device) - 1) * spec.rv_kms
        f, i, m = doppler_shift(flux, ivar, mask, wavelength, v)
        rows = picked[:, None]
        flux, ivar, mask = torch.where(rows, f, flux), torch.where(rows, i, ivar), torch.where(rows, m, mask)
    if spec.snr is not None:
        lo, hi = spec.snr
        u = _uniform((b,), generator, flux.device).double()
        target = torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        target = torch.where(picked, target, torch.full_like(target, math.inf))
        noise = torch.randn((b, p), generator=generator, device=generator.device).to(flux.device)
        flux, ivar, mask = degrade_snr(flux, ivar, mask, target, noise)
    if spec.mask_fraction > 0:
        fraction = _uniform((b,), generator, flux.device) * spec.mask_fraction
        order = torch.rand((b, p), generator=generator, device=generator.device).to(flux.device).argsort(dim=1)
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(p, device=flux.device).expand(b, p))
        n_mask = torch.round(fraction.double() * p).long()
        hit = (rank < n_mask[:, None]) & picked[:, None]
        mask = mask | hit
        ivar = torch.where(hit, torch.zeros_like(ivar), ivar)
    # augmented stars come out finite even where the input was not (such pixels are masked)
    broken = picked[:, None] & ~(torch.isfinite(flux) & torch.isfinite(ivar))
    flux = torch.where(broken & ~torch.isfinite(flux), torch.zeros_like(flux), flux)
    ivar = torch.where(broken, torch.zeros_like(ivar), ivar)
    return flux, ivar, mask | broken


def snr_of(flux: Tensor, ivar: Tensor, mask: Tensor) -> Tensor:
    """Median over good pixels of ``|flux| * sqrt(ivar)`` per star, float64 ``(B,)``; NaN for a star with none."""
    good = _good(flux, ivar, mask)
    pix = flux.double().abs() * ivar.double().clamp(min=0).sqrt()
    return torch.nanmedian(torch.where(good, pix, torch.full_like(pix, math.nan)), dim=1).values


def degrade_snr(
    flux: Tensor, ivar: Tensor, mask: Tensor, target: Tensor, noise: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Add Gaussian noise so that each star's median S/N (see :func:`snr_of`) drops to its target.

    With ``k = current / target > 1``, each good pixel gets ``noise * sqrt(k**2 - 1) / sqrt(ivar)`` added
    and its inverse variance divided by ``k**2``. Stars whose target is at or above their current S/N
    (including an infinite target) and stars with no good pixels are returned unchanged, as are bad pixels.

    Parameters
    ----------
    flux, ivar, mask : Tensor
        The batch, as in :func:`augment`.
    target : Tensor
        ``(B,)`` target S/N per star (positive).
    noise : Tensor
        ``(B, P)`` standard normal deviates.

    Returns
    -------
    flux, ivar, mask : Tensor
        New tensors; a pixel whose inverse variance underflows to 0 is masked.
    """
    _check_batch(flux, ivar, mask)
    if target.shape != flux.shape[:1] or noise.shape != flux.shape:
        raise ValueError(
            f"target must have shape {tuple(flux.shape[:1])} and noise {tuple(flux.shape)}, "
            f"got {tuple(target.shape)} and {tuple(noise.shape)}"
        )
    good = _good(flux, ivar, mask)
    current = snr_of(flux, ivar, mask)
    target = target.to(device=flux.device, dtype=torch.float64)
    k = current / target
    change = torch.isfinite(k) & (k > 1)
    k = torch.where(change, k, torch.ones_like(k))[:, None]
    touch = good & change[:, None]
    sigma = torch.sqrt(k**2 - 1) / ivar.double().clamp(min=torch.finfo(torch.float64).tiny).sqrt()
    new_flux = (flux.double() + noise.to(flux.device).double() * sigma).to(flux.dtype)
    new_ivar = (ivar.double() / k**2).to(ivar.dtype)
    flux = torch.where(touch, new_flux, flux)
    ivar = torch.where(touch, new_ivar, ivar)
    mask = mask | (touch & (new_ivar == 0))
    return flux, ivar, mask


def doppler_shift(
    flux: Tensor, ivar: Tensor, mask: Tensor, wavelength: Tensor, v_kms: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Shift each star by its velocity: ``new_flux(lam) = flux(lam / (1 + v / c))``, linear interpolation.

    The variance ``1 / ivar`` is interpolated linearly with the same weights and inverted. A pixel is
    masked (``ivar = 0``) when an input pixel with non-zero weight is bad or when ``lam / (1 + v / c)``
    falls outside the grid; its flux is the interpolated value where that is finite, 0 otherwise. A
    velocity of exactly 0 returns the input values (every pixel of such a star follows the rule
    above, so only inconsistent input pixels, e.g. unmasked with ``ivar = 0``, change).

    Parameters
    ----------
    flux, ivar, mask, wavelength : Tensor
        The batch, as in :func:`augment` (at least 2 pixels).
    v_kms : Tensor
        ``(B,)`` velocity per star in km/s, positive receding (lines move to longer wavelengths).

    Returns
    -------
    flux, ivar, mask : Tensor
        New tensors with the input shapes and dtypes.
    """
    _check_batch(flux, ivar, mask, wavelength)
    b, p = flux.shape
    if p < 2:
        raise ValueError(f"a velocity shift needs at least 2 pixels, got {p}")
    v = v_kms.to(device=flux.device, dtype=torch.float64)
    if v.shape != (b,) or not bool(torch.all(v.abs() < C_KMS)):
        raise ValueError(f"v_kms must have shape ({b},) with |v| < {C_KMS} km/s, got shape {tuple(v.shape)}")
    wl = wavelength.to(device=flux.device, dtype=torch.float64)
    src = wl[None, :] / (1 + v[:, None] / C_KMS)
    left = (torch.searchsorted(wl, src, right=True) - 1).clamp(0, p - 2)
    right = left + 1
    t = (src - wl[left]) / (wl[right] - wl[left])
    inside = (t >= 0) & (t <= 1)
    t = t.clamp(0, 1)
    use_left, use_right = t < 1, t > 0

    good = _good(flux, ivar, mask)
    f = torch.where(good, flux.double(), torch.zeros((), dtype=torch.float64, device=flux.device))
    var = torch.where(good, 1 / ivar.double(), torch.zeros((), dtype=torch.float64, device=flux.device))
    fl, fr, vl, vr = f.gather(1, left), f.gather(1, right), var.gather(1, left), var.gather(1, right)
    # exact at the nodes: a pixel that lands on an input pixel takes its values bit for bit
    new_f = torch.where(use_left & use_right, fl + t * (fr - fl), torch.where(use_left, fl, fr))
    new_var = torch.where(use_left & use_right, vl + t * (vr - vl), torch.where(use_left, vl, vr))
    ok = inside & ~(use_left & ~good.gather(1, left)) & ~(use_right & ~good.gather(1, right))
    new_ivar = torch.where(ok, 1 / new_var, torch.zeros((), dtype=torch.float64, device=flux.device))

    raw = flux.double()
    raw_l, raw_r = raw.gather(1, left), raw.gather(1, right)
    raw_f = torch.where(use_left & use_right, raw_l + t * (raw_r - raw_l), torch.where(use_left, raw_l, raw_r))
    masked_f = torch.where(inside & torch.isfinite(raw_f), raw_f, torch.zeros_like(raw_f))
    out_f = torch.where(ok, new_f, masked_f).to(flux.dtype)
    out_ivar = new_ivar.to(ivar.dtype)
    ok = ok & (out_ivar > 0) & torch.isfinite(out_ivar) & torch.isfinite(out_f)
    out_ivar = torch.where(ok, out_ivar, torch.zeros_like(out_ivar))
    out_f = torch.where(torch.isfinite(out_f), out_f, torch.zeros_like(out_f))
    # a good pixel that lands exactly on itself keeps its input values bit for bit
    pixel = torch.arange(p, device=flux.device)
    keep = good & inside & (((t == 0) & (left == pixel)) | ((t == 1) & (right == pixel)))
    return torch.where(keep, flux, out_f), torch.where(keep, ivar, out_ivar), ~ok


def _good(flux: Tensor, ivar: Tensor, mask: Tensor) -> Tensor:
    return ~mask & torch.isfinite(flux) & torch.isfinite(ivar) & (ivar > 0)


def _uniform(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def _check_batch(flux: Tensor, ivar: Tensor, mask: Tensor, wavelength: Tensor | None = None) -> None:
    if flux.ndim != 2 or not flux.is_floating_point():
        raise ValueError(f"flux must be a floating (B, P) tensor, got {flux.dtype} of shape {tuple(flux.shape)}")
    if ivar.shape != flux.shape or not ivar.is_floating_point():
        raise ValueError(
            f"ivar must be a floating tensor of shape {tuple(flux.shape)}, got {ivar.dtype} {tuple(ivar.shape)}"
        )
    if mask.shape != flux.shape or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor of shape {tuple(flux.shape)}, got {mask.dtype} {tuple(mask.shape)}"
        )
    if wavelength is None:
        return
    p = flux.shape[1]
    if wavelength.shape != (p,):
        raise ValueError(f"wavelength must have shape ({p},) to match flux, got {tuple(wavelength.shape)}")
    if p > 1 and not bool(torch.all(torch.diff(wavelength.double()) > 0)):
        raise ValueError("wavelength must be strictly increasing (any spacing)")
