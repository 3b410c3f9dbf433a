"""The ``starlabel_nets`` architectures: shapes, per-arm split, short inputs, options, dropout, learning, sizes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from starlabel.components import Architecture, InputSpec
from starlabel.plugins import load_plugins
from starlabel_nets.bcnn import BayesianCNN
from starlabel_nets.hybrid_cnn import HybridCNN
from starlabel_nets.modules import LOG_VAR_RANGE, SpectrumNetwork
from starlabel_nets.starnet import StarNet

ARCHITECTURES: list[type[Architecture]] = [HybridCNN, StarNet, BayesianCNN]
HETEROSCEDASTIC = {"hybrid_cnn": False, "starnet": False, "bcnn": True}
MC_DROPOUT = {"hybrid_cnn": False, "starnet": False, "bcnn": True}

SPECS = {
    "single_arm": InputSpec((343,), 10, ("teff", "logg", "fe_h", "alpha_m")),
    "multi_arm": InputSpec((50, 70, 30), 4, ("teff", "logg")),
    "aux_only": InputSpec((), 7, ("teff", "logg", "fe_h")),
    "no_aux": InputSpec((120,), 0, ("teff",)),
    "multi_arm_no_aux": InputSpec((50, 70, 30), 0, ("teff", "logg", "fe_h")),
    "short_arm": InputSpec((12,), 2, ("teff", "logg")),
    "short_arms": InputSpec((1, 2, 3, 12), 0, ("teff",)),
}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Run torch on one thread: small networks gain nothing from more, and a busy machine makes threads wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(model: nn.Module, spec: InputSpec, batch: int = 5, seed: int = 0) -> tuple[torch.Tensor, Any]:
    generator = torch.Generator().manual_seed(seed)
    flux = torch.randn(batch, sum(spec.arm_pixels), generator=generator)
    aux = torch.randn(batch, spec.n_aux, generator=generator)
    return model(flux, aux)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------- registration
def test_plugin_registers_the_three_architectures() -> None:
    plugins = load_plugins(entry_points=False, environ={})
    for cls in ARCHITECTURES:
        assert plugins.architectures.get(cls.name) is cls
        assert plugins.architectures.entry(cls.name).plugin == "starlabel_nets"


def test_loading_the_plugin_does_not_import_torch() -> None:
    code = (
        "import sys; from starlabel.plugins import load_plugins; "
        "p = load_plugins(entry_points=False, environ={}); assert 'bcnn' in p.architectures; "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda c: c.name)
@pytest.mark.parametrize("case", list(SPECS))
def test_output_shapes_and_attributes(arch: type[Architecture], case: str) -> None:
    spec = SPECS[case]
    torch.manual_seed(0)
    model = arch().build(spec)
    assert isinstance(model, SpectrumNetwork)
    assert model.heteroscedastic is HETEROSCEDASTIC[arch.name]
    assert model.mc_dropout is MC_DROPOUT[arch.name]
    assert isinstance(model.trunk, nn.ModuleList) and len(model.trunk) == len(spec.arm_pixels)
    assert (model.aux_branch is None) == (spec.n_aux == 0)
    for mode in ("train", "eval"):
        model.train(mode == "train")
        mean, log_var = run(model, spec)
        assert mean.shape == (5, len(spec.labels)) and mean.dtype == torch.float32
        assert torch.isfinite(mean).all()
        if model.heteroscedastic:
            assert log_var is not None and log_var.shape == mean.shape and torch.isfinite(log_var).all()
            low, high = LOG_VAR_RANGE
            assert low <= float(log_var.detach().min()) and float(log_var.detach().max()) <= high
        else:
            assert log_var is None


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda c: c.name)
def test_aux_only_has_empty_trunk(arch: type[Architecture]) -> None:
    model = arch().build(SPECS["aux_only"])
    assert isinstance(model.trunk, nn.ModuleList) and len(model.trunk) == 0 and n_params(model.trunk) == 0
    mean, _ = model(torch.zeros(3, 0), torch.randn(3, 7))
    assert mean.shape == (3, 3)


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda c: c.name)
def test_variance_head_option(arch: type[Architecture]) -> None:
    if arch is BayesianCNN:
        pytest.skip("bcnn is always heteroscedastic")
    model = arch({"variance_head": True}).build(SPECS["multi_arm"])
    assert model.heteroscedastic
    mean, log_var = run(model, SPECS["multi_arm"])
    assert log_var is not None and log_var.shape == mean.shape


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda c: c.name)
def test_untrained_outputs_are_small_and_deterministic(arch: type[Architecture]) -> None:
    spec = SPECS["single_arm"]
    torch.manual_seed(123)
    first = arch().build(spec).eval()
    torch.manual_seed(123)
    second = arch().build(spec).eval()
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    with torch.no_grad():
        mean, _ = run(first, spec, batch=64)
    assert float(mean.abs().max()) < 2.0


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda c: c.name)
def test_backward_reaches_every_parameter(arch: type[Architecture]) -> None:
    spec = SPECS["multi_arm"]
    model = arch().build(spec)
    mean, log_var = run(model, spec, batch=8)
    loss = mean.square().mean() + (log_var.mean() if log_var is not None else 0)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda c: c.name)
def test_wrong_input_widths_are_refused(arch: type[Architecture]) -> None:
    spec = SPECS["multi_arm"]
    model = arch().build(spec)
    with pytest.raises(ValueError, match=r"flux must be \(B, 150\)"):
        model(torch.zeros(2, 149), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"aux must be \(2, 4\)"):
        model(torch.zeros(2, 150), torch.zeros(2, 3))


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda c: c.name)
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (InputSpec((), 0, ("teff",)), "neither spectrum pixels nor auxiliary inputs"),
        (InputSpec((10,), 0, ()), "labels is empty"),
        (InputSpec((10, 0), 0, ("teff",)), "arm_pixels must all be >= 1"),
    ],
)
def test_impossible_specs_are_refused(arch: type[Architecture], spec: InputSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        arch().build(spec)


# ---------------------------------------------------------------------------------------------- short inputs
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda c: c.name)
@pytest.mark.parametrize("pixels", [1, 2, 5, 12, 20])
def test_short_arm_builds_and_runs(arch: type[Architecture], pixels: int) -> None:
    spec = InputSpec((pixels,), 0, ("teff", "logg"))
    model = arch().build(spec)
    mean, _ = run(model, spec, batch=2)
    assert mean.shape == (2, 2) and torch.isfinite(mean).all()


def test_short_arm_with_large_pools_and_kernels() -> None:
    spec = InputSpec((12, 3), 1, ("teff",))
    for model in (
        HybridCNN({"pool": 64, "kernel_size": 31, "conv_filters": [4, 4, 4, 4, 4]}).build(spec),
        StarNet({"pool": 64, "kernel_size": 50, "conv_filters": [2, 2, 2]}).build(spec),
        BayesianCNN({"pool": 64, "kernel_size": 20}).build(spec),
    ):
        mean, _ = run(model, spec, batch=2)
        assert mean.shape == (2, 1) and torch.isfinite(mean).all()


def test_hybrid_batch_norm_builds_and_trains_a_step() -> None:
    spec = SPECS["multi_arm"]
    model = HybridCNN({"batch_norm": True}).build(spec)
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.trunk.modules())
    mean, _ = run(model, spec, batch=4)
    mean.sum().backward()


# ---------------------------------------------------------------------------------------------- per-arm split
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda c: c.name)
def test_each_arm_has_its_own_branch(arch: type[Architecture]) -> None:
    arms = (50, 70, 30)
    spec = InputSpec(arms, 0, ("teff", "logg"))
    single = InputSpec((sum(arms),), 0, ("teff", "logg"))
    torch.manual_seed(0)
    model = arch().build(spec).eval()
    assert len(model.trunk) == 3
    assert len(arch().build(single).trunk) == 1

    seen: dict[int, torch.Tensor] = {}
    for index, branch in enumerate(model.trunk):
        branch.register_forward_hook(lambda _m, inputs, _o, index=index: seen.__setitem__(index, inputs[0].detach()))
    flux = torch.randn(4, sum(arms))
    aux = torch.zeros(4, 0)
    with torch.no_grad():
        before, _ = model(flux, aux)
    starts = [0, 50, 120, 150]
    for index in range(3):
        assert torch.equal(seen[index][:, 0, :], flux[:, starts[index] : starts[index + 1]])

    changed = flux.clone()
    changed[:, 50:120] += torch.randn(4, 70)  # arm 2 only
    with torch.no_grad():
        after, _ = model(changed, aux)
        arm1 = model.trunk[0](flux[:, :50].unsqueeze(1))
        arm1_changed = model.trunk[0](changed[:, :50].unsqueeze(1))
    assert not torch.allclose(before, after)
    assert torch.equal(arm1, arm1_changed)  # no convolution reaches across the arm boundary


# ---------------------------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("arch", "options", "field"),
    [
        (HybridCNN, {"dropout": -0.1}, "dropout"),
        (HybridCNN, {"dropout": 1.0}, "dropout"),
        (HybridCNN, {"kernel_size": 6}, "kernel_size must be odd"),
        (HybridCNN, {"kernel_size": 0}, "kernel_size"),
        (HybridCNN, {"conv_filters": []}, "conv_filters"),
        (HybridCNN, {"conv_filters": [16, 0]}, "conv_filters.1"),
        (HybridCNN, {"activation": "tanh"}, "activation"),
        (HybridCNN, {"pool": 0}, "pool"),
        (HybridCNN, {"spectrum_features": 0}, "spectrum_features"),
        (HybridCNN, {"mc_dropout": True, "dropout": 0.0}, "mc_dropout needs dropout > 0"),
        (HybridCNN, {"head_layers": [128, -1]}, "head_layers.1"),
        (StarNet, {"dropout": -0.5}, "dropout"),
        (StarNet, {"kernel_size": 0}, "kernel_size"),
        (StarNet, {"dense_layers": [256, 0]}, "dense_layers.1"),
        (StarNet, {"mc_dropout": True}, "mc_dropout needs dropout > 0"),
        (StarNet, {"filters": [4, 16]}, "Extra inputs are not permitted"),
        (BayesianCNN, {"dropout": 0.0}, "dropout"),
        (BayesianCNN, {"dropout": 1.0}, "dropout"),
        (BayesianCNN, {"dropout": -0.3}, "dropout"),
        (BayesianCNN, {"mc_dropout": False}, "Extra inputs are not permitted"),
        (BayesianCNN, {"conv_filters": []}, "conv_filters"),
    ],
)
def test_invalid_options_raise_validation_error(arch: type[Architecture], options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        arch(options)


def test_options_accept_lists_and_are_frozen() -> None:
    hybrid = HybridCNN({"conv_filters": [8, 8], "aux_layers": [], "head_layers": [], "kernel_size": 5})
    assert hybrid.options.conv_filters == (8, 8) and hybrid.options.aux_layers == ()
    with pytest.raises(ValidationError):
        hybrid.options.dropout = 0.5  # type: ignore[misc]
    spec = SPECS["single_arm"]
    mean, _ = run(hybrid.build(spec), spec)
    assert mean.shape == (5, 4)
    assert StarNet({"mc_dropout": True, "dropout": 0.2}).build(spec).mc_dropout is True
    assert HybridCNN({"mc_dropout": True}).build(spec).mc_dropout is True


def test_defaults_are_as_documented() -> None:
    h = HybridCNN().options
    assert (h.conv_filters, h.kernel_size, h.pool, h.activation) == ((16, 32, 32), 7, 2, "leaky_relu")
    assert h.batch_norm is False
    assert (h.spectrum_features, h.aux_layers, h.head_layers, h.dropout) == (128, (64, 64), (256, 128), 0.1)
    assert (h.variance_head, h.mc_dropout) == (False, False)
    s = StarNet().options
    assert (s.conv_filters, s.kernel_size, s.pool, s.dense_layers, s.activation) == ((4, 16), 8, 4, (256, 128), "relu")
    assert (s.dropout, s.variance_head, s.mc_dropout) == (0.0, False, False)
    b = BayesianCNN().options
    assert (b.conv_filters, b.kernel_size, b.pool, b.dense_layers, b.dropout) == ((2, 4), 3, 2, (196, 96), 0.3)


# ---------------------------------------------------------------------------------------------- dropout
def test_bcnn_dropout_is_active_in_train_mode_and_off_in_eval_mode() -> None:
    spec = SPECS["multi_arm"]
    torch.manual_seed(0)
    model = BayesianCNN().build(spec)
    flux, aux = torch.randn(6, 150), torch.randn(6, 4)
    n_dropout = sum(isinstance(m, nn.Dropout) for m in model.modules())
    assert n_dropout == 3 * 2 + 2  # two per arm branch, one per dense layer
    model.train()
    with torch.no_grad():
        first, first_var = model(flux, aux)
        second, second_var = model(flux, aux)
    assert not torch.allclose(first, second) and not torch.allclose(first_var, second_var)
    model.eval()
    with torch.no_grad():
        third, third_var = model(flux, aux)
        fourth, fourth_var = model(flux, aux)
    assert torch.equal(third, fourth) and torch.equal(third_var, fourth_var)


def test_starnet_has_no_dropout_by_default() -> None:
    model = StarNet().build(SPECS["single_arm"])
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    assert sum(isinstance(m, nn.Dropout) for m in StarNet({"dropout": 0.2}).build(SPECS["single_arm"]).modules()) == 2


# ---------------------------------------------------------------------------------------------- learning
def test_hybrid_cnn_learns_a_window_sum() -> None:
    torch.manual_seed(0)
    pixels, window = 32, slice(10, 20)
    flux = torch.randn(512, pixels)
    target = flux[:, window].sum(dim=1, keepdim=True)
    target = (target - target.mean()) / target.std()
    spec = InputSpec((pixels,), 0, ("window_sum",))
    # the hybrid design at reduced width, so that 200 full-batch steps take about a second on one CPU thread
    options = {"conv_filters": [8, 16], "kernel_size": 5, "spectrum_features": 32, "head_layers": [64, 32]}
    model = HybridCNN(options).build(spec)
    aux = torch.zeros(512, 0)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)

    def loss_now() -> float:
        model.eval()
        with torch.no_grad():
            return float(torch.mean((model(flux, aux)[0] - target) ** 2))

    initial = loss_now()
    model.train()
    for _ in range(200):
        optimiser.zero_grad()
        loss = torch.mean((model(flux, aux)[0] - target) ** 2)
        loss.backward()
        optimiser.step()
    final = loss_now()
    assert initial > 0.5 and final < 0.1 * initial, (initial, final)


# ---------------------------------------------------------------------------------------------- sizes
def test_starnet_parameter_count_matches_the_paper_layout() -> None:
    pixels, labels = 2401, 5
    model = StarNet().build(InputSpec((pixels,), 0, tuple(f"l{i}" for i in range(labels))))
    conv1 = 4 * 1 * 8 + 4  # 4 filters of width 8 over 1 channel
    conv2 = 16 * 4 * 8 + 16  # 16 filters of width 8 over 4 channels
    length = (pixels - 7 - 7) // 4  # two valid convolutions, then max-pool 4: 596
    dense1 = 16 * length * 256 + 256
    dense2 = 256 * 128 + 128
    output = 128 * labels + labels
    assert length == 596
    assert n_params(model) == conv1 + conv2 + dense1 + dense2 + output == 2_475_577

    with_aux = StarNet().build(InputSpec((pixels,), 114, tuple(f"l{i}" for i in range(labels))))
    assert n_params(with_aux) == n_params(model) + 114 * 256


def test_bcnn_parameter_count() -> None:
    pixels, labels = 100, 3
    model = BayesianCNN().build(InputSpec((pixels,), 0, tuple(f"l{i}" for i in range(labels))))
    convs = (2 * 1 * 3 + 2) + (4 * 2 * 3 + 4)  # 'same' convolutions keep 100 pixels
    dense = (4 * 50 * 196 + 196) + (196 * 96 + 96)  # max-pool 2: 50
    heads = 2 * (96 * labels + labels)  # mean and log-variance
    assert n_params(model) == convs + dense + heads
