"""fourmost_lr_l1 (stub): visible as a stub, reads generated L1 files, wins over eso_sdp_1d, and the
fourmost_lr descriptor ingests files written on the real 4GP LRS raster."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from starlabel.errors import DataFileError

DESCRIPTOR = Path(__file__).resolve().parents[3] / "plugins" / "starlabel_fourmost" / "surveys" / "fourmost_lr.yaml"
RASTER = "fourmost_4gp_rasters/4most_raster_lrs.txt"
RASTER_PIXELS = 16_385


def _reader(plugins: Any, **options: Any) -> Any:
    return plugins.readers.get("fourmost_lr_l1")(options)


def test_status_stub_is_visible(fourmost_plugins) -> None:
    info = fourmost_plugins.infos["starlabel_fourmost"]
    assert info.builtin
    assert info.components["reader"] == [
        {"name": "fourmost_lr_l1", "status": "stub", "class": "starlabel_fourmost.l1.FourmostLrL1"}
    ]
    cls = fourmost_plugins.readers.get("fourmost_lr_l1")
    assert cls.status == "stub" and cls.priority > fourmost_plugins.readers.get("eso_sdp_1d").priority
    assert any(path == DESCRIPTOR.resolve() for path, _ in fourmost_plugins.survey_descriptors())


@pytest.mark.parametrize("key", ["lrs:A", "lrs:B", "lrs:C"])
def test_round_trip(fourmost_plugins, fourmost_files: dict[str, Path], fourmost_maker: ModuleType, key: str) -> None:
    spectra = _reader(fourmost_plugins).read(fourmost_files[key])
    t = fourmost_maker.truth()[key]
    assert spectra.source_id.tolist() == [t["id"]]
    assert spectra.unit == "Angstrom" and spectra.medium == "vacuum"
    np.testing.assert_array_equal(spectra.wavelength, t["wave"])
    np.testing.assert_array_equal(spectra.mask[0], t["mask"])
    good = ~t["mask"]
    np.testing.assert_array_equal(spectra.flux[0][good], t["flux"][good])
    np.testing.assert_allclose(spectra.ivar[0][good], 1 / t["sigma"][good] ** 2, rtol=1e-12)
    assert (spectra.ivar[0][t["mask"]] == 0).all()
    assert spectra.meta["spec_res"].tolist() == [6500.0]


def test_masks(fourmost_plugins, fourmost_files: dict[str, Path]) -> None:
    assert np.flatnonzero(_reader(fourmost_plugins).read(fourmost_files["lrs:A"]).mask[0]).tolist() == [10, 20]
    assert np.flatnonzero(_reader(fourmost_plugins).read(fourmost_files["lrs:C"]).mask[0]).tolist() == [
        30,
        31,
        32,
        33,
        34,
    ]


def test_hrs_and_other_instruments_refused(fourmost_plugins, fourmost_files, gaiaeso_generated) -> None:
    with pytest.raises(DataFileError, match="4MOST-HRS"):
        _reader(fourmost_plugins).read(fourmost_files["hrs"])
    with pytest.raises(DataFileError, match="GIRAFFE"):
        _reader(fourmost_plugins).read(gaiaeso_generated["hr15n:A"])
    forced = _reader(fourmost_plugins, check_instrument=False, medium="air").read(fourmost_files["hrs"])
    assert forced.medium == "air" and forced.wavelength[0] == pytest.approx(3926.0)


def test_choose_reader(fourmost_plugins, fourmost_files, gaiaeso_generated) -> None:
    from starlabel.identify import choose_reader, matching_readers

    for key in ("lrs:A", "lrs:B", "lrs:C"):
        claims = [cls.name for cls in matching_readers(fourmost_files[key], fourmost_plugins.readers)]
        assert claims == ["fourmost_lr_l1", "eso_sdp_1d"], (key, claims)
        assert choose_reader(fourmost_files[key], fourmost_plugins.readers).name == "fourmost_lr_l1"
    assert choose_reader(fourmost_files["hrs"], fourmost_plugins.readers).name == "eso_sdp_1d"
    for key, path in gaiaeso_generated.items():
        if key != "catalogue":
            assert choose_reader(path, fourmost_plugins.readers).name == "eso_sdp_1d", key


def test_identify_never_raises(fourmost_plugins, fourmost_files, tmp_path: Path, junk_files: list[Path]) -> None:
    reader = fourmost_plugins.readers.get("fourmost_lr_l1")
    data = fourmost_files["lrs:A"].read_bytes()
    cut = []
    for n in (100, 2880, 2880 + 1000):  # inside the headers
        cut.append(tmp_path / f"cut{n}.fits")
        cut[-1].write_bytes(data[:n])
    for path in [*junk_files, *cut, fourmost_files["labels"]]:
        assert reader.identify(path) is False, path
    truncated_data = tmp_path / "cut_data.fits"
    truncated_data.write_bytes(data[: 2880 * 2 + 500])  # headers whole: claimed (cheap), but read refuses
    with pytest.raises(DataFileError, match="cannot read as FITS"):
        _reader(fourmost_plugins).read(truncated_data)


def test_descriptor_validates(fourmost_plugins) -> None:
    from starlabel.descriptor import load_descriptor

    resolved = load_descriptor(DESCRIPTOR, fourmost_plugins)
    model = resolved.model
    assert resolved.name == "fourmost_lr" and model.instrument.reader == "fourmost_lr_l1"
    assert (model.grid.spacing, model.grid.file, model.grid.unit, model.grid.medium) == (
        "explicit",
        "4most_raster_lrs.txt",
        "Angstrom",
        "vacuum",
    )
    assert [arm.name for arm in model.instrument.arms] == ["blue", "green", "red"]
    assert not (DESCRIPTOR.parent / "4most_raster_lrs.txt").exists()  # the raster is not shipped


@pytest.mark.realdata
def test_ingest_on_real_raster(fourmost_plugins, fourmost_maker: ModuleType, tmp_path: Path) -> None:
    from starlabel.descriptor import load_descriptor
    from starlabel.ingest import ingest
    from starlabel.store import Store
    from starlabel.testing import real_data

    raster_file = real_data(RASTER)
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(raster_file, root / "4most_raster_lrs.txt")  # the data folder, at test time only
    raster = np.loadtxt(raster_file, comments="#", ndmin=2)[:, 0]
    assert raster.size == RASTER_PIXELS
    files = fourmost_maker.write(root, raster)
    resolved = load_descriptor(DESCRIPTOR, fourmost_plugins)
    report = ingest(resolved, fourmost_plugins, tmp_path / "store", data_root=root)
    assert report.rows == 3 and report.labels_matched == 3
    assert len(report.files_failed) == 1 and "4MOST-HRS" in str(report.files_failed)
    store = Store.open(tmp_path / "store")
    ids = sorted(str(v) for v in store.array("source_id")[:])
    assert ids == sorted(s["name"] for s in fourmost_maker.STARS.values())
    flux = np.asarray(store.array("flux")[:])
    mask = np.asarray(store.array("mask")[:])
    assert flux.shape == (3, RASTER_PIXELS) and np.asarray(store.array("mask")).shape == (3, RASTER_PIXELS)
    assert (mask.mean(axis=1) < 0.05).all()
    good = ~mask
    assert np.isfinite(flux[good]).all() and abs(np.median(flux[good]) - 1.0) < 0.05  # continuum-normalised
    teff = dict(
        zip(
            [str(v) for v in store.array("source_id")[:]],
            np.asarray(store.array("labels/teff")[:]).tolist(),
            strict=True,
        )
    )
    assert teff[fourmost_maker.STARS["A"]["name"]] == 4750.0
    assert files["lrs:A"].parent == root
