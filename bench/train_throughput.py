"""Training throughput of hybrid_cnn against the forward+backward FLOP floor of this machine.

    python bench/train_throughput.py [--batch-sizes 32 64 128 256] [--seconds 2] [--trainer-rows 4096]

Two networks, both ``hybrid_cnn`` with the options of the built-in ``gaia_xp_apogee_dr17`` descriptor
(convolutions 16/32/32, kernel 7, pool 2, dense 128 + 64/64 + 256/128, dropout 0.1, variance head, so the
Gaussian negative log-likelihood with label errors):

* ``xp``: that descriptor's inputs, 343 XP pixels and its 8 auxiliary columns (16 network inputs);
* ``rvs``: the same network on RVS-shaped inputs, 2401 pixels and the 120 auxiliary columns of the
  built-in ``gaia_rvs_dr3`` descriptor (240 network inputs).

1. The training step in isolation, per batch size: the very step of ``starlabel train`` (``train`` mode,
   forward, :func:`starlabel.losses.masked_loss`, ``zero_grad``, backward, gradient clipping at 10,
   ``AdamW.step``) on standardised random inputs already in memory (no loader, no input transform),
   best of three timed runs of at least ``--seconds`` each.
2. The floor: forward FLOPs per sample counted analytically from the layer shapes (2 per multiply-add
   of every Conv1d and Linear, read from the real output shapes by forward hooks; activations, pooling
   and biases not counted), backward = 2 × forward, so 3 × forward per trained sample; divided into this
   machine's fp32 GEMM rate (``torch.mm`` of 2048 × 2048 matrices with the same threads, best of five)
   it gives the samples/s the machine could reach at most. The table prints the fraction reached.
3. With ``--trainer-rows N`` (> 0): the real trainer, ``starlabel.train.train`` on a generated store of N
   rows (the same layouts), 1 and 3 epochs; the difference per epoch (loader, input transform, the
   step, validation pass and checkpoint) gives end-to-end training samples/s at the descriptor's batch size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import predict_1e6  # noqa: E402  (the RVS-like store writer)

XP_DESCRIPTOR = "gaia_xp_apogee_dr17"
RVS_DESCRIPTOR = "gaia_rvs_dr3"


@dataclass
class Case:
    """One network to measure: its name, architecture, input spec and descriptor document."""

    name: str
    arch: Any
    spec: Any
    document: dict[str, Any]
    loss: str


def _aux_columns(resolved: Any, plugins: Any) -> int:
    total = 0
    for index, entry in enumerate(resolved.model.auxiliary):
        provider = plugins.auxiliary.get(entry.provider)(resolved.options[f"auxiliary[{index}]"])
        total += len(provider.columns())
    return total


def cases(plugins: Any) -> list[Case]:
    """The ``xp`` and ``rvs`` networks, built from the built-in descriptors."""
    import yaml

    from starlabel.components import InputSpec
    from starlabel.descriptor import load_descriptor
    from starlabel.grid import WavelengthGrid
    from starlabel.surveys import find_descriptor

    xp_path = Path(find_descriptor(XP_DESCRIPTOR, plugins))
    xp = load_descriptor(xp_path, plugins)
    rvs = load_descriptor(find_descriptor(RVS_DESCRIPTOR, plugins), plugins)
    network = xp.model.network
    arch = plugins.architectures.get(network.architecture)(xp.options["network"])
    out = []
    for name, resolved, path in (("xp", xp, xp_path), ("rvs", rvs, None)):
        pixels = len(WavelengthGrid.from_section(resolved.model.grid).wavelength)
        labels = tuple(resolved.model.labels.columns)
        spec = InputSpec((pixels,), 2 * _aux_columns(resolved, plugins), labels)
        if path is not None:
            document = yaml.safe_load(path.read_text())
        else:  # the RVS descriptor with the XP descriptor's network and training options
            document = yaml.safe_load(Path(find_descriptor(RVS_DESCRIPTOR, plugins)).read_text())
            document["network"] = yaml.safe_load(xp_path.read_text())["network"]
            document["training"] = dict(document.get("training", {}), batch_size=xp.model.training.batch_size)
        probe = arch.build(spec)
        loss = xp.model.training.loss
        if loss == "auto":
            loss = "gaussian_nll" if probe.heteroscedastic else "mse"
        out.append(Case(name, arch, spec, document, loss))
    return out


# ---------------------------------------------------------------------------------------------- FLOPs
def forward_flops(module: torch.nn.Module, spec: Any) -> int:
    """Forward FLOPs of one sample: 2 per multiply-add of every Conv1d and Linear, from real output shapes."""
    total = [0]

    def conv(layer: torch.nn.Conv1d, inputs: Any, output: torch.Tensor) -> None:
        per_output = (layer.in_channels // layer.groups) * layer.kernel_size[0]
        total[0] += 2 * layer.out_channels * output.shape[-1] * per_output

    def linear(layer: torch.nn.Linear, inputs: Any, output: torch.Tensor) -> None:
        total[0] += 2 * layer.in_features * layer.out_features

    hooks = []
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv1d):
            hooks.append(layer.register_forward_hook(conv))
        elif isinstance(layer, torch.nn.Linear):
            hooks.append(layer.register_forward_hook(linear))
    try:
        module.eval()
        with torch.no_grad():
            module(torch.zeros(1, sum(spec.arm_pixels)), torch.zeros(1, spec.n_aux))
    finally:
        for hook in hooks:
            hook.remove()
    return total[0]


def check_counter() -> None:
    """The counter against hand-counted layers (a check that it counts what the docstring says)."""
    from starlabel.components import InputSpec

    class Two(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv1d(1, 4, 5, padding=2)  # 10 px out: 2 * 4 * 10 * 1 * 5 = 400
            self.dense = torch.nn.Linear(40 + 3, 2)  # 2 * 43 * 2 = 172

        def forward(self, flux: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
            return self.dense(torch.cat([self.conv(flux.unsqueeze(1)).flatten(1), aux], dim=1))

    counted = forward_flops(Two(), InputSpec((10,), 3, ("y",)))
    if counted != 572:
        raise AssertionError(f"FLOP counter gives {counted} for a layer pair worth 572")


def gemm_rate(n: int = 2048, repeats: int = 5) -> float:
    """fp32 GFLOP/s of ``torch.mm`` on ``n`` × ``n`` matrices with the current threads, best of ``repeats``."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


# ------------------------------------------------------------------------------------------ the step
def step_rate(case: Case, batch: int, seconds: float, seed: int = 0) -> float:
    """Samples/s of the training step (forward, masked loss, backward, clip, AdamW), best of three runs."""
    from starlabel.losses import masked_loss

    torch.manual_seed(seed)
    module = case.arch.build(case.spec)
    module.train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    n_labels = len(case.spec.labels)
    x = torch.randn(batch, sum(case.spec.arm_pixels), generator=g)
    a = torch.randn(batch, case.spec.n_aux, generator=g)
    y = torch.randn(batch, n_labels, generator=g)
    ok = torch.rand(batch, n_labels, generator=g) > 0.1
    err = torch.full((batch, n_labels), 0.1)

    def step() -> None:
        mean, log_var = module(x, a)
        s, c = masked_loss(mean, log_var, y, ok, err, case.loss)
        loss = s / c.clamp(min=1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 10.0)
        optimizer.step()

    for _ in range(2):
        step()
    best = 0.0
    for _ in range(3):
        steps, start = 0, time.perf_counter()
        while steps < 3 or time.perf_counter() - start < seconds:
            step()
            steps += 1
        best = max(best, steps * batch / (time.perf_counter() - start))
    return best


def trainer_rate(case: Case, work: Path, rows: int) -> tuple[float, int, int]:
    """End-to-end training samples/s of ``starlabel.train.train`` (per epoch, from 1- and 3-epoch runs)."""
    import yaml

    from starlabel.descriptor import load_descriptor
    from starlabel.plugins import load_plugins
    from starlabel.train import TrainOptions, train

    plugins = load_plugins(entry_points=False)
    folder = work / case.name
    folder.mkdir(parents=True, exist_ok=True)
    document = dict(case.document, name=f"bench_train_{case.name}")
    document.pop("data", None)
    path = folder / "descriptor.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    resolved = load_descriptor(path, plugins)
    store = folder / "store.zarr"
    predict_1e6.write_store(store, resolved, plugins, rows, seed=3, labelled=1.0)
    seconds, n_train = {}, 0
    for epochs in (1, 3):
        start = time.perf_counter()
        report = train(
            resolved, plugins, store, folder / f"bundle{epochs}", TrainOptions(epochs=epochs, ensemble=1, progress=False)
        )
        seconds[epochs] = time.perf_counter() - start
        n_train = int(report.members[0]["n_train"])
    per_epoch = (seconds[3] - seconds[1]) / 2
    batch = int(resolved.model.training.batch_size)
    return (n_train / per_epoch if per_epoch > 0 else float("nan")), n_train, batch


def run(args: argparse.Namespace, work: Path) -> None:
    from starlabel.plugins import load_plugins

    torch.set_flush_denormal(True)  # as starlabel train does
    check_counter()
    threads = torch.get_num_threads()
    gemm = gemm_rate()
    print(f"fp32 GEMM (torch.mm 2048², {threads} thread(s)): {gemm:,.1f} GFLOP/s", flush=True)
    rows = []
    for case in cases(load_plugins(entry_points=False)):
        fwd = forward_flops(case.arch.build(case.spec), case.spec)
        floor = gemm * 1e9 / (3 * fwd)
        print(
            f"{case.name}: {case.spec.arm_pixels[0]} px + {case.spec.n_aux} aux inputs, {len(case.spec.labels)} labels, "
            f"loss {case.loss}; forward {fwd / 1e6:.2f} MFLOP/sample, train step {3 * fwd / 1e6:.2f} MFLOP/sample, "
            f"floor {floor:,.0f} samples/s",
            flush=True,
        )
        for batch in args.batch_sizes:
            rate = step_rate(case, batch, args.seconds)
            rows.append((case.name, "training step in isolation", batch, rate, fwd, floor))
            print(f"  batch {batch}: {rate:,.0f} samples/s", flush=True)
        if args.trainer_rows > 0:
            rate, n_train, batch = trainer_rate(case, work, args.trainer_rows)
            rows.append((case.name, f"starlabel train, per epoch ({n_train} rows)", batch, rate, fwd, floor))
            print(f"  real trainer: {rate:,.0f} samples/s", flush=True)

    print()
    print("| network | what | batch | samples/s | GFLOP/s (3 × fwd) | floor samples/s | fraction of floor |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, what, batch, rate, fwd, floor in rows:
        print(
            f"| hybrid_cnn {name} | {what} | {batch} | {rate:,.0f} | {rate * 3 * fwd / 1e9:,.1f} | {floor:,.0f} | "
            f"{rate / floor:.1%} |"
        )
    print(
        f"\nfloor = fp32 GEMM rate ({gemm:,.1f} GFLOP/s, {threads} thread(s)) / (3 × forward FLOPs per sample); "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, torch {torch.__version__}, "
        f"{os.cpu_count()} cores, numpy {np.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--seconds", type=float, default=2.0, help="least time of each timed run")
    parser.add_argument("--trainer-rows", type=int, default=4096, help="rows of the real-trainer store (0: skip)")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the generated stores and bundles")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="starlabel-bench-train-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
