"""An ingest killed with SIGKILL in a subprocess and re-run gives the store an uninterrupted run gives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from starlabel.store import Store
from starlabel.testing import assert_same_store, load_script

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "tests" / "data" / "starlabel_gaia" / "make_xp_library.py"
N_FILES = 40


def generator():  # type: ignore[no-untyped-def]
    return load_script(GENERATOR)


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kill")
    maker = generator()
    for i in range(N_FILES):
        maker.write(folder / "data", name=f"apogee_library_spectra_{i:02d}.fits.gz", seed=i)
    text = (REPO / "surveys" / "gaia_xp_apogee_dr17.yaml").read_text()
    text = text.replace("training:", "ingest: {chunk_rows: 16}\ntraining:")
    text = text.replace('labels: "apogee_library_spectra*.fits.gz"', 'labels: "apogee_library_spectra_00.fits.gz"')
    (folder / "survey.yaml").write_text(text)
    return folder


def ingest_command(survey: Path, store: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "starlabel",
        "ingest",
        str(survey / "survey.yaml"),
        "--store",
        str(store),
        "--data",
        str(survey / "data"),
        "--quiet",
    ]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STARLABEL_")}


def test_sigkill_then_rerun_gives_identical_store(survey: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole.zarr"
    done = subprocess.run(ingest_command(survey, whole), capture_output=True, text=True, env=env(), timeout=300)
    assert done.returncode == 0, done.stderr
    total = Store.open(whole).n_rows
    assert total == N_FILES * 40

    killed = tmp_path / "killed.zarr"
    kills = 0
    for _ in range(3):  # kill it up to three times at different points, then let it finish
        proc = subprocess.Popen(
            ingest_command(survey, killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env()
        )
        deadline = time.monotonic() + 120
        target = 16 * (kills * 20 + 3)
        while proc.poll() is None and time.monotonic() < deadline:
            progress = killed / "_progress.json"
            try:
                if progress.is_file() and '"rows": ' in progress.read_text() and _rows(progress) >= target:
                    os.kill(proc.pid, signal.SIGKILL)
                    kills += 1
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.002)
        proc.wait(timeout=60)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    assert kills >= 1, "the ingest finished before it could be killed; make the input larger"
    partial = Store.open(killed, allow_incomplete=True)
    assert not partial.complete and partial.read_progress()["rows"] < total
    resumed = subprocess.run(ingest_command(survey, killed), capture_output=True, text=True, env=env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_store(whole, killed)
    assert not list(killed.rglob("*.partial")) and not (killed / "_progress.json").exists()


def _rows(progress: Path) -> int:
    import json

    return int(json.loads(progress.read_text())["rows"])
