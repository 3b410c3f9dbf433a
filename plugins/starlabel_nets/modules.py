"""Torch building blocks shared by the architectures of ``starlabel_nets``.

This module imports torch; the architecture modules import it only inside ``build`` so that loading the
plugin (``starlabel plugins``, descriptor validation) stays cheap.

Every network built here is a :class:`SpectrumNetwork`: the flux is split into its arms
(``torch.split`` by ``spec.arm_pixels``), each arm goes through its own branch of ``trunk`` (an
``nn.ModuleList``), the auxiliary inputs through ``aux_branch`` (absent when ``spec.n_aux == 0``), the
features are concatenated and passed through ``head`` to a linear ``mean`` output and, when heteroscedastic,
a linear ``log_var`` output clamped to :data:`LOG_VAR_RANGE`.

:meth:`SpectrumNetwork.export_inference` gives a :class:`FastSpectrumNetwork`: the same network compiled by
:mod:`starlabel.fastinfer` for fast deterministic CPU passes (dropout off), which the core's ensemble uses
for every pass that is not a Monte-Carlo dropout pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from starlabel.components import InputSpec
from starlabel.fastinfer import FastStack, compile_stack

LOG_VAR_RANGE: tuple[float, float] = (-15.0, 15.0)
"""Bounds of a predicted log-variance (standardised units): exp(±15) covers any sane error, and keeps the
Gaussian negative log-likelihood finite early in training."""

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
}
"""Names accepted by the ``activation`` options."""

Padding = Literal["same", "valid"]


def make_activation(name: str) -> nn.Module:
    """A fresh activation layer called ``name`` (a key of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None


def check_spec(spec: InputSpec) -> None:
    """Refuse an :class:`InputSpec` no network can be built for.

    Raises
    ------
    ValueError
        No label, an arm without pixels, a negative ``n_aux``, or neither spectrum nor auxiliary inputs.
    """
    if not spec.labels:
        raise ValueError("InputSpec.labels is empty: a network needs at least one output label")
    if any(int(p) < 1 for p in spec.arm_pixels):
        raise ValueError(f"InputSpec.arm_pixels must all be >= 1, got {tuple(spec.arm_pixels)}")
    if spec.n_aux < 0:
        raise ValueError(f"InputSpec.n_aux must be >= 0, got {spec.n_aux}")
    if not spec.arm_pixels and spec.n_aux == 0:
        raise ValueError("InputSpec has neither spectrum pixels nor auxiliary inputs: nothing to learn from")


def conv_stack(
    length: int,
    filters: Sequence[int],
    kernel_size: int,
    *,
    padding: Padding,
    activation: str,
    pool: int,
    pool_after: Literal["each", "last"],
    batch_norm: bool = False,
    dropout: float = 0.0,
) -> tuple[nn.Sequential, int]:
    """A 1-D convolution stack over one arm of ``length`` pixels, ending in a flatten.

    Each stage is ``Conv1d → [BatchNorm1d] → activation → [MaxPool1d] → [Dropout]``. With
    ``padding="same"`` a convolution keeps the length (zero padding, one pixel more on the right for an even
    kernel); with ``"valid"`` it shortens it by ``kernel - 1``,
    the kernel being clamped to the current length so that it never shrinks below 1 pixel. A pool of size
    ``p`` is clamped to the current length and left out when that leaves 1 (so a short arm is never pooled
    to nothing). Pooling follows every stage (``pool_after="each"``) or only the last (``"last"``).

    Parameters
    ----------
    length : int
        Pixels of the arm (>= 1).
    filters : sequence of int
        Output channels of each convolution (the input has one channel).
    kernel_size : int
        Kernel width in pixels.
    padding : {"same", "valid"}
        Convolution padding.
    activation : str
        Key of :data:`ACTIVATIONS`.
    pool : int
        Max-pool size (1: no pooling).
    pool_after : {"each", "last"}
        Which stages are pooled.
    batch_norm : bool
        Batch normalisation between each convolution and its activation.
    dropout : float
        Dropout rate after each stage (0: none).

    Returns
    -------
    torch.nn.Sequential
        ``(B, 1, length) -> (B, features)``.
    int
        ``features``: channels × remaining length.
    """
    layers: list[nn.Module] = []
    channels = 1
    for index, out_channels in enumerate(filters):
        if padding == "same":
            left, right = (kernel_size - 1) // 2, kernel_size // 2
            if left == right:
                layers.append(nn.Conv1d(channels, out_channels, kernel_size, padding=left))
            else:  # even kernel: one more zero on the right, as 'same' convolutions do
                layers.append(nn.ConstantPad1d((left, right), 0.0))
                layers.append(nn.Conv1d(channels, out_channels, kernel_size))
        else:
            kernel = min(kernel_size, length)
            layers.append(nn.Conv1d(channels, out_channels, kernel))
            length = length - kernel + 1
        if batch_norm:
            layers.append(nn.BatchNorm1d(out_channels))
        layers.append(make_activation(activation))
        if pool_after == "each" or index == len(filters) - 1:
            size = min(pool, length)
            if size > 1:
                layers.append(nn.MaxPool1d(size))
                length //= size
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        channels = out_channels
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), channels * length


def dense_stack(
    in_features: int, sizes: Sequence[int], *, activation: str, dropout: float = 0.0
) -> tuple[nn.Sequential, int]:
    """Fully connected layers ``Linear → activation → [Dropout]`` of the given ``sizes``.

    Returns
    -------
    torch.nn.Sequential
        ``(B, in_features) -> (B, out_features)``; an empty ``sizes`` gives an identity.
    int
        ``out_features``: the last size, or ``in_features`` when ``sizes`` is empty.
    """
    layers: list[nn.Module] = []
    for size in sizes:
        layers.append(nn.Linear(in_features, size))
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = size
    return nn.Sequential(*layers), in_features


class SpectrumNetwork(nn.Module):
    """Per-arm convolution branches, an auxiliary branch and a dense head: the module contract of the core.

    Parameters
    ----------
    spec : InputSpec
        Shapes the network is built for (kept as ``self.spec``).
    trunk : torch.nn.ModuleList
        One branch per arm, in order, each ``(B, 1, arm_pixels[i]) -> (B, features_i)``; empty for no arm.
    aux_branch : torch.nn.Module or None
        ``(B, n_aux) -> (B, aux_features)``; None exactly when ``spec.n_aux == 0``.
    head : torch.nn.Module
        ``(B, sum features_i + aux_features) -> (B, head_features)``.
    head_features : int
        Width of the head's output.
    heteroscedastic : bool
        Add a ``log_var`` output beside ``mean``.
    mc_dropout : bool
        Whether dropout is meant to stay on at prediction time (a flag for the caller).

    Attributes
    ----------
    mean, log_var : torch.nn.Linear
        Output layers (``log_var`` is None unless heteroscedastic).
    """

    def __init__(
        self,
        spec: InputSpec,
        trunk: nn.ModuleList,
        aux_branch: nn.Module | None,
        head: nn.Module,
        head_features: int,
        *,
        heteroscedastic: bool,
        mc_dropout: bool,
    ) -> None:
        super().__init__()
        if len(trunk) != len(spec.arm_pixels):
            raise ValueError(f"trunk has {len(trunk)} branches for {len(spec.arm_pixels)} arms")
        if (aux_branch is None) != (spec.n_aux == 0):
            raise ValueError("aux_branch must be given exactly when spec.n_aux > 0")
        self.spec = spec
        self.arm_pixels: list[int] = [int(p) for p in spec.arm_pixels]
        self.n_pixels = sum(self.arm_pixels)
        self.n_aux = int(spec.n_aux)
        self.heteroscedastic = bool(heteroscedastic)
        self.mc_dropout = bool(mc_dropout)
        self.trunk = trunk
        self.aux_branch = aux_branch
        self.head = head
        n_labels = len(spec.labels)
        self.mean = nn.Linear(head_features, n_labels)
        self.log_var = nn.Linear(head_features, n_labels) if heteroscedastic else None

    def features(self, flux: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """Concatenated branch outputs ``(B, sum features_i + aux_features)``, before the head."""
        if flux.dim() != 2 or flux.shape[1] != self.n_pixels:
            raise ValueError(f"flux must be (B, {self.n_pixels}), got {tuple(flux.shape)}")
        if aux.dim() != 2 or aux.shape[1] != self.n_aux or aux.shape[0] != flux.shape[0]:
            raise ValueError(f"aux must be ({flux.shape[0]}, {self.n_aux}), got {tuple(aux.shape)}")
        parts: list[torch.Tensor] = []
        if self.arm_pixels:
            arms = torch.split(flux, self.arm_pixels, dim=1)
            parts.extend(branch(arm.unsqueeze(1)) for branch, arm in zip(self.trunk, arms, strict=True))
        if self.aux_branch is not None:
            parts.append(self.aux_branch(aux))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(self, flux: torch.Tensor, aux: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Predict standardised labels.

        Parameters
        ----------
        flux : torch.Tensor
            ``(B, P)`` float32, ``P = sum(spec.arm_pixels)`` (``(B, 0)`` without a spectrum).
        aux : torch.Tensor
            ``(B, spec.n_aux)`` float32 (``(B, 0)`` without auxiliary inputs).

        Returns
        -------
        mean : torch.Tensor
            ``(B, len(spec.labels))``.
        log_var : torch.Tensor or None
            Same shape, clamped to :data:`LOG_VAR_RANGE`, when heteroscedastic; else None.
        """
        hidden = self.head(self.features(flux, aux))
        mean = self.mean(hidden)
        if self.log_var is None:
            return mean, None
        return mean, torch.clamp(self.log_var(hidden), *LOG_VAR_RANGE)

    def extra_repr(self) -> str:
        return (
            f"arm_pixels={tuple(self.arm_pixels)}, n_aux={self.n_aux}, labels={len(self.spec.labels)}, "
            f"heteroscedastic={self.heteroscedastic}, mc_dropout={self.mc_dropout}"
        )

    def export_inference(self) -> FastSpectrumNetwork:
        """A deterministic, CPU-fast copy of this network for evaluation-mode passes.

        The copy takes the current weights (later training does not reach it), never applies dropout, and
        gives the outputs of ``self.eval()`` to float32 rounding. Monte-Carlo dropout passes must use
        ``self``.

        Raises
        ------
        starlabel.fastinfer.UnsupportedLayerError
            A branch holds a layer :mod:`starlabel.fastinfer` cannot compile.
        """
        return FastSpectrumNetwork(self)


def _check_inputs(flux: torch.Tensor, aux: torch.Tensor, n_pixels: int, n_aux: int) -> None:
    """Refuse inputs that are not ``(B, n_pixels)`` and ``(B, n_aux)``."""
    if flux.dim() != 2 or flux.shape[1] != n_pixels:
        raise ValueError(f"flux must be (B, {n_pixels}), got {tuple(flux.shape)}")
    if aux.dim() != 2 or aux.shape[1] != n_aux or aux.shape[0] != flux.shape[0]:
        raise ValueError(f"aux must be ({flux.shape[0]}, {n_aux}), got {tuple(aux.shape)}")


class FastSpectrumNetwork(nn.Module):
    """A :class:`SpectrumNetwork` compiled for fast deterministic inference (no dropout, float32 rounding).

    Every branch and the head are :class:`starlabel.fastinfer.FastStack` copies; the ``mean`` and
    ``log_var`` layers become one matrix product. Rows go through in blocks of ``block_rows`` (the
    convolutions cut each block into cache-sized tiles), so memory does not grow with the batch.

    Parameters
    ----------
    net : SpectrumNetwork
        The network to copy (its current weights).
    block_rows : int
        Rows per block.
    """

    def __init__(self, net: SpectrumNetwork, block_rows: int = 512) -> None:
        super().__init__()
        self.spec = net.spec
        self.arm_pixels = list(net.arm_pixels)
        self.n_pixels, self.n_aux = net.n_pixels, net.n_aux
        self.heteroscedastic = net.heteroscedastic
        self.mc_dropout = False
        self.block_rows = int(block_rows)
        self.arms = nn.ModuleList(compile_stack(b, (1, p)) for b, p in zip(net.trunk, self.arm_pixels, strict=True))
        self.aux: FastStack | None = compile_stack(net.aux_branch, (self.n_aux,)) if net.aux_branch is not None else None
        width = sum(arm.out_features for arm in self.arms) + (self.aux.out_features if self.aux is not None else 0)
        self.head = compile_stack(net.head, (width,))
        layers = [net.mean] + ([net.log_var] if net.log_var is not None else [])
        self.register_buffer("out_weight", torch.cat([layer.weight.detach() for layer in layers]).clone(), False)
        self.register_buffer("out_bias", torch.cat([layer.bias.detach() for layer in layers]).clone(), False)
        self.n_labels = net.mean.out_features

    @torch.no_grad()
    def forward(self, flux: torch.Tensor, aux: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Same contract as :meth:`SpectrumNetwork.forward` (evaluation mode)."""
        _check_inputs(flux, aux, self.n_pixels, self.n_aux)
        rows = flux.shape[0]
        out = flux.new_empty((rows, self.out_bias.shape[0]))
        for start in range(0, rows, self.block_rows):
            stop = min(rows, start + self.block_rows)
            parts: list[torch.Tensor] = []
            offset = 0
            for arm, pixels in zip(self.arms, self.arm_pixels, strict=True):
                parts.append(arm(flux[start:stop, offset : offset + pixels]))
                offset += pixels
            if self.aux is not None:
                parts.append(self.aux(aux[start:stop]))
            features = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
            out[start:stop] = torch.addmm(self.out_bias, self.head(features), self.out_weight.t())
        mean = out[:, : self.n_labels].contiguous()
        if not self.heteroscedastic:
            return mean, None
        return mean, torch.clamp(out[:, self.n_labels :], *LOG_VAR_RANGE)
