"""Network inputs from store rows: which pixels (arm by arm), flux standardisation, auxiliary inputs.

The transform is fitted once on the training split and saved in the model bundle, so training,
prediction and explain feed a network exactly the same numbers:

* flux: the grid pixels of each arm (a pixel belongs to the first arm that holds it), minus the
  training set's mean spectrum, divided by one global scale (the training set's rms deviation from that
  mean); masked or non-finite pixels become 0, the mean spectrum;
* auxiliary inputs: standardised values (missing ones are 0, the training mean) followed by one
  missing-indicator per column (1.0 = missing), so a network can tell an imputed value from a real one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch

from starlabel.components import InputSpec
from starlabel.data import SplitSpec, rows_in_split
from starlabel.store import Store


def arm_pixel_indices(wavelength: np.ndarray, arms: Sequence[Any]) -> list[np.ndarray]:
    """Indices of the grid pixels of each arm that has any, in arm order.

    A pixel belongs to the first arm whose closed range ``[start, stop]`` holds it; no arms means one arm
    covering the whole grid. Pixels in no arm appear in no list. ``arms`` are objects or mappings with
    ``start`` and ``stop`` in the grid's unit.
    """
    if len(arms) == 0:
        return [np.arange(wavelength.shape[0])] if wavelength.shape[0] else []
    taken = np.zeros(wavelength.shape[0], dtype=bool)
    out = []
    for arm in arms:
        start, stop = (arm["start"], arm["stop"]) if isinstance(arm, dict) else (arm.start, arm.stop)
        mine = (wavelength >= float(start)) & (wavelength <= float(stop)) & ~taken
        taken |= mine
        if mine.any():
            out.append(np.flatnonzero(mine))
    return out


@dataclass
class InputTransform:
    """Turns raw store rows into the ``(flux, aux)`` a network takes.

    Attributes
    ----------
    pixels : numpy.ndarray
        Grid indices fed to the network, arm after arm (int64).
    arm_pixels : tuple of int
        Pixels per arm (sums to ``len(pixels)``).
    flux_mean : numpy.ndarray
        Training-set mean flux per fed pixel (float32).
    flux_scale : float
        Global scale of the flux deviations.
    aux_columns : list of str
        Auxiliary columns (``name.column``) in store order.
    """

    pixels: np.ndarray
    arm_pixels: tuple[int, ...]
    flux_mean: np.ndarray
    flux_scale: float
    aux_columns: list[str]

    def spec(self, labels: Sequence[str]) -> InputSpec:
        """The :class:`InputSpec` a network is built for."""
        return InputSpec(tuple(self.arm_pixels), 2 * len(self.aux_columns), tuple(labels))

    def flux(self, flux: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, n_grid)`` raw flux and mask → ``(B, len(pixels))`` standardised network input."""
        if self._feeds_whole_grid(flux.shape[1]):
            f, m = flux, mask  # every grid pixel, in order: no gather
        else:
            index = torch.as_tensor(self.pixels, device=flux.device)
            f, m = flux.index_select(1, index), mask.index_select(1, index)
        bad = torch.isfinite(f).logical_not_().logical_or_(m)
        mean = torch.as_tensor(self.flux_mean, device=flux.device)
        z = (f - mean).div_(self.flux_scale)
        if z.requires_grad:  # explain differentiates through this: no in-place fill
            return torch.where(bad, torch.zeros((), dtype=z.dtype, device=z.device), z)
        return z.masked_fill_(bad, 0.0)

    def _feeds_whole_grid(self, n_grid: int) -> bool:
        """True when the fed pixels are exactly ``0 .. n_grid - 1``."""
        return self._leading_pixels == n_grid

    @cached_property
    def _leading_pixels(self) -> int:
        """``len(pixels)`` when the fed pixels are ``0, 1, 2, ...`` in order, else -1."""
        in_order = bool((self.pixels == np.arange(self.pixels.size)).all())
        return int(self.pixels.size) if in_order else -1

    def aux(self, aux: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        """Standardised aux values (0 where missing) and the missing indicators, side by side."""
        return torch.cat([torch.where(missing, torch.zeros_like(aux), aux), missing.to(aux.dtype)], dim=1)

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays for the bundle's weights file."""
        return {"pixels": self.pixels.astype(np.int64), "flux_mean": self.flux_mean.astype(np.float32)}

    def params(self) -> dict[str, Any]:
        """JSON-safe scalars and names for the model card."""
        return {"arm_pixels": list(self.arm_pixels), "flux_scale": self.flux_scale, "aux_columns": self.aux_columns}

    @classmethod
    def from_parts(cls, arrays: dict[str, np.ndarray], params: dict[str, Any]) -> InputTransform:
        """Rebuild from :meth:`arrays` and :meth:`params`."""
        return cls(
            np.asarray(arrays["pixels"], dtype=np.int64),
            tuple(int(n) for n in params["arm_pixels"]),
            np.asarray(arrays["flux_mean"], dtype=np.float32),
            float(params["flux_scale"]),
            list(params["aux_columns"]),
        )


def input_spec(store: Store, arms: Sequence[Any], labels: Sequence[str]) -> InputSpec:
    """The :class:`InputSpec` a network for ``store`` gets, without reading any spectrum."""
    from starlabel.grid import WavelengthGrid

    wavelength = WavelengthGrid.from_dict(store.meta["grid"]).wavelength
    arm_pixels = tuple(len(p) for p in arm_pixel_indices(wavelength, arms))
    n_aux = sum(len(cols) for cols in store.layout.aux.values())
    return InputSpec(arm_pixels, 2 * n_aux, tuple(labels))


def fit_input_transform(store: Store, spec: SplitSpec, arms: Sequence[Any]) -> InputTransform:
    """Fit the flux mean and scale on the training split of ``store``, streaming chunk by chunk.

    Raises
    ------
    ValueError
        When no arm holds any grid pixel.
    """
    from starlabel.grid import WavelengthGrid

    wavelength = WavelengthGrid.from_dict(store.meta["grid"]).wavelength
    per_arm = arm_pixel_indices(wavelength, arms)
    if not per_arm:
        raise ValueError(f"{store.path}: no grid pixel lies in any arm {list(arms)}; check instrument.arms")
    pixels = np.concatenate(per_arm)
    total, total2, count = (np.zeros(pixels.size) for _ in range(3))
    for start, stop in store.chunk_ranges():
        rows = np.flatnonzero(rows_in_split(store, start, stop, "train", spec))
        if rows.size == 0:
            continue
        flux = np.asarray(store.array("flux")[start:stop][rows][:, pixels], dtype=np.float64)
        good = ~np.asarray(store.array("mask")[start:stop][rows][:, pixels]) & np.isfinite(flux)
        flux = np.where(good, flux, 0.0)
        total += flux.sum(axis=0)
        total2 += (flux * flux).sum(axis=0)
        count += good.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, 0.0)
        deviation2 = np.where(count > 0, total2 - count * mean**2, 0.0)
    scale = float(np.sqrt(max(deviation2.sum(), 0.0) / max(count.sum(), 1.0)))
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    aux_columns = [f"{n}.{c}" for n, cols in store.layout.aux.items() for c in cols]
    return InputTransform(pixels, tuple(len(p) for p in per_arm), mean.astype(np.float32), scale, aux_columns)
