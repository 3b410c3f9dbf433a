"""`starlabel simulate` → `starlabel ingest` for every built-in descriptor, as a user runs them.

The simulated archive files are read back by the real readers, providers and label source: the store holds
every simulated star once, with exactly the true labels and the requested S/N.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from starlabel.store import Store

BUILT_IN = ["gaia_rvs_dr3", "gaia_xp_apogee_dr17", "apogee_dr17", "gaia_eso_giraffe", "fourmost_lr"]
N_STARS = 24
SNR = 40.0


def starlabel(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARLABEL_")}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "starlabel", *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.parametrize("survey", BUILT_IN)
def test_simulate_then_ingest_returns_the_true_labels(tmp_path: Path, survey: str) -> None:
    out, store_path = tmp_path / "sim", tmp_path / "store.zarr"
    result = starlabel("simulate", survey, "--n", str(N_STARS), "--snr", f"{SNR:g}", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    derived = out / f"{survey}.yaml"
    assert derived.is_file() and "starlabel ingest" in result.stdout
    ingested = starlabel("ingest", str(derived), "--store", str(store_path), "--data", str(out), "--quiet")
    assert ingested.returncode == 0, ingested.stderr
    assert f"{N_STARS} spectra from" in ingested.stdout and f"{N_STARS} kept" in ingested.stdout

    truth = Table.read(out / "truth.fits")
    store = Store.open(store_path)
    ids = np.asarray(store.array("source_id")[:])
    truth_ids = np.asarray(truth["source_id"])
    if truth_ids.dtype.kind == "S":  # text ids (APOGEE_ID, CNAME, 4MOST names) come back from FITS as bytes
        truth_ids = np.char.decode(truth_ids, "ascii")
        ids = np.asarray([str(value) for value in ids.tolist()])
    assert sorted(ids.tolist()) == sorted(truth_ids.tolist())  # every star once: no loss, no duplicate
    order = {value: i for i, value in enumerate(truth_ids.tolist())}
    rows = np.array([order[value] for value in ids.tolist()])
    labels = store.meta["descriptor"]["labels"]["columns"]
    for name in labels:
        stored = np.asarray(store.array(f"labels/{name}")[:])
        expected = np.asarray(truth[name])[rows].astype(stored.dtype)
        np.testing.assert_array_equal(stored, expected, err_msg=f"{survey}: label {name}")
        assert np.asarray(store.array(f"labels/{name}_ok")[:]).all()
    # S/N per star as ingest measures it on the descriptor's grid, after resampling and normalisation
    snr = np.asarray(store.array("snr")[:])
    assert abs(np.median(snr) / SNR - 1) < 0.1, f"{survey}: median S/N {np.median(snr):.1f}, asked {SNR:g}"
