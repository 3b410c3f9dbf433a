"""Ensemble inference: label means and the three parts of their uncertainty.

For K members, each run T times with Monte-Carlo dropout where the network has it (T = 1 otherwise):

* label            mean over members of each member's mean over its T passes;
* ensemble part    variance of the member means across members (0 for one member);
* MC-dropout part  mean over members of the variance across their T passes;
* model part       mean over members and passes of the predicted variance (heteroscedastic networks);

and the total uncertainty is the square root of their sum. All are returned in physical label units.

Engines: with ``engine="fast"`` (the default) every deterministic pass (networks without Monte-Carlo
dropout) on the CPU goes through the member's ``export_inference()`` copy when its module offers one
(see :mod:`starlabel.fastinfer`): the same numbers to float32 rounding, several times faster. The copy is
made on first use and made again when the member's weights change. Monte-Carlo dropout passes, GPU
devices, modules without ``export_inference`` and modules it cannot compile use the module itself, as
``engine="eager"`` always does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from starlabel.errors import StarlabelError
from starlabel.fastinfer import UnsupportedLayerError
from starlabel.inputs import InputTransform
from starlabel.suggest import did_you_mean

ENGINES = ("fast", "eager")
"""Inference engines: ``fast`` (the members' ``export_inference()`` copies where possible) or ``eager``."""

Runner = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


class EngineError(StarlabelError, ValueError):
    """An unknown inference engine was asked for."""

    exit_code = 2

    def __init__(self, engine: object) -> None:
        self.engine = engine
        super().__init__(
            f"engine: unknown inference engine {engine!r}.{did_you_mean(str(engine), ENGINES)} "
            f"Allowed: {', '.join(ENGINES)}"
        )


@dataclass
class Prediction:
    """Per-star ensemble outputs in physical units: ``(N, L)`` arrays."""

    mean: np.ndarray
    var_ensemble: np.ndarray
    var_mc: np.ndarray
    var_model: np.ndarray

    @property
    def error(self) -> np.ndarray:
        """Total uncertainty: sqrt of the sum of the three variances."""
        return np.sqrt(self.var_ensemble + self.var_mc + self.var_model)


@dataclass
class Ensemble:
    """Members plus what turns raw store rows into their inputs and their outputs into labels."""

    members: Sequence[torch.nn.Module]
    transform: InputTransform
    label_mean: np.ndarray
    label_std: np.ndarray
    aux_mean: np.ndarray
    aux_std: np.ndarray
    heteroscedastic: bool
    mc_dropout: bool
    mc_samples: int = 16
    device: str = "cpu"
    engine: str = "fast"
    _fast: dict[int, tuple[torch.nn.Module, tuple[Any, ...], Runner | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise EngineError(self.engine)

    def inputs(
        self, flux: np.ndarray, mask: np.ndarray, aux: np.ndarray, aux_missing: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw rows (flux on the grid, mask, aux values and missing flags) → network inputs."""
        x = self.transform.flux(torch.from_numpy(np.asarray(flux, np.float32)), torch.from_numpy(np.asarray(mask)))
        with np.errstate(invalid="ignore"):
            a = ((np.asarray(aux, np.float64) - self.aux_mean) / self.aux_std).astype(np.float32)
        missing = np.asarray(aux_missing, bool) | ~np.isfinite(a)
        a = self.transform.aux(torch.from_numpy(np.where(missing, 0.0, a).astype(np.float32)), torch.from_numpy(missing))
        return x.to(self.device), a.to(self.device)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, a: torch.Tensor, seed: int = 0) -> Prediction:
        """Run every member on network inputs ``x``, ``a``; MC-dropout passes are seeded by ``seed``."""
        passes = self.mc_samples if self.mc_dropout else 1
        # only dropout draws random numbers: deterministic passes leave torch's global generator alone, so
        # several threads may predict at once (starlabel.lanes)
        generator_state = torch.random.get_rng_state() if self.mc_dropout else None
        if self.mc_dropout:
            torch.manual_seed(seed)
        means, mc_vars, model_vars = [], [], []
        try:
            for module in self.members:
                _dropout_mode(module, self.mc_dropout)
                runner = None if self.mc_dropout else self.runner(module)
                outs = [runner(x, a)] if runner is not None else [module(x, a) for _ in range(passes)]
                mu = torch.stack([o[0] for o in outs]).double()
                means.append(mu.mean(0))
                mc_vars.append(mu.var(0, unbiased=False) if passes > 1 else torch.zeros_like(mu[0]))
                if self.heteroscedastic:
                    model_vars.append(torch.stack([torch.exp(o[1].double()) for o in outs]).mean(0))
                module.eval()
        finally:
            if generator_state is not None:
                torch.random.set_rng_state(generator_state)
        stacked = torch.stack(means)
        std = torch.as_tensor(self.label_std, dtype=torch.float64, device=stacked.device)
        mean = stacked.mean(0) * std + torch.as_tensor(self.label_mean, dtype=torch.float64, device=stacked.device)
        var_ens = stacked.var(0, unbiased=True) if len(means) > 1 else torch.zeros_like(stacked[0])
        var_mc = torch.stack(mc_vars).mean(0)
        var_model = torch.stack(model_vars).mean(0) if model_vars else torch.zeros_like(var_mc)
        s2 = std**2
        return Prediction(
            mean.cpu().numpy(), (var_ens * s2).cpu().numpy(), (var_mc * s2).cpu().numpy(), (var_model * s2).cpu().numpy()
        )


    def runner(self, module: torch.nn.Module) -> Runner | None:
        """The fast copy of ``module`` for deterministic passes, or None where the module itself must run.

        None for ``engine="eager"``, a non-CPU device, a module without ``export_inference`` or one whose
        export raises :class:`~starlabel.fastinfer.UnsupportedLayerError`. The copy is cached per module
        and rebuilt when any of its parameters or buffers has changed since (in place or replaced).
        """
        if self.engine != "fast" or torch.device(self.device).type != "cpu":
            return None
        export = getattr(module, "export_inference", None)
        if export is None:
            return None
        key = _weights_key(module)
        cached = self._fast.get(id(module))
        if cached is not None and cached[0] is module and cached[1] == key:
            return cached[2]
        try:
            fast: Runner | None = export()
        except UnsupportedLayerError:
            fast = None
        self._fast[id(module)] = (module, key, fast)
        return fast


def warm_up(ensemble: Ensemble) -> None:
    """Build (and cache) the fast copy of every member now, before threads share the ensemble."""
    if not ensemble.mc_dropout:
        for module in ensemble.members:
            ensemble.runner(module)


def _weights_key(module: torch.nn.Module) -> tuple[Any, ...]:
    """Identity and in-place version of every parameter and buffer: changes whenever the weights do."""
    key = []
    for t in (*module.parameters(), *module.buffers()):
        try:
            key.append((t.data_ptr(), t._version))
        except RuntimeError:  # an inference tensor has no version counter (nor can it change outside inference mode)
            key.append((t.data_ptr(), None))
    return tuple(key)


def _dropout_mode(module: torch.nn.Module, active: bool) -> None:
    """Eval mode everywhere, except dropout layers when Monte-Carlo dropout is on."""
    module.eval()
    if active:
        for layer in module.modules():
            if isinstance(layer, torch.nn.modules.dropout._DropoutNd):
                layer.train()
