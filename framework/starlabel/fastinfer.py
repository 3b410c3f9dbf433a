"""Fast deterministic CPU inference for stacks of standard torch layers, and an analytic FLOP counter.

:func:`compile_stack` turns an evaluation-mode stack of standard layers (``Conv1d``, ``ConstantPad1d``,
``BatchNorm1d``, element-wise activations, ``MaxPool1d``/``AvgPool1d``, ``Dropout``, ``Flatten``,
``Linear``, ``Identity``, nested ``Sequential``) into a :class:`FastStack` that gives the same outputs
(to float32 rounding) much faster on a CPU:

* 1-D convolutions run as 2-D convolutions over a ``(rows, channels, 1, length)`` tensor in the
  channels-last memory format (with explicit channels-last strides, also for one channel), which oneDNN
  (``mkldnn``) computes with its direct convolution kernels;
* the convolution part runs over tiles of a few rows chosen so that a tile's largest activation pair
  (a layer's input plus output) stays in cache (:data:`TILE_BYTES`); the dense part runs over the
  whole batch it is given, where matrix products are efficient;
* a max-pool with non-overlapping windows is an element-wise maximum of strided views of the
  channels-last memory (``max_pool2d`` also works out the indices of the maxima and is several times
  slower), and runs before a ReLU or LeakyReLU that precedes it (a non-decreasing activation commutes with
  the maximum, and then acts on 1/k of the values);
* ``BatchNorm1d`` after a convolution or a linear layer is folded into its weights and bias; dropout is
  left out (evaluation mode); activations run in place on fresh tensors;
* ``Flatten`` keeps the channels-last order (position-major) and the following ``Linear``'s columns are
  permuted to match, so no transpose is made; without a following ``Linear`` the usual channel-major
  order is restored.

The result is deterministic: dropout is never active, so Monte-Carlo dropout passes must use the module
itself. Anything else in the stack raises :class:`UnsupportedLayerError`, which callers treat as "no fast
path" and fall back to the module.

:func:`count_flops` counts the floating-point operations of a forward pass analytically from the layer
shapes (2 per multiply-add of every convolution and linear layer; biases, activations, normalisation and
pooling are not counted), per input row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from starlabel.errors import StarlabelError

TILE_BYTES = 8 << 20
"""Bytes of the largest (input + output) activation pair of one convolution tile: a few rows whose working
set stays in the second-level/shared cache. The batch is cut into tiles of ``TILE_BYTES // per_row``
rows (at least 1)."""

Op = Callable[[torch.Tensor], torch.Tensor]

SUPPORTED = (
    "Conv1d (zero padding), ConstantPad1d (value 0), BatchNorm1d (running statistics), ReLU, LeakyReLU, ELU, "
    "GELU, SiLU, Tanh, Sigmoid, MaxPool1d, AvgPool1d, Dropout, Flatten, Linear, Identity, Sequential"
)
"""Layers :func:`compile_stack` accepts, for messages."""


class UnsupportedLayerError(StarlabelError):
    """A layer of a stack has no fast equivalent; the caller should run the module itself."""

    def __init__(self, where: str, layer: nn.Module, why: str) -> None:
        self.where, self.layer = where, layer
        super().__init__(
            f"fast inference cannot compile {where} ({type(layer).__name__}: {layer}): {why}. Supported: {SUPPORTED}"
        )


# ------------------------------------------------------------------------------------------------ FLOPs
def conv1d_flops(layer: nn.Conv1d, out_length: int) -> int:
    """Floating-point operations of ``layer`` for one row producing ``out_length`` positions.

    ``2 · out_channels · out_length · (in_channels / groups) · kernel_size``: one multiply and one add per
    weight and output position; the bias is not counted.
    """
    per_output = (layer.in_channels // layer.groups) * int(layer.kernel_size[0])
    return 2 * layer.out_channels * int(out_length) * per_output


def linear_flops(layer: nn.Linear, rows: int = 1) -> int:
    """Floating-point operations of ``layer`` applied to ``rows`` vectors: ``2 · in · out · rows``."""
    return 2 * layer.in_features * layer.out_features * int(rows)


def count_flops(module: nn.Module, *inputs: torch.Tensor) -> float:
    """Floating-point operations per input row of ``module(*inputs)``, from its layers' shapes.

    Runs one forward pass (in evaluation mode, without gradients) to learn every ``Conv1d`` output length
    and how many vectors each ``Linear`` sees, and sums :func:`conv1d_flops` and :func:`linear_flops`.

    Parameters
    ----------
    module : torch.nn.Module
        Any module made of standard layers (other layers contribute nothing).
    *inputs : torch.Tensor
        Example inputs; the first dimension of the first one is the number of rows.

    Returns
    -------
    float
        Operations per row (the total divided by the number of rows).
    """
    total = 0
    handles = []

    def conv_hook(layer: nn.Module, _args: object, out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(layer, nn.Conv1d)
        rows = out.shape[0] if out.dim() == 3 else 1
        total += rows * conv1d_flops(layer, out.shape[-1])

    def linear_hook(layer: nn.Module, _args: object, out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(layer, nn.Linear)
        total += linear_flops(layer, out.numel() // layer.out_features)

    for layer in module.modules():
        if isinstance(layer, nn.Conv1d):
            handles.append(layer.register_forward_hook(conv_hook))
        elif isinstance(layer, nn.Linear):
            handles.append(layer.register_forward_hook(linear_hook))
    was_training = module.training
    try:
        module.eval()
        with torch.inference_mode():
            module(*inputs)
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    return total / max(1, int(inputs[0].shape[0]))


# --------------------------------------------------------------------------------------------- compiling
def _leaves(module: nn.Module) -> Iterator[nn.Module]:
    """The layers of ``module`` in order, nested ``Sequential`` containers expanded."""
    if isinstance(module, nn.Sequential):
        for child in module:
            yield from _leaves(child)
    else:
        yield module


def _activation(layer: nn.Module, in_place: bool) -> Op | None:
    """The element-wise function of an activation layer (in place when allowed), or None if not one."""
    if isinstance(layer, nn.Identity):
        return lambda h: h
    if isinstance(layer, nn.ReLU):
        return torch.relu_ if in_place else torch.relu
    if isinstance(layer, nn.LeakyReLU):
        slope = float(layer.negative_slope)
        return (lambda h: F.leaky_relu_(h, slope)) if in_place else (lambda h: F.leaky_relu(h, slope))
    if isinstance(layer, nn.ELU):
        alpha = float(layer.alpha)
        return (lambda h: F.elu_(h, alpha)) if in_place else (lambda h: F.elu(h, alpha))
    if isinstance(layer, nn.GELU):
        approximate = str(layer.approximate)
        return lambda h: F.gelu(h, approximate=approximate)
    if isinstance(layer, nn.SiLU):
        return lambda h: F.silu(h, inplace=in_place)
    if isinstance(layer, nn.Tanh):
        return torch.tanh_ if in_place else torch.tanh
    if isinstance(layer, nn.Sigmoid):
        return torch.sigmoid_ if in_place else torch.sigmoid
    return None


def _monotone(layer: nn.Module) -> bool:
    """Activations that are non-decreasing in floating point too, so that ``max(f(a), f(b)) == f(max(a, b))``."""
    return isinstance(layer, nn.ReLU) or (isinstance(layer, nn.LeakyReLU) and layer.negative_slope >= 0)


def _is_passive(layer: nn.Module) -> bool:
    """Layers that neither mix features nor depend on their order (element-wise or no-ops at inference)."""
    return isinstance(layer, nn.modules.dropout._DropoutNd) or _activation(layer, False) is not None


def _bn_affine(bn: nn.BatchNorm1d, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluation-mode ``BatchNorm1d`` as ``scale · x + shift`` per feature."""
    if bn.running_mean is None or bn.running_var is None:
        raise UnsupportedLayerError(where, bn, "without running statistics it normalises by the batch")
    scale = torch.rsqrt(bn.running_var.detach().double() + bn.eps)
    shift = -bn.running_mean.detach().double() * scale
    if bn.affine:
        scale = scale * bn.weight.detach().double()
        shift = shift * bn.weight.detach().double() + bn.bias.detach().double()
    return scale, shift


def _fold(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm1d, where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias of a convolution or linear layer followed by ``bn`` (computed in float64)."""
    scale, shift = _bn_affine(bn, where)
    w = weight.detach().double() * scale.view(-1, *([1] * (weight.dim() - 1)))
    b = (bias.detach().double() if bias is not None else torch.zeros_like(scale)) * scale + shift
    return w.to(weight.dtype), b.to(weight.dtype)


def _single(value: int | Sequence[int]) -> int:
    return int(value[0]) if isinstance(value, Sequence) else int(value)


@dataclass
class _Builder:
    """Walks the layers of a stack, collecting the convolution ops, the flatten and the dense ops."""

    name: str
    conv_ops: list[Op]
    dense_ops: list[Op]
    tensors: list[torch.Tensor]
    probe: torch.Tensor
    per_row: int = 0
    fresh: bool = False
    permute_next: tuple[int, int] | None = None
    conv_out: tuple[int, int] = (0, 0)

    def keep(self, tensor: torch.Tensor) -> torch.Tensor:
        """Own a copy of ``tensor`` (held by the ops; the stack lists them)."""
        owned = tensor.detach().clone()
        self.tensors.append(owned)
        return owned

    def conv_op(self, op: Op, fresh: bool) -> None:
        before = self.probe
        self.probe = op(self.probe)
        self.per_row = max(self.per_row, (before[0].numel() + self.probe[0].numel()) * self.probe.element_size())
        self.conv_ops.append(op)
        self.fresh = fresh

    def dense_op(self, op: Op, fresh: bool) -> None:
        self.probe = op(self.probe)
        self.dense_ops.append(op)
        self.fresh = fresh


def compile_stack(module: nn.Module, in_shape: Sequence[int], *, tile_bytes: int = TILE_BYTES) -> FastStack:
    """Compile an evaluation-mode stack of standard layers into a :class:`FastStack`.

    Parameters
    ----------
    module : torch.nn.Module
        A ``Sequential`` (possibly nested) of the layers in :data:`SUPPORTED`, or one such layer. Its
        current weights are copied: later changes to ``module`` do not reach the result.
    in_shape : sequence of int
        Shape of one input row: ``(channels, length)`` for a stack that starts with 1-D convolutions,
        ``(features,)`` for a dense stack.
    tile_bytes : int
        Cache budget of one convolution tile (see :data:`TILE_BYTES`).

    Returns
    -------
    FastStack
        Maps ``(B, *in_shape)`` to the module's output, ``(B, features)`` or ``(B, channels, length)``.

    Raises
    ------
    UnsupportedLayerError
        A layer, or a layer setting, has no fast equivalent.
    """
    in_shape = tuple(int(s) for s in in_shape)
    if len(in_shape) not in (1, 2):
        raise ValueError(f"in_shape must be (channels, length) or (features,), got {in_shape}")
    try:
        reference = next(module.parameters())
        dtype, device = reference.dtype, reference.device
    except StopIteration:
        dtype, device = torch.float32, torch.device("cpu")
    conv_mode = len(in_shape) == 2
    probe = torch.zeros((1, in_shape[0], 1, in_shape[1]) if conv_mode else (1, in_shape[0]), dtype=dtype, device=device)
    if conv_mode:
        probe = probe.contiguous(memory_format=torch.channels_last)
    b = _Builder(type(module).__name__, [], [], [], probe)
    layers = list(_leaves(module))
    flattened = not conv_mode
    pending_pad = (0, 0)
    skip = False
    with torch.no_grad():
        for index, layer in enumerate(layers):
            where = f"{b.name} layer {index}"
            if skip:
                skip = False
                continue
            following = layers[index + 1] if index + 1 < len(layers) else None
            if isinstance(layer, nn.modules.dropout._DropoutNd) or isinstance(layer, nn.Identity):
                continue
            if not flattened:
                if isinstance(layer, nn.ConstantPad1d):
                    if float(layer.value) != 0.0:
                        raise UnsupportedLayerError(where, layer, "only zero padding is supported")
                    left, right = (int(p) for p in layer.padding)
                    pending_pad = (pending_pad[0] + left, pending_pad[1] + right)
                    if not isinstance(following, nn.Conv1d):
                        pad = pending_pad
                        b.conv_op(lambda h, pad=pad: F.pad(h, (pad[0], pad[1])), True)
                        pending_pad = (0, 0)
                    continue
                if isinstance(layer, nn.Conv1d):
                    skip = isinstance(following, nn.BatchNorm1d)
                    _add_conv(b, layer, pending_pad, following if skip else None, where)
                    pending_pad = (0, 0)
                    continue
                if isinstance(layer, nn.Flatten):
                    if layer.start_dim != 1 or layer.end_dim not in (-1, 2):
                        raise UnsupportedLayerError(where, layer, "only Flatten(start_dim=1, end_dim=-1) is supported")
                    rest = [x for x in layers[index + 1 :] if not _is_passive(x)]
                    channels, length = int(b.probe.shape[1]), int(b.probe.shape[3])
                    b.conv_out = (channels, length)
                    b.probe = b.probe.permute(0, 2, 3, 1).reshape(1, channels * length)
                    flattened = True
                    if rest and isinstance(rest[0], nn.Linear):
                        b.permute_next = (channels, length)  # position-major order; the Linear's columns follow
                        b.fresh = True
                    else:
                        b.dense_op(lambda h, c=channels, n=length: _channel_major(h, c, n), True)
                    continue
                if _monotone(layer) and isinstance(following, nn.MaxPool1d):
                    # max-pool first: a non-decreasing activation commutes with max, and then acts on 1/k
                    _add_conv_elementwise(b, following, f"{b.name} layer {index + 1}")
                    skip = True
                _add_conv_elementwise(b, layer, where)
                continue
            if isinstance(layer, nn.Linear):
                skip = isinstance(following, nn.BatchNorm1d)
                _add_linear(b, layer, following if skip else None, where)
                continue
            if isinstance(layer, nn.Flatten):
                continue  # (B, F) stays (B, F)
            if isinstance(layer, nn.BatchNorm1d):
                if b.permute_next is not None:
                    raise UnsupportedLayerError(where, layer, "a normalisation between Flatten and Linear")
                scale, shift = (b.keep(t.to(dtype)) for t in _bn_affine(layer, where))
                b.dense_op(lambda h, s=scale, t=shift: torch.addcmul(t, h, s), True)
                continue
            act = _activation(layer, b.fresh)
            if act is None:
                raise UnsupportedLayerError(where, layer, "no fast equivalent in a dense stack")
            b.dense_op(act, b.fresh)
    out_shape = tuple(int(s) for s in b.probe.shape[1:])
    if not flattened:  # a convolution stack without Flatten: back to (B, C, L)
        out_shape = (out_shape[0], out_shape[2])
        b.conv_out = out_shape
    tile = max(1, tile_bytes // max(1, b.per_row))
    return FastStack(
        in_shape, out_shape, b.conv_ops, b.dense_ops, b.tensors, tile, b.conv_out if conv_mode else None, flattened
    )


def _channel_major(h: torch.Tensor, channels: int, length: int) -> torch.Tensor:
    """Position-major flattened features ``(B, L·C)`` of a channels-last tensor → PyTorch's ``(B, C·L)``."""
    return h.view(h.shape[0], length, channels).transpose(1, 2).reshape(h.shape[0], channels * length)


def _add_conv(
    b: _Builder, layer: nn.Conv1d, pad: tuple[int, int], bn: nn.BatchNorm1d | None, where: str
) -> None:
    """A ``Conv1d`` (with any zero padding before it and a ``BatchNorm1d`` after it folded in)."""
    if layer.padding_mode != "zeros" and layer.padding not in ((0,), "valid"):
        raise UnsupportedLayerError(where, layer, f"padding_mode {layer.padding_mode!r} (only 'zeros')")
    kernel, stride, dilation = _single(layer.kernel_size), _single(layer.stride), _single(layer.dilation)
    if isinstance(layer.padding, str):
        total = dilation * (kernel - 1) if layer.padding == "same" else 0
        left, right = total // 2, total - total // 2
    else:
        left = right = _single(layer.padding)
    left, right = left + pad[0], right + pad[1]
    if bn is not None:
        weight, bias = _fold(layer.weight, layer.bias, bn, where)
    else:
        weight = layer.weight.detach()
        bias = layer.bias.detach() if layer.bias is not None else None
    w = b.keep(weight.unsqueeze(2).contiguous(memory_format=torch.channels_last))
    bias_t = b.keep(bias) if bias is not None else None
    groups = int(layer.groups)
    conv = _conv2d_function(w)
    if left == right:

        def op(h: torch.Tensor) -> torch.Tensor:
            return conv(h, w, bias_t, (1, stride), (0, left), (1, dilation), groups)

    else:

        def op(h: torch.Tensor) -> torch.Tensor:
            return conv(F.pad(h, (left, right)), w, bias_t, (1, stride), (0, 0), (1, dilation), groups)

    b.conv_op(op, True)


def _conv2d_function(weight: torch.Tensor) -> Callable[..., torch.Tensor]:
    """oneDNN's convolution where it applies (float32 on a CPU with oneDNN), else ``F.conv2d``.

    ``F.conv2d`` hands batches of fewer than 16 rows to PyTorch's own im2col convolution, slower there than
    oneDNN (whose results are the same); calling oneDNN directly keeps every batch size on it. Under CPU
    autocast (e.g. bfloat16) ``F.conv2d`` is used, which autocast knows how to cast.
    """
    if weight.device.type == "cpu" and weight.dtype == torch.float32 and torch.backends.mkldnn.is_available():

        def mkldnn(
            h: torch.Tensor,
            w: torch.Tensor,
            bias: torch.Tensor | None,
            stride: tuple[int, int],
            padding: tuple[int, int],
            dilation: tuple[int, int],
            groups: int,
        ) -> torch.Tensor:
            if torch.is_autocast_enabled("cpu"):
                return F.conv2d(h, w, bias, stride, padding, dilation, groups)
            return torch.mkldnn_convolution(h, w, bias, padding, stride, dilation, groups)

        return mkldnn
    return F.conv2d


def _add_conv_elementwise(b: _Builder, layer: nn.Module, where: str) -> None:
    """A layer between convolutions that acts per position: normalisation, activation or pooling."""
    if isinstance(layer, nn.BatchNorm1d):
        scale, shift = _bn_affine(layer, where)
        s = b.keep(scale.to(b.probe.dtype).view(1, -1, 1, 1))
        t = b.keep(shift.to(b.probe.dtype).view(1, -1, 1, 1))
        b.conv_op(lambda h: torch.addcmul(t, h, s), True)
        return
    if isinstance(layer, nn.MaxPool1d):
        if layer.return_indices:
            raise UnsupportedLayerError(where, layer, "return_indices=True")
        k, s, p, d = (_single(v) for v in (layer.kernel_size, layer.stride, layer.padding, layer.dilation))
        ceil = bool(layer.ceil_mode)
        if s == k and p == 0 and d == 1 and (not ceil or int(b.probe.shape[3]) % k == 0):
            b.conv_op(lambda h: _max_pool_windows(h, k), True)
        else:
            b.conv_op(lambda h: F.max_pool2d(h, (1, k), (1, s), (0, p), (1, d), ceil), True)
        return
    if isinstance(layer, nn.AvgPool1d):
        k, s, p = (_single(v) for v in (layer.kernel_size, layer.stride, layer.padding))
        ceil, include = bool(layer.ceil_mode), bool(layer.count_include_pad)
        b.conv_op(lambda h: F.avg_pool2d(h, (1, k), (1, s), (0, p), ceil, include), True)
        return
    act = _activation(layer, b.fresh)
    if act is None:
        raise UnsupportedLayerError(where, layer, "no fast equivalent in a convolution stack")
    b.conv_op(act, b.fresh)


def _max_pool_windows(h: torch.Tensor, k: int) -> torch.Tensor:
    """Max over non-overlapping windows of ``k`` positions (the rest dropped) of a ``(B, C, 1, L)`` tensor.

    An element-wise maximum of ``k`` strided views of the channels-last memory: many times faster than
    ``max_pool2d``, which also works out the indices of the maxima.
    """
    n = h.shape[3] // k
    rows = h.permute(0, 2, 3, 1)  # (B, 1, L, C): contiguous for a channels-last h
    out = torch.maximum(rows[:, :, 0 : n * k : k], rows[:, :, 1 : n * k : k]) if k > 1 else rows[:, :, :n].clone()
    for j in range(2, k):
        torch.maximum(out, rows[:, :, j : n * k : k], out=out)
    return out.permute(0, 3, 1, 2)


def _add_linear(b: _Builder, layer: nn.Linear, bn: nn.BatchNorm1d | None, where: str) -> None:
    """A ``Linear`` (columns permuted after a position-major Flatten, a ``BatchNorm1d`` after it folded in)."""
    features = int(b.probe.shape[1])
    if layer.in_features != features:
        raise UnsupportedLayerError(where, layer, f"expects {layer.in_features} features, the stack gives {features}")
    if bn is not None:
        weight, bias = _fold(layer.weight, layer.bias, bn, where)
    else:
        weight = layer.weight.detach()
        bias = layer.bias.detach() if layer.bias is not None else None
    if b.permute_next is not None:
        channels, length = b.permute_next
        weight = weight.reshape(-1, channels, length).permute(0, 2, 1).reshape(-1, channels * length)
        b.permute_next = None
    w = b.keep(weight.contiguous())
    bias_t = b.keep(bias) if bias is not None else None
    b.dense_op(lambda h: F.linear(h, w, bias_t), True)


class FastStack(nn.Module):
    """A compiled stack (see :func:`compile_stack`): same outputs as the module, deterministic, CPU-fast.

    Attributes
    ----------
    in_shape, out_shape : tuple of int
        Shapes of one input and one output row.
    tile : int
        Rows per convolution tile.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        conv_ops: list[Op],
        dense_ops: list[Op],
        tensors: list[torch.Tensor],
        tile: int,
        conv_out: tuple[int, int] | None,
        flattens: bool,
    ) -> None:
        super().__init__()
        self.in_shape, self.out_shape, self.tile = in_shape, out_shape, int(tile)
        self._conv_ops, self._dense_ops = conv_ops, dense_ops
        self._conv_out, self._flattens = conv_out, flattens
        self._tensors = tensors  # the weights the ops hold (kept here for inspection)

    def _apply(self, fn: Callable[..., object], recurse: bool = True) -> FastStack:  # type: ignore[override]
        raise RuntimeError(
            "a FastStack keeps the dtype and device it was compiled on: compile the module again after moving it"
        )

    @property
    def out_features(self) -> int:
        """Width of a flattened output row."""
        width = 1
        for s in self.out_shape:
            width *= s
        return width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the stack to ``x`` of shape ``(B, *in_shape)`` (a ``(B, L)`` input is read as one channel)."""
        if len(self.in_shape) == 2 and x.dim() == 2 and self.in_shape[0] == 1:
            x = x.unsqueeze(1)
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"input rows must have shape {self.in_shape}, got {tuple(x.shape[1:])}")
        if self._conv_out is not None:
            x = self._convolve(x, self._conv_out)
        for op in self._dense_ops:
            x = op(x)
        return x

    def _convolve(self, x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        """The convolution part, tile by tile, into ``(B, L·C)`` (flattened) or ``(B, C, L)``."""
        rows = x.shape[0]
        out = x.new_empty((rows, shape[0] * shape[1]) if self._flattens else (rows, *shape))
        for start in range(0, rows, self.tile):
            part = x[start : start + self.tile].unsqueeze(2)
            # copied into explicit channels-last strides: with one channel, .contiguous() would keep the
            # default strides, which also pass for channels-last, and oneDNN would answer in channels-first
            h = torch.empty(part.shape, dtype=part.dtype, device=part.device, memory_format=torch.channels_last)
            h.copy_(part)
            for op in self._conv_ops:
                h = op(h)
            if self._flattens:
                out[start : start + self.tile] = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)
            else:
                out[start : start + self.tile] = h.squeeze(2)
        return out
