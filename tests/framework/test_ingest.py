from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from toys import NpzPlugin, ToyPlugin, write_npz

from starlabel.descriptor import load_descriptor
from starlabel.ingest import IngestError, ingest
from starlabel.plugins import Plugins, load_plugins
from starlabel.store import Store
from starlabel.testing import assert_same_store

GRID = 500.0 + 0.5 * np.arange(41)
DESCRIPTOR = """\
schema_version: 1
name: toy_ingest
instrument: {reader: toy_npz}
grid: {start: 500, stop: 520, step: 0.5}
mask: [{start: 519.2, stop: 520.0, why: edge}]
auxiliary:
  - provider: table_columns
    name: phot
    options: {id_column: source_id, columns: {g: G}}
labels:
  source: table_labels
  columns: [teff]
  options: {id_column: source_id, columns: {teff: TEFF}, errors: {teff: TEFF_ERR}, units: {teff: K}}
ingest: {chunk_rows: 16}
data: {root: ., spectra: "spec_*.npz", labels: "labels.csv", auxiliary: {phot: "labels.csv"}}
"""


@pytest.fixture
def plugins() -> Plugins:
    return load_plugins(
        builtins=("starlabel.defaults", "starlabel_tables.plugin"),
        entry_points=False,
        extra=[("toy", NpzPlugin()), ("toys", ToyPlugin())],
        environ={},
    )


def survey(tmp_path: Path, n_files: int = 3, per_file: int = 20, text: str = DESCRIPTOR) -> Path:
    """Write spectra (ids 1000+i), a label/aux table covering the even ids, and the descriptor."""
    rng = np.random.default_rng(42)
    ids_all = []
    for f in range(n_files):
        ids = 1000 + f * per_file + np.arange(per_file)
        flux = 1.0 - 0.5 * np.exp(-0.5 * ((GRID - 510.0) / 0.7) ** 2) + rng.normal(0, 0.01, (per_file, len(GRID)))
        write_npz(tmp_path / f"spec_{f}.npz", ids, GRID, flux, np.full(flux.shape, 0.01))
        ids_all.append(ids)
    ids = np.concatenate(ids_all) if ids_all else np.zeros(0, np.int64)
    even = ids[ids % 2 == 0]
    lines = ["source_id,G,TEFF,TEFF_ERR"] + [f"{i},{10 + (i % 7) * 0.5},{4000 + i},{50}" for i in even]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "survey.yaml").write_text(text)
    return tmp_path / "survey.yaml"


def run(tmp_path: Path, plugins: Plugins, descriptor: Path, store: str = "store.zarr", **kw):  # type: ignore[no-untyped-def]
    return ingest(load_descriptor(descriptor, plugins), plugins, tmp_path / store, **kw)


def arrays(path: Path) -> dict[str, np.ndarray]:
    store = Store.open(path)
    names = ["flux", "ivar", "mask", "source_id", "snr", "keep", "aux/phot", "aux/phot_missing"]
    names += ["labels/teff", "labels/teff_err", "labels/teff_ok"]
    return {n: np.asarray(store.array(n)[:]) for n in names}


def test_ingest_on_grid_joins_aux_and_labels(tmp_path: Path, plugins: Plugins) -> None:
    report = run(tmp_path, plugins, survey(tmp_path))
    assert (report.rows, report.kept, report.files, report.files_failed) == (60, 60, 3, [])
    assert report.aux_matched == {"phot": 30} and report.labels_matched == 30 == report.labels_complete
    data = arrays(tmp_path / "store.zarr")
    assert data["source_id"].tolist() == list(range(1000, 1060))
    source = np.load(tmp_path / "spec_1.npz")
    edge = GRID >= 519.2
    np.testing.assert_array_equal(data["flux"][20][~edge], source["flux"][0][~edge].astype(np.float32))
    assert data["mask"][:, edge].all() and (data["ivar"][:, edge] == 0).all() and not data["mask"][:, ~edge].any()
    np.testing.assert_allclose(data["ivar"][:, ~edge], 1e4, rtol=1e-6)
    even = data["source_id"] % 2 == 0
    assert (data["labels/teff_ok"] == even).all()
    np.testing.assert_array_equal(data["labels/teff"][even], 4000 + data["source_id"][even])
    np.testing.assert_array_equal(data["aux/phot"][even, 0], 10 + (data["source_id"][even] % 7) * 0.5)
    assert np.isnan(data["aux/phot"][~even]).all() and data["aux/phot_missing"][~even].all()
    store = Store.open(tmp_path / "store.zarr")
    assert store.meta["descriptor"]["name"] == "toy_ingest" and len(store.meta["descriptor_hash"]) == 64
    assert store.meta["grid"]["unit"] == "nm" and store.array("labels/teff").attrs["unit"] == "K"
    saved = json.loads((tmp_path / "store.zarr" / "ingest_report.json").read_text())
    assert saved["rows"] == 60 and saved["labels_complete"] == 30


def test_bad_values_are_masked_not_fatal(tmp_path: Path, plugins: Plugins) -> None:
    descriptor = survey(tmp_path, n_files=1)
    flux = np.ones((3, len(GRID)))
    err = np.full(flux.shape, 0.02)
    flux[0, 4], flux[0, 5] = np.nan, np.inf
    err[1, 6], err[1, 7] = 0.0, -1.0
    write_npz(tmp_path / "spec_9.npz", [1, 2, 3], GRID, flux, err)
    run(tmp_path, plugins, descriptor)
    data = arrays(tmp_path / "store.zarr")
    rows = {i: r for r, i in enumerate(data["source_id"])}
    assert data["mask"][rows[1], [4, 5]].all() and (data["ivar"][rows[1], [4, 5]] == 0).all()
    assert data["mask"][rows[2], [6, 7]].all() and (data["ivar"][rows[2], [6, 7]] == 0).all()
    assert np.isfinite(data["flux"]).all()
    assert data["mask"][rows[3]].sum() == (GRID >= 519.2).sum()


def test_bad_files_reported_and_skipped_or_strict(tmp_path: Path, plugins: Plugins) -> None:
    descriptor = survey(tmp_path, n_files=1)
    wave = GRID.copy()
    wave[10] = wave[9]
    write_npz(tmp_path / "spec_dup.npz", [5], wave, np.ones((1, 41)), np.full((1, 41), 0.1))
    write_npz(tmp_path / "spec_unit.npz", [6], GRID, np.ones((1, 41)), np.full((1, 41), 0.1), unit="furlong")
    write_npz(tmp_path / "spec_out.npz", [7, 8], np.linspace(900, 950, 41), np.ones((2, 41)), np.full((2, 41), 0.1))
    (tmp_path / "spec_junk.npz").write_bytes(b"not a zip")
    report = run(tmp_path, plugins, descriptor)
    failed = {Path(f["file"]).name: f["error"] for f in report.files_failed}
    assert set(failed) == {"spec_dup.npz", "spec_unit.npz", "spec_junk.npz"}
    assert "not strictly increasing" in failed["spec_dup.npz"]
    assert "furlong" in failed["spec_unit.npz"]
    assert report.rows == 20
    outside = [p for p in report.problems if "spec_out.npz" in p]
    assert len(outside) == 2 and "row 0 (source_id 7): no good pixel on the grid 500–520 nm; skipped" in outside[0]
    with pytest.raises(IngestError, match=r"spec_dup.npz: .*strict mode: stopping"):
        run(tmp_path, plugins, descriptor, store="strict.zarr", strict=True)


def test_ivar_beyond_float32_is_a_file_error_not_inf(tmp_path: Path, plugins: Plugins) -> None:
    """Physical fluxes of ~1e-17 with 1% errors have ivar ~1e38: the float32 store would hold inf."""
    descriptor = survey(tmp_path, n_files=1)
    flux = np.full((2, len(GRID)), 3e-18)
    write_npz(tmp_path / "spec_tiny.npz", [7, 8], GRID, flux, flux * 0.01)
    report = run(tmp_path, plugins, descriptor)
    failed = {Path(f["file"]).name: f["error"] for f in report.files_failed}
    assert list(failed) == ["spec_tiny.npz"] and report.rows == 20
    assert "inverse variances up to 1.11e+39 exceed the store's float32 range (3.4e+38)" in failed["spec_tiny.npz"]
    assert "have them normalised" in failed["spec_tiny.npz"]
    assert np.isfinite(arrays(tmp_path / "store.zarr")["ivar"]).all()


def test_duplicates_keep_highest_snr_or_error(tmp_path: Path, plugins: Plugins) -> None:
    descriptor = survey(tmp_path, n_files=1, per_file=4)
    flux = np.ones((1, 41))
    write_npz(tmp_path / "spec_a.npz", [1001], GRID, flux, np.full((1, 41), 0.001))  # S/N 1000 beats 100
    report = run(tmp_path, plugins, descriptor)
    data = arrays(tmp_path / "store.zarr")
    assert (report.rows, report.kept, report.duplicate_ids) == (5, 4, 1)
    dup = np.flatnonzero(data["source_id"] == 1001)
    assert data["keep"][dup].tolist() == [False, True] and data["snr"][dup[1]] == pytest.approx(1000, rel=1e-4)
    strict = survey(
        tmp_path, n_files=1, per_file=4, text=DESCRIPTOR.replace("chunk_rows: 16", "chunk_rows: 16, duplicates: error")
    )
    with pytest.raises(
        IngestError, match=r"1 source ids occur more than once \(1001\); the descriptor's ingest.duplicates is 'error'"
    ):
        run(tmp_path, plugins, strict, store="dup.zarr")


def test_resampling_other_unit_and_medium(tmp_path: Path, plugins: Plugins) -> None:
    from starlabel.wavelengths import air_to_vacuum

    descriptor = survey(tmp_path, n_files=0)
    wave_air_aa = np.linspace(5010.0, 5150.0, 700)  # Angstrom, air, finer than the grid, covering 501–515 nm
    flux = np.full((2, 700), 3.0)
    write_npz(
        tmp_path / "spec_aa.npz", [1, 2], wave_air_aa, flux, np.full(flux.shape, 0.3), unit="Angstrom", medium="air"
    )
    run(tmp_path, plugins, descriptor)
    data = arrays(tmp_path / "store.zarr")
    vac = air_to_vacuum(wave_air_aa / 10)
    covered = (GRID - 0.25 >= vac[0]) & (GRID + 0.25 <= vac[-1])
    assert covered.sum() >= 25
    np.testing.assert_allclose(data["flux"][:, covered], 3.0, rtol=1e-6)
    assert data["mask"][:, ~covered].all()


def test_rest_frame_from_reader_meta(tmp_path: Path, plugins: Plugins) -> None:
    text = DESCRIPTOR.replace("ingest:", "rest_frame: {source: meta, key: vrad}\ningest:")
    text = text.replace("step: 0.5}", "step: 0.02}").replace("start: 519.2", "start: 519.9")
    descriptor = survey(tmp_path, n_files=0, text=text)
    c = 299792.458
    fine = np.linspace(495, 525, 6001)
    rest = 510.0
    velocities = np.array([-150.0, 40.0, 230.0])
    observed = rest * np.sqrt((1 + velocities / c) / (1 - velocities / c))
    flux = 1 - 0.6 * np.exp(-0.5 * ((fine[None, :] - observed[:, None]) / 0.05) ** 2)
    write_npz(tmp_path / "spec_rv.npz", [1, 2, 3], fine, flux, np.full(flux.shape, 0.01), vrad=velocities)
    run(tmp_path, plugins, descriptor)
    data = arrays(tmp_path / "store.zarr")
    grid = 500 + 0.02 * np.arange(1001)
    for row in range(3):
        depth = 1 - data["flux"][row].astype(np.float64)
        core = np.abs(grid - rest) < 0.2
        centre = (depth[core] * grid[core]).sum() / depth[core].sum()
        assert abs(centre - rest) < 0.1 * 0.02, (row, centre)


def test_rest_frame_from_a_table_and_misrouted_file_hint(tmp_path: Path, plugins: Plugins) -> None:
    text = DESCRIPTOR.replace(
        "ingest:", "rest_frame: {source: table, table: rv.csv, key: VRAD, unit: m/s}\ningest:"
    ).replace("step: 0.5}", "step: 0.02}")
    descriptor = survey(tmp_path, n_files=0, text=text)
    c = 299792.458
    fine = np.linspace(495, 525, 6001)
    velocities = np.array([120.0, -80.0])  # km/s; the table gives m/s
    observed = 510.0 * np.sqrt((1 + velocities / c) / (1 - velocities / c))
    flux = 1 - 0.6 * np.exp(-0.5 * ((fine[None, :] - observed[:, None]) / 0.05) ** 2)
    write_npz(tmp_path / "spec_rv.npz", [11, 12], fine, flux, np.full(flux.shape, 0.01))
    (tmp_path / "rv.csv").write_text("source_id,VRAD\n12,-80000\n11,120000\n")
    report = run(tmp_path, plugins, descriptor)
    data = arrays(tmp_path / "store.zarr")
    grid = 500 + 0.02 * np.arange(1001)
    core = np.abs(grid - 510.0) < 0.2
    for row in range(2):
        depth = 1 - data["flux"][row].astype(np.float64)
        assert abs((depth[core] * grid[core]).sum() / depth[core].sum() - 510.0) < 0.1 * 0.02
    assert report.files_failed == []
    misrouted = tmp_path / "spec_x.npz"
    misrouted.write_text("x")
    (tmp_path / "spec_y.toy").write_text("x")
    report = run(
        tmp_path,
        plugins,
        descriptor,
        store="s2.zarr",
        files=[tmp_path / "spec_rv.npz", misrouted, tmp_path / "spec_y.toy"],
    )
    hints = {Path(f["file"]).name: f.get("hint") for f in report.files_failed}
    assert hints == {
        "spec_x.npz": None,
        "spec_y.toy": "the file looks like toy_reader, not toy_npz (the descriptor's instrument.reader)",
    }


def test_interrupted_ingest_resumes_to_the_same_store(
    tmp_path: Path, plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    descriptor = survey(tmp_path, n_files=4, per_file=13)
    run(tmp_path, plugins, descriptor, store="whole.zarr")
    import starlabel.ingest as ingest_module

    real_commit = ingest_module._commit
    calls = {"n": 0}

    def dying_commit(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if killed between two chunks
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "_commit", dying_commit)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, plugins, descriptor, store="resumed.zarr")
    monkeypatch.setattr(ingest_module, "_commit", real_commit)
    partial = Store.open(tmp_path / "resumed.zarr", allow_incomplete=True)
    assert not partial.complete and partial.read_progress()["rows"] == 32
    report = run(tmp_path, plugins, descriptor, store="resumed.zarr")
    assert report.rows == 52
    assert_same_store(tmp_path / "whole.zarr", tmp_path / "resumed.zarr")
    with pytest.raises(IngestError, match="already holds a complete store"):
        run(tmp_path, plugins, descriptor, store="resumed.zarr")


def test_snr_is_the_median_over_good_pixels() -> None:
    from starlabel.containers import Spectra
    from starlabel.ingest import _snr

    rng = np.random.default_rng(0)
    flux, ivar = rng.normal(1, 0.1, (50, 31)), rng.uniform(1, 100, (50, 31))
    mask = rng.random((50, 31)) < 0.3
    mask[3], mask[4], mask[5, :-1], mask[6, :-2] = True, False, True, True  # none, all, one and two good pixels
    got = _snr(Spectra(np.arange(50), np.arange(31.0), flux, ivar, mask), flux, ivar, mask)
    expected = [
        np.median(np.abs(flux[i][~mask[i]]) * np.sqrt(ivar[i][~mask[i]])) if (~mask[i]).any() else 0 for i in range(50)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[3] == 0


def test_explicit_grid_from_a_file(tmp_path: Path, plugins: Plugins) -> None:
    from starlabel.store_info import store_info
    from starlabel.wavelengths import GridError

    irregular = np.cumsum(np.r_[500.0, np.linspace(0.3, 0.7, 40)])  # 41 px, steps growing
    text = DESCRIPTOR.replace("grid: {start: 500, stop: 520, step: 0.5}", "grid: {spacing: explicit, file: raster.txt}")
    descriptor = survey(tmp_path, n_files=0, text=text)
    flux = np.ones((2, 41))
    write_npz(tmp_path / "spec_x.npz", [1, 2], irregular, flux, np.full(flux.shape, 0.1))
    with pytest.raises(
        GridError, match=r"explicit grid file 'raster.txt' not found in .*; put it beside the descriptor"
    ):
        run(tmp_path, plugins, descriptor)
    data_dir = tmp_path / "elsewhere"
    data_dir.mkdir()
    np.savetxt(data_dir / "raster.txt", np.c_[irregular, np.r_[np.diff(irregular), 0.7]], header="wavelength width")
    for f in ("labels.csv", "spec_x.npz"):
        (data_dir / f).write_bytes((tmp_path / f).read_bytes())
    run(tmp_path, plugins, descriptor, data_root=data_dir)
    data = arrays(tmp_path / "store.zarr")
    np.testing.assert_array_equal(data["flux"][:, irregular < 519.2], 1.0)  # identical grid: passed through
    info = store_info(tmp_path / "store.zarr")
    assert info["grid"]["spacing"] == "explicit" and info["grid"]["n_pixels"] == 41
    assert info["grid"]["start"] == 500.0 and info["grid"]["stop"] == pytest.approx(irregular[-1])


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (
            "{spacing: explicit, file: r.txt, step: 0.1}",
            "an explicit grid takes its pixels from 'file:' alone; remove step",
        ),
        ("{spacing: explicit}", "an explicit grid takes its pixels from 'file:' alone; add file: with the wavelengths"),
        ("{start: 500, stop: 520}", "a linear grid needs start, stop and step (missing: step)"),
        (
            "{start: 500, stop: 520, step: 0.5, file: r.txt}",
            "a linear grid needs start, stop and step; 'file:' is for spacing: explicit",
        ),
    ],
)
def test_grid_section_forms(tmp_path: Path, plugins: Plugins, grid: str, message: str) -> None:
    from starlabel.errors import DescriptorError

    text = DESCRIPTOR.replace("{start: 500, stop: 520, step: 0.5}", grid)
    path = survey(tmp_path, n_files=0, text=text)
    with pytest.raises(DescriptorError) as info:
        load_descriptor(path, plugins)
    assert str(info.value) == f"{path}:4: grid: {message}"
