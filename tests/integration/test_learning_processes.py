"""Training and prediction as a user runs them: the CLI in subprocesses, SIGKILL and resume, torchrun."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from starlabel.catalogue import read_catalogue

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "framework"))
from learning_helpers import make_learning_store, write_descriptor  # noqa: E402

STARLABEL = [sys.executable, "-m", "starlabel"]


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run(STARLABEL + args, capture_output=True, text=True, timeout=600, **kwargs)


def kill_when(args: list[str], ready, timeout: float = 120.0) -> bool:  # type: ignore[no-untyped-def]
    """Start ``starlabel args``, SIGKILL it as soon as ``ready()`` is true; False if it finished first."""
    process = subprocess.Popen(STARLABEL + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            if ready():
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True
            time.sleep(0.01)
        raise AssertionError(f"starlabel {' '.join(args)} neither finished nor reached the kill point")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("proc")
    descriptor = write_descriptor(folder, epochs=6, ensemble=2, patience=6)
    store = make_learning_store(folder, 600, descriptor=descriptor, chunk_rows=100)
    return descriptor, store


def test_train_killed_and_resumed_ends_at_the_same_weights(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    descriptor, store = small
    reference = tmp_path / "reference"
    done = run(["train", str(descriptor), "--store", str(store), "--out", str(reference), "--quiet"])
    assert done.returncode == 0, done.stderr
    out = tmp_path / "resumed"
    args = ["train", str(descriptor), "--store", str(store), "--out", str(out), "--quiet"]
    work = out / "_work"
    # kill in the second member, after some of its checkpoints
    killed = kill_when(args, lambda: (work / "member1" / "epoch-0002").is_dir())
    assert killed, "training finished before the kill point"
    assert not (out / "card.json").exists() and (work / "member0" / "final.json").exists()
    again = run(args)
    assert again.returncode == 2 and "add --resume to continue it" in again.stderr
    resumed = run(args + ["--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "weights.safetensors").read_bytes() == (reference / "weights.safetensors").read_bytes()
    assert not work.exists()


def test_predict_killed_and_resumed_gives_the_identical_catalogue(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    descriptor, _ = small
    bundle = tmp_path / "bundle"
    # Monte-Carlo dropout with many passes makes each chunk slow enough to be interrupted
    mc = write_descriptor(tmp_path, epochs=1, network={"architecture": "bcnn", "options": {}}, mc_samples=100)
    store = make_learning_store(tmp_path, 1000, descriptor=mc, chunk_rows=25)
    assert run(["train", str(mc), "--store", str(store), "--out", str(bundle), "--quiet"]).returncode == 0
    reference = tmp_path / "reference.fits"
    assert run(["predict", str(bundle), "--store", str(store), "--out", str(reference), "--quiet"]).returncode == 0
    out = tmp_path / "resumed.fits"
    args = ["predict", str(bundle), "--store", str(store), "--out", str(out), "--quiet"]
    parts = Path(str(out) + ".parts")
    rng = np.random.default_rng(int(os.environ.get("STARLABEL_KILL_SEED", "1")))
    for _ in range(2):
        target = int(rng.integers(1, 16))  # of 40 parts
        done = len(list(parts.glob("part-*.npz"))) if parts.exists() else 0
        killed = kill_when(args, lambda t=target + done: len(list(parts.glob("part-*.npz"))) >= t)
        assert killed, "prediction finished before the kill point"
        assert not out.exists()
    finished = run(args)
    assert finished.returncode == 0, finished.stderr
    assert "resumed" in finished.stdout
    assert out.read_bytes() == reference.read_bytes()
    columns, _ = read_catalogue(out)
    assert len(columns["source_id"]) == len(set(columns["source_id"].tolist())) == 1000
    assert not parts.exists() and not Path(str(out) + ".lock").exists()


def test_two_predictions_into_one_output_are_refused(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    descriptor, store = small
    bundle = tmp_path / "b"
    assert run(["train", str(descriptor), "--store", str(store), "--out", str(bundle), "--quiet", "--epochs", "1"]).returncode == 0
    out = tmp_path / "cat.parquet"
    lock = Path(str(out) + ".lock")
    lock.write_text(f'{{"pid": {os.getpid()}, "host": "{os.uname().nodename}", "token": "x"}}')
    refused = run(["predict", str(bundle), "--store", str(store), "--out", str(out), "--quiet"])
    assert refused.returncode == 2 and f"another prediction is writing {out}" in refused.stderr
    lock.unlink()
    assert run(["predict", str(bundle), "--store", str(store), "--out", str(out), "--quiet"]).returncode == 0


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None, reason="torchrun not installed")
def test_torchrun_two_processes_reach_the_single_process_validation_loss(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from starlabel.bundle import read_card

    descriptor, store = small
    single = tmp_path / "single"
    assert run(["train", str(descriptor), "--store", str(store), "--out", str(single), "--quiet", "--ensemble", "1"]).returncode == 0
    torchrun = str(Path(sys.executable).parent / "torchrun")
    double = tmp_path / "double"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "starlabel", "train", str(descriptor), "--store",
         str(store), "--out", str(double), "--quiet", "--ensemble", "1"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = read_card(single), read_card(double)
    assert two.training["world_size"] == 2 and one.training["world_size"] == 1
    loss_one = one.training["members"][0]["best_valid_loss"]
    loss_two = two.training["members"][0]["best_valid_loss"]
    first = one.training["members"][0]["history"][0]["valid_loss"]
    assert loss_two == pytest.approx(loss_one, rel=0.35), (loss_one, loss_two)
    assert loss_two < 0.5 * first
