"""SIGKILL at random moments, then resume: ingest, train and predict end exactly as uninterrupted runs.

Slow (run with ``-m slow``): each command is killed at ``STARLABEL_KILL_POINTS`` (default 20) random
moments, drawn uniformly over its uninterrupted wall time (start-up, work and the final write included),
each in a fresh output that is then resumed to completion and compared with the reference:

* ingest: the resumed store equals the uninterrupted one (every array, attributes but timestamps);
* train: the resumed bundle's weights file is byte-identical (same seed, CPU, same thread count);
* predict: the resumed catalogue file is byte-identical (no duplicated or missing rows).

A summary line per command is printed (``-s``): kill points, how many landed before completion, and
how many resumes were needed.
"""

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

from starlabel.testing import assert_same_store, load_script

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "framework"))
from learning_helpers import make_learning_store, write_descriptor  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
POINTS = int(os.environ.get("STARLABEL_KILL_POINTS", "20"))
STARLABEL = [sys.executable, "-m", "starlabel"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STARLABEL_")} | {"OMP_NUM_THREADS": "2"}


def run(args: list[str]) -> float:
    started = time.monotonic()
    done = subprocess.run(STARLABEL + args, capture_output=True, text=True, env=env(), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return time.monotonic() - started


def killed_at(args: list[str], seconds: float) -> bool:
    """Run ``args``, SIGKILL after ``seconds``; True if it was still running."""
    process = subprocess.Popen(STARLABEL + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True


def sweep(name: str, make_args, reference: float, check, resume_flag: list[str] | None = None) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(int(os.environ.get("STARLABEL_KILL_SEED", "0")))
    landed = 0
    for point in range(POINTS):
        args = make_args(point)
        if killed_at(args, float(rng.uniform(0.05, 1.0) * reference)):
            landed += 1
        run(args + (resume_flag or []))
        check(point)
    print(f"\n{name}: {POINTS} kill points, {landed} killed before completion, each resumed and identical")
    assert landed >= POINTS // 2, f"only {landed} of {POINTS} kills landed before {name} finished"


def test_ingest_sweep(tmp_path: Path) -> None:
    maker = load_script(REPO / "tests" / "data" / "starlabel_gaia" / "make_xp_library.py")
    for i in range(30):
        maker.write(tmp_path / "data", name=f"apogee_library_spectra_{i:02d}.fits.gz", seed=i)
    text = (REPO / "surveys" / "gaia_xp_apogee_dr17.yaml").read_text()
    text = text.replace("training:", "ingest: {chunk_rows: 16}\ntraining:")
    text = text.replace('labels: "apogee_library_spectra*.fits.gz"', 'labels: "apogee_library_spectra_00.fits.gz"')
    (tmp_path / "survey.yaml").write_text(text)

    def args(point: int | str) -> list[str]:
        return ["ingest", str(tmp_path / "survey.yaml"), "--store", str(tmp_path / f"s{point}.zarr"),
                "--data", str(tmp_path / "data"), "--quiet"]  # fmt: skip

    reference = run(args("ref"))

    def check(point: int) -> None:
        assert_same_store(tmp_path / "sref.zarr", tmp_path / f"s{point}.zarr")
        shutil.rmtree(tmp_path / f"s{point}.zarr")

    sweep("ingest", args, reference, check)


def test_train_sweep(tmp_path: Path) -> None:
    descriptor = write_descriptor(tmp_path, epochs=5, ensemble=2, patience=5)
    store = make_learning_store(tmp_path, 600, descriptor=descriptor, chunk_rows=100)

    def args(point: int | str) -> list[str]:
        return ["train", str(descriptor), "--store", str(store), "--out", str(tmp_path / f"b{point}"), "--quiet"]

    reference = run(args("ref"))
    weights = (tmp_path / "bref" / "weights.safetensors").read_bytes()

    def check(point: int) -> None:
        assert (tmp_path / f"b{point}" / "weights.safetensors").read_bytes() == weights
        shutil.rmtree(tmp_path / f"b{point}")

    sweep("train", args, reference, check, resume_flag=["--resume"])


def test_predict_sweep(tmp_path: Path) -> None:
    descriptor = write_descriptor(tmp_path, epochs=1, network={"architecture": "bcnn", "options": {}}, mc_samples=30)
    store = make_learning_store(tmp_path, 1000, descriptor=descriptor, chunk_rows=25)
    run(["train", str(descriptor), "--store", str(store), "--out", str(tmp_path / "bundle"), "--quiet"])

    def args(point: int | str) -> list[str]:
        return ["predict", str(tmp_path / "bundle"), "--store", str(store), "--out", str(tmp_path / f"c{point}.fits"), "--quiet"]

    reference = run(args("ref"))
    expected = (tmp_path / "cref.fits").read_bytes()

    def check(point: int) -> None:
        out = tmp_path / f"c{point}.fits"
        assert out.read_bytes() == expected
        assert not Path(str(out) + ".parts").exists() and not Path(str(out) + ".lock").exists()
        out.unlink()

    sweep("predict", args, reference, check)
