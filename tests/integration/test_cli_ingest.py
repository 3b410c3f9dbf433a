"""`starlabel ingest` and `starlabel store info` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from starlabel.testing import load_script

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "tests" / "data" / "starlabel_gaia" / "make_xp_library.py"


def starlabel(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARLABEL_")}
    return subprocess.run(
        [sys.executable, "-m", "starlabel", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_ingest_then_store_info(tmp_path: Path) -> None:
    maker = load_script(GENERATOR)
    data = maker.write(tmp_path / "data", name="apogee_library_spectra_a.fits.gz")
    broken = tmp_path / "data" / "apogee_library_spectra_b.fits.gz"
    broken.write_bytes(data.read_bytes()[:5000])
    store = tmp_path / "store.zarr"
    result = starlabel(
        "ingest",
        "gaia_xp_apogee_dr17",
        str(data),
        str(broken),
        "--store",
        str(store),
        "--data",
        str(data),
        "--report",
        str(tmp_path / "report.json"),
    )
    assert result.returncode == 0, result.stderr
    assert f"{store}: 40 spectra from 1/2 file(s); 40 kept" in result.stdout
    assert f"failed: {broken}: DataFileError" in result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["files_failed"][0]["file"] == str(broken) and len(report["problems"]) == 2

    strict = starlabel(
        "ingest",
        "gaia_xp_apogee_dr17",
        str(broken),
        "--store",
        str(tmp_path / "s2.zarr"),
        "--data",
        str(data),
        "--strict",
    )
    assert strict.returncode == 2 and "strict mode: stopping" in strict.stderr

    info = starlabel("store", "info", str(store), "--json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["complete"] and summary["rows"] == 40 and summary["survey"] == "gaia_xp_apogee_dr17"
    assert summary["grid"] == {
        "n_pixels": 343,
        "start": 336.0,
        "stop": 1020.0,
        "unit": "nm",
        "medium": "vacuum",
        "spacing": "linear",
    }
    assert set(summary["labels"]) == {"teff", "logg", "fe_h", "alpha_m"}
    assert summary["aux"]["gaia_photometry"]["g"] == 1.0
    text = starlabel("store", "info", str(store))
    assert "store      " in text.stdout and "(complete)" in text.stdout and "343 px, 336–1020 nm" in text.stdout
    missing = starlabel("store", "info", str(tmp_path / "nope.zarr"))
    assert missing.returncode == 2 and "no store here" in missing.stderr
