"""The apogee_dr17 descriptor ingests generated apStar files and joins the allStar labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

DESCRIPTOR = Path(__file__).resolve().parents[3] / "plugins" / "starlabel_apogee" / "surveys" / "apogee_dr17.yaml"


def test_descriptor_ingest(apogee_plugins, apogee_files: dict[str, Path], tmp_path: Path) -> None:
    from starlabel.descriptor import load_descriptor
    from starlabel.ingest import ingest
    from starlabel.store import Store

    root = tmp_path / "data"
    root.mkdir()
    for key, path in apogee_files.items():
        if key.startswith("apstar:") or key == "allstar":
            shutil.copy(path, root / path.name)
    resolved = load_descriptor(DESCRIPTOR, apogee_plugins)
    report = ingest(resolved, apogee_plugins, tmp_path / "store", data_root=root)
    store = Store.open(tmp_path / "store")
    ids = [str(v) for v in store.array("source_id")[:]]
    assert sorted(ids) == ["2M00000001+0000001", "2M00000002+0000002", "2M00000003+0000003"]
    assert report.rows == 3 and not report.files_failed and report.labels_matched == 2
    flux = np.asarray(store.array("flux")[:])
    assert flux.shape == (3, 8575) and np.isfinite(flux).all()
    mask = np.asarray(store.array("mask")[:])
    wave = 10 ** (4.179 + 6e-6 * np.arange(8575))
    gap = (wave > 15810) & (wave < 15857)
    assert mask[:, gap].all() and not mask.all(axis=1).any()
    teff = np.asarray(store.array("labels/teff")[:])
    ok = np.asarray(store.array("labels/teff_ok")[:])
    by_id = dict(zip(ids, zip(teff.tolist(), ok.tolist(), strict=True), strict=True))
    assert by_id["2M00000001+0000001"] == (4800.0, True)
    assert by_id["2M00000002+0000002"] == (5600.0, True)
    assert by_id["2M00000003+0000003"][1] is False and np.isnan(by_id["2M00000003+0000003"][0])  # STAR_BAD
