"""The gaia_eso_giraffe descriptor ingests generated HR15N files (air → vacuum, rest frame) and joins labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

DESCRIPTOR = Path(__file__).resolve().parents[3] / "plugins" / "starlabel_gaiaeso" / "surveys" / "gaia_eso_giraffe.yaml"


def test_descriptor_ingest(gaiaeso_plugins, gaiaeso_files: dict[str, Path], tmp_path: Path) -> None:
    from starlabel.descriptor import load_descriptor
    from starlabel.ingest import ingest
    from starlabel.store import Store
    from starlabel.wavelengths import air_to_vacuum

    root = tmp_path / "data"
    (root / "spectra").mkdir(parents=True)
    for key, path in gaiaeso_files.items():
        if key.startswith("hr15n:"):
            shutil.copy(path, root / "spectra" / path.name)
    shutil.copy(gaiaeso_files["hr10"], root / "spectra" / "hr10.fits")  # another setup: refused, reported
    shutil.copy(gaiaeso_files["catalogue"], root / gaiaeso_files["catalogue"].name)
    resolved = load_descriptor(DESCRIPTOR, gaiaeso_plugins)
    report = ingest(resolved, gaiaeso_plugins, tmp_path / "store", data_root=root)
    store = Store.open(tmp_path / "store")
    ids = [str(v) for v in store.array("source_id")[:]]
    assert sorted(ids) == ["14512312-4025107", "14512398-4026011", "14513055-4024459", "14513301-4027300"]
    assert report.rows == 4 and report.labels_matched == 3
    assert len(report.files_failed) == 1 and "setup HR10" in str(report.files_failed)
    flux = np.asarray(store.array("flux")[:])
    mask = np.asarray(store.array("mask")[:])
    assert flux.shape == (4, 6341) and np.isfinite(flux).all() and (mask.mean(axis=1) < 0.05).all()
    teff = np.asarray(store.array("labels/teff")[:])
    alpha_ok = np.asarray(store.array("labels/alpha_fe_ok")[:])
    by_id = {i: (t, a) for i, t, a in zip(ids, teff.tolist(), alpha_ok.tolist(), strict=True)}
    assert by_id["14512312-4025107"] == (4750.0, True)
    assert by_id["14512398-4026011"] == (5820.0, False)  # no [alpha/Fe]
    assert np.isnan(by_id["14513301-4027300"][0])  # TECH flag: no labels
    # the Li line lands at its rest vacuum wavelength: air → vacuum and the VRAD shift were applied
    wave = 647.25 + 0.005 * np.arange(6341)
    li_vacuum = float(air_to_vacuum(np.array([670.78]))[0])
    near = np.abs(wave - li_vacuum) < 0.3
    for row in range(4):
        lowest = wave[near][np.argmin(np.where(mask[row, near], np.inf, flux[row, near]))]
        assert abs(lowest - li_vacuum) < 0.012, (ids[row], lowest, li_vacuum)
