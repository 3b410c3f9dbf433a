"""The fast inference engine: FLOP counting, compiled stacks, networks and ensembles equal to eager."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from learning_helpers import make_learning_store, write_descriptor
from torch import nn

from starlabel.bundle import load_bundle
from starlabel.catalogue import read_catalogue
from starlabel.components import InputSpec
from starlabel.descriptor import load_descriptor
from starlabel.ensemble import EngineError, Ensemble
from starlabel.fastinfer import (
    UnsupportedLayerError,
    compile_stack,
    conv1d_flops,
    count_flops,
    linear_flops,
)
from starlabel.plugins import load_plugins
from starlabel.predict import make_ensemble, predict
from starlabel.train import TrainOptions, train

RTOL = 1e-5


@pytest.fixture(scope="module")
def plugins():  # type: ignore[no-untyped-def]
    return load_plugins(entry_points=False)


def rel_diff(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want| (the scale of the output; elementwise ratios blow up near 0)."""
    assert got.shape == want.shape
    return float((got.double() - want.double()).abs().max() / want.double().abs().max().clamp_min(1e-30))


def randomise_batch_norm(module: nn.Module, seed: int) -> None:
    """Give every BatchNorm1d non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm1d):
            n = layer.num_features
            layer.running_mean.copy_(torch.randn(n, generator=g))
            layer.running_var.copy_(torch.rand(n, generator=g) + 0.3)
            layer.weight.data.copy_(torch.randn(n, generator=g))
            layer.bias.data.copy_(torch.randn(n, generator=g))


# ------------------------------------------------------------------------------------------------ FLOPs
def test_flops_of_a_linear_and_a_conv1d_by_hand() -> None:
    linear = nn.Linear(10, 3)
    assert linear_flops(linear) == 60  # 10·3 multiply-adds, 2 operations each
    assert linear_flops(linear, rows=4) == 240
    conv = nn.Conv1d(2, 4, 3, padding=1)
    assert conv1d_flops(conv, 5) == 2 * 4 * 5 * 2 * 3  # out ch · positions · in ch · kernel, ×2 = 240
    grouped = nn.Conv1d(4, 6, 5, groups=2)
    assert conv1d_flops(grouped, 7) == 2 * 6 * 7 * 2 * 5

    net = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(8, 3))
    # conv: 240 on 5 positions; pooling leaves 4·2 = 8 features; linear 2·8·3 = 48; ReLU and pool count 0
    assert count_flops(net, torch.zeros(7, 2, 5)) == 240 + 48
    valid = nn.Conv1d(1, 2, 4)  # 'valid': 10 - 4 + 1 = 7 positions
    assert count_flops(valid, torch.zeros(3, 1, 10)) == 2 * 2 * 7 * 1 * 4


def test_flops_of_the_hybrid_cnn_match_the_shapes(plugins) -> None:  # type: ignore[no-untyped-def]
    arch = plugins.architectures.get("hybrid_cnn")
    net = arch({"conv_filters": [16, 32, 32], "kernel_size": 7, "variance_head": True}).build(
        InputSpec((2401,), 114, ("a", "b", "c", "d"))
    )
    convs = 16 * 7 * 2401 + 32 * 16 * 7 * 1200 + 32 * 32 * 7 * 600  # lengths 2401 → 1200 → 600 → 300
    dense = 32 * 300 * 128 + 114 * 64 + 64 * 64 + 192 * 256 + 256 * 128 + 2 * 128 * 4
    assert count_flops(net, torch.zeros(2, 2401), torch.zeros(2, 114)) == 2 * (convs + dense)


# ------------------------------------------------------------------------------------------ compiled stacks
@pytest.mark.parametrize(
    "stack, in_shape",
    [
        (nn.Sequential(nn.Conv1d(1, 4, 5, padding=2), nn.BatchNorm1d(4), nn.ELU(), nn.MaxPool1d(3)), (1, 23)),
        (nn.Sequential(nn.ConstantPad1d((1, 2), 0.0), nn.Conv1d(2, 3, 4), nn.GELU(), nn.AvgPool1d(2, ceil_mode=True)), (2, 17)),
        (nn.Sequential(nn.Conv1d(3, 4, 3, stride=2, dilation=2, groups=1), nn.Tanh(), nn.Flatten()), (3, 20)),
        (nn.Sequential(nn.Conv1d(1, 3, 3, padding="same"), nn.ReLU(), nn.BatchNorm1d(3), nn.Flatten(), nn.Dropout(0.5),
                       nn.Linear(3 * 11, 6), nn.BatchNorm1d(6), nn.LeakyReLU(0.2)), (1, 11)),
        (nn.Sequential(nn.Linear(9, 5), nn.SiLU(), nn.BatchNorm1d(5), nn.Sigmoid(), nn.Identity()), (9,)),
        (nn.Sequential(nn.Conv1d(2, 3, 3), nn.LeakyReLU(0.1), nn.MaxPool1d(3, stride=2, padding=1), nn.ReLU(),
                       nn.MaxPool1d(2, ceil_mode=True), nn.Conv1d(3, 4, 1), nn.ReLU(), nn.MaxPool1d(3)), (2, 27)),
        (nn.Sequential(nn.LeakyReLU(), nn.Conv1d(2, 2, 3), nn.Flatten(), nn.ReLU(), nn.Linear(2 * 6, 2)), (2, 8)),
    ],
    ids=[
        "bn-elu-maxpool",
        "asymmetric-pad-avgpool",
        "strided-flatten-last",
        "bn-both-sides",
        "dense",
        "pools-before-monotone-acts",
        "act-first",
    ],
)
def test_compiled_stack_equals_the_module(stack: nn.Sequential, in_shape: tuple[int, ...]) -> None:
    torch.manual_seed(1)
    randomise_batch_norm(stack, 2)
    stack.eval()
    fast = compile_stack(stack, in_shape, tile_bytes=1)  # tiles of 1 row: the tiling is exercised too
    x = torch.randn(5, *in_shape)
    kept = x.clone()
    with torch.inference_mode():
        want = stack(x)
        got = fast(x)
    assert got.shape == want.shape
    assert rel_diff(got, want) < RTOL
    assert torch.equal(x, kept)  # in-place activations never touch the caller's input
    assert tuple(got.shape[1:]) == fast.out_shape


def test_compiled_stack_owns_its_weights() -> None:
    torch.manual_seed(0)
    stack = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 8, 3))
    fast = compile_stack(stack, (1, 10))
    x = torch.randn(4, 1, 10)
    before = fast(x)
    with torch.no_grad():
        stack[0].weight.add_(1.0)
    assert torch.equal(fast(x), before)
    assert rel_diff(compile_stack(stack, (1, 10))(x), stack(x).detach()) < RTOL


@pytest.mark.parametrize(
    "layer, why",
    [
        (nn.Conv1d(1, 2, 3, padding=1, padding_mode="reflect"), "padding_mode 'reflect'"),
        (nn.BatchNorm1d(1, track_running_stats=False), "normalises by the batch"),
        (nn.MaxPool1d(2, return_indices=True), "return_indices"),
        (nn.ConstantPad1d(1, 0.5), "only zero padding"),
        (nn.Softmax(dim=1), "no fast equivalent"),
    ],
)
def test_unsupported_layers_are_named(layer: nn.Module, why: str) -> None:
    with pytest.raises(UnsupportedLayerError) as caught:
        compile_stack(nn.Sequential(nn.Identity(), layer), (1, 12))
    message = str(caught.value)
    assert "layer 1" in message and type(layer).__name__ in message and why in message and "Supported:" in message


# ---------------------------------------------------------------------------------------------- networks
SPECS = [
    InputSpec((2401,), 114, ("teff", "logg", "m_h", "alpha_m", "a", "b")),  # one long odd arm, aux
    InputSpec((97, 40, 13), 0, ("teff", "logg")),  # three arms, no aux, odd lengths that pooling truncates
    InputSpec((31,), 3, ("teff",)),
    InputSpec((), 7, ("teff", "m_h")),  # no spectrum
]
ARCHS = [
    ("hybrid_cnn", {}),
    ("hybrid_cnn", {"conv_filters": [16, 32, 32], "variance_head": True, "batch_norm": True, "activation": "gelu"}),
    ("hybrid_cnn", {"kernel_size": 5, "pool": 3, "activation": "elu", "aux_layers": [], "head_layers": []}),
    ("starnet", {"variance_head": True}),
    ("bcnn", {}),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"arms{len(s.arm_pixels)}-aux{s.n_aux}")
@pytest.mark.parametrize("name, options", ARCHS, ids=[f"{n}{i}" for i, (n, _) in enumerate(ARCHS)])
def test_fast_network_equals_eager(plugins, name: str, options: dict, spec: InputSpec) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(3)
    net = plugins.architectures.get(name)(options).build(spec)
    randomise_batch_norm(net, 4)
    net.eval()
    fast = net.export_inference()
    assert fast.heteroscedastic == net.heteroscedastic and fast.mc_dropout is False
    for rows in (1, 257):
        if rows == 257 and sum(spec.arm_pixels) > 1000 and name != "hybrid_cnn":
            continue  # keep the test quick: the long arm at 257 rows is covered by hybrid_cnn
        flux = torch.randn(rows, sum(spec.arm_pixels))
        aux = torch.randn(rows, spec.n_aux)
        with torch.inference_mode():
            want = net(flux, aux)
            got = fast(flux, aux)
        assert rel_diff(got[0], want[0]) < RTOL
        if want[1] is None:
            assert got[1] is None
        else:
            assert rel_diff(got[1], want[1]) < RTOL


def test_fast_network_checks_its_inputs(plugins) -> None:  # type: ignore[no-untyped-def]
    net = plugins.architectures.get("hybrid_cnn")().build(InputSpec((20,), 2, ("teff",)))
    fast = net.export_inference()
    with pytest.raises(ValueError, match=r"flux must be \(B, 20\), got \(3, 21\)"):
        fast(torch.zeros(3, 21), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"aux must be \(3, 2\), got \(3, 1\)"):
        fast(torch.zeros(3, 20), torch.zeros(3, 1))
    mean, _ = fast(torch.zeros(0, 20), torch.zeros(0, 2))
    assert mean.shape == (0, 1)


# ---------------------------------------------------------------------------------------------- ensembles
def _ensemble(members: list[nn.Module], engine: str, *, hetero: bool, mc: bool) -> Ensemble:
    """An ensemble in standardised units (label mean 0, std 1); ``predict`` never uses the input transform."""
    n = len(getattr(members[0], "spec", InputSpec((), 0, ("teff",))).labels)
    return Ensemble(
        members, None, np.zeros(n), np.ones(n), np.zeros(0), np.ones(0), hetero, mc, 4, engine=engine  # type: ignore[arg-type]
    )


def test_ensemble_engines_agree_and_mc_dropout_stays_eager(plugins) -> None:  # type: ignore[no-untyped-def]
    spec = InputSpec((61, 30), 4, ("teff", "m_h"))
    flux, aux = torch.randn(40, 91), torch.randn(40, 4)
    torch.manual_seed(5)
    hybrid = [plugins.architectures.get("hybrid_cnn")({"variance_head": True}).build(spec) for _ in range(2)]
    fast, eager = _ensemble(hybrid, "fast", hetero=True, mc=False), _ensemble(hybrid, "eager", hetero=True, mc=False)
    assert fast.runner(hybrid[0]) is not None and eager.runner(hybrid[0]) is None
    pf, pe = fast.predict(flux, aux), eager.predict(flux, aux)
    for part in ("mean", "var_ensemble", "var_model"):
        a, b = getattr(pf, part), getattr(pe, part)
        assert np.abs(a - b).max() <= RTOL * np.abs(b).max()
    assert np.abs(pe.var_ensemble).max() > 0
    # Monte-Carlo dropout: every pass runs the module with dropout on, whatever the engine
    bayes = [plugins.architectures.get("bcnn")().build(spec)]
    mf, me = _ensemble(bayes, "fast", hetero=True, mc=True), _ensemble(bayes, "eager", hetero=True, mc=True)
    a, b = mf.predict(flux, aux, seed=9), me.predict(flux, aux, seed=9)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.var_mc, b.var_mc)
    assert a.var_mc.min() > 0


def test_ensemble_rebuilds_the_fast_copy_when_weights_change(plugins) -> None:  # type: ignore[no-untyped-def]
    spec = InputSpec((40,), 2, ("teff",))
    torch.manual_seed(6)
    net = plugins.architectures.get("hybrid_cnn")().build(spec)
    ens = _ensemble([net], "fast", hetero=False, mc=False)
    flux, aux = torch.randn(8, 40), torch.randn(8, 2)
    first = ens.runner(net)
    assert ens.runner(net) is first  # cached
    before = ens.predict(flux, aux).mean
    with torch.no_grad():
        net.mean.bias.add_(2.5)
    assert ens.runner(net) is not first
    after = ens.predict(flux, aux).mean
    np.testing.assert_allclose(after - before, 2.5, rtol=1e-5)


def test_ensemble_falls_back_to_the_module(plugins) -> None:  # type: ignore[no-untyped-def]
    class Plain(nn.Module):
        heteroscedastic, mc_dropout = False, False
        spec = InputSpec((5,), 0, ("teff",))

        def forward(self, flux: torch.Tensor, aux: torch.Tensor) -> tuple[torch.Tensor, None]:
            return flux.sum(1, keepdim=True), None

    class Refuses(Plain):
        def export_inference(self) -> nn.Module:
            raise UnsupportedLayerError("head layer 0", nn.Softmax(1), "no fast equivalent")

    for module in (Plain(), Refuses()):
        ens = _ensemble([module], "fast", hetero=False, mc=False)
        assert ens.runner(module) is None
        np.testing.assert_allclose(ens.predict(torch.ones(3, 5), torch.zeros(3, 0)).mean, 5.0)


def test_unknown_engine_is_refused_with_a_suggestion() -> None:
    with pytest.raises(EngineError, match=r"unknown inference engine 'fsat'\. Did you mean fast\? Allowed: fast, eager"):
        _ensemble([nn.Identity()], "fsat", hetero=False, mc=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, plugins) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """A 2-member heteroscedastic hybrid_cnn with batch normalisation, trained briefly: (store, bundle)."""
    folder = tmp_path_factory.mktemp("fastinfer")
    network = {
        "architecture": "hybrid_cnn",
        "options": {"conv_filters": [8, 16], "batch_norm": True, "variance_head": True, "dropout": 0.1},
    }
    descriptor = write_descriptor(folder, ensemble=2, epochs=2, network=network)
    store = make_learning_store(folder, 400, descriptor=descriptor, chunk_rows=150)
    out = folder / "bundle"
    train(load_descriptor(descriptor, plugins), plugins, store, out, TrainOptions(progress=False))
    return store, out


def test_bundle_predictions_fast_equal_eager(bundle, plugins, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store, path = bundle
    loaded = load_bundle(path, plugins)
    fast = make_ensemble(loaded)
    assert fast.engine == "fast" and all(fast.runner(m) is not None for m in loaded.members)
    eager = replace(fast, engine="eager")
    g = torch.Generator().manual_seed(0)
    member = loaded.members[0]
    x, a = torch.randn(257, member.n_pixels, generator=g), torch.randn(257, member.n_aux, generator=g)
    pf, pe = fast.predict(x, a), eager.predict(x, a)
    for part in ("mean", "var_ensemble", "var_model"):
        want = getattr(pe, part)
        assert np.abs(getattr(pf, part) - want).max() <= RTOL * np.abs(want).max()

    # the catalogue of `predict` (fast by default) against the same run forced onto the modules
    predict(path, store, tmp_path / "fast.fits", plugins, progress=False)
    monkeypatch.setattr(Ensemble, "runner", lambda self, module: None)
    predict(path, store, tmp_path / "eager.fits", plugins, progress=False)
    cf, _ = read_catalogue(tmp_path / "fast.fits")
    ce, _ = read_catalogue(tmp_path / "eager.fits")
    assert list(cf) == list(ce)
    np.testing.assert_array_equal(cf["source_id"], ce["source_id"])
    for name in ("teff", "m_h", "teff_err", "m_h_err", "teff_err_model", "m_h_err_model", "teff_err_ensemble"):
        scale = np.abs(ce[name].astype(np.float64)).max()
        assert np.abs(cf[name].astype(np.float64) - ce[name]).max() <= RTOL * scale, name


def test_predict_command_engines_agree(bundle, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from starlabel.cli_learn import predict_command

    store, path = bundle
    tables = {}
    for engine in ("fast", "eager"):
        out = tmp_path / f"{engine}.parquet"
        args = [str(path), "--store", str(store), "--out", str(out), "--engine", engine, "--quiet"]
        result = CliRunner().invoke(predict_command, args, obj=plugins)
        assert result.exit_code == 0, result.output
        tables[engine], _ = read_catalogue(out)
    for name in ("teff", "m_h", "teff_err", "m_h_err"):
        want = tables["eager"][name].astype(np.float64)
        assert np.abs(tables["fast"][name] - want).max() <= RTOL * np.abs(want).max(), name
    result = CliRunner().invoke(predict_command, [str(path), "--store", str(store), "--out", "x.fits", "--engine", "jit"])
    assert result.exit_code == 2 and "'jit' is not one of 'fast', 'eager'" in result.output


@pytest.mark.parametrize("rows", [1, 3, 40])
def test_convolutions_below_and_above_16_rows_and_under_autocast(rows: int) -> None:
    """Small batches (which F.conv2d would hand to im2col) give eager's numbers; bfloat16 autocast still applies."""
    torch.manual_seed(3)
    stack = nn.Sequential(nn.Conv1d(1, 8, 7, padding=3), nn.ReLU(), nn.Conv1d(8, 8, 5, padding=(2,)), nn.Flatten())
    stack.eval()
    fast = compile_stack(stack, (1, 300))
    x = torch.randn(rows, 1, 300)
    with torch.inference_mode():
        want, got = stack(x), fast(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = fast(x)
    assert rel_diff(got, want) < RTOL
    assert 1e-4 < rel_diff(low.float(), want) < 3e-2  # the convolutions ran in bfloat16 under autocast
