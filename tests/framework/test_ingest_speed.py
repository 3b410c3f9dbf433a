"""The fast ingest paths store exactly what the whole-file float64 path stores.

Readers with ``read_parts`` are prepared part by part, float32 fluxes without float64 copies, files read
ahead in a background thread, rows written several chunks at a time: the stores, reports and errors must
be those of the plain path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from toys import NpzPlugin, NpzReader, write_npz

from starlabel import hookimpl
from starlabel.containers import Spectra
from starlabel.descriptor import load_descriptor
from starlabel.errors import DataFileError
from starlabel.ingest import IngestError, _Pipeline, ingest
from starlabel.ingest_grid import measured_snr
from starlabel.plugins import Plugins, load_plugins
from starlabel.store import Store

GRID = 500.0 + 0.5 * np.arange(41)
DESCRIPTOR = """\
schema_version: 1
name: toy_speed
instrument: {reader: READER}
grid: {start: 500, stop: 520, step: 0.5}
mask: [{start: 519.2, stop: 520.0, why: edge}]
labels:
  source: table_labels
  columns: [teff]
  options: {id_column: source_id, columns: {teff: TEFF}, errors: {teff: TEFF_ERR}, units: {teff: K}}
ingest: {chunk_rows: 16}
data: {root: ., spectra: "spec_*.npz", labels: "labels.csv"}
"""
PART_ROWS = 7


class PartsReader(NpzReader):
    """toy_npz, also read in parts of PART_ROWS rows (the problem lines on the last), float32 flux."""

    name = "toy_parts"

    def read(self, path: Path) -> Spectra:
        whole = super().read(path)
        whole.flux = whole.flux.astype(np.float32)
        whole.problems = [f"{path}: a reader line"]
        return whole

    def read_parts(self, path: Path) -> Iterator[Spectra]:
        whole = self.read(path)
        if "fail_late" in path.name:  # every part but the last (some rows written already), then an error
            for start in range(0, len(whole) - PART_ROWS, PART_ROWS):
                yield _rows(whole, slice(start, start + PART_ROWS), [])
            raise DataFileError(str(path), "damaged near its end")
        for start in range(0, len(whole), PART_ROWS):
            stop = start + PART_ROWS
            yield _rows(whole, slice(start, stop), whole.problems if stop >= len(whole) else [])


class Float32Reader(PartsReader):
    """The same spectra without ``read_parts``: whole files, float32 flux."""

    name = "toy_f32"
    read_parts = None  # type: ignore[assignment]


def _rows(s: Spectra, rows: slice, problems: list[str]) -> Spectra:
    return Spectra(
        s.source_id[rows], s.wavelength, s.flux[rows], s.ivar[rows], s.mask[rows], s.unit, s.medium, problems=problems
    )


class SpeedPlugin:
    @hookimpl
    def register_instrument_readers(self) -> list[type]:
        return [PartsReader, Float32Reader]


@pytest.fixture
def plugins() -> Plugins:
    return load_plugins(
        builtins=("starlabel.defaults", "starlabel_tables.plugin"),
        entry_points=False,
        extra=[("toy", NpzPlugin()), ("speed", SpeedPlugin())],
        environ={},
    )


def survey(folder: Path, reader: str, sizes: tuple[int, ...] = (23, 5, 30), angstrom: bool = False) -> Path:
    """Spectra with bad pixels, a row with no good pixel and float32-exact flux; labels for even ids.

    ``angstrom``: on a finer grid in Angstrom, to be resampled.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    wave = np.linspace(4990.0, 5210.0, 300) if angstrom else GRID
    first = 1000
    for index, n in enumerate(sizes):
        ids = first + np.arange(n)
        first += n
        flux = (1.0 + rng.normal(0, 0.02, (n, len(wave)))).astype(np.float32).astype(np.float64)
        err = rng.uniform(0.005, 0.05, flux.shape)
        flux[rng.random(flux.shape) < 0.03] = np.nan
        err[rng.random(flux.shape) < 0.03] = 0.0
        if index == 0:
            err[10] = np.nan  # no good pixel at all (in the second part): reported with its row in the file
        extra = {"unit": np.array("Angstrom")} if angstrom else {}
        write_npz(folder / f"spec_{index}.npz", ids, wave, flux, err, **extra)
    lines = ["source_id,TEFF,TEFF_ERR"] + [f"{i},{4000 + i},{50}" for i in range(1000, first, 2)]
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    (folder / "survey.yaml").write_text(DESCRIPTOR.replace("READER", reader))
    return folder / "survey.yaml"


def stored(path: Path) -> dict[str, bytes]:
    store = Store.open(path)
    return {name: np.asarray(store.array(name)[:]).tobytes() for name in store.row_arrays()}


def run(folder: Path, plugins: Plugins, reader: str, **kw):  # type: ignore[no-untyped-def]
    descriptor = survey(folder, reader, **kw)
    return ingest(load_descriptor(descriptor, plugins), plugins, folder / "store.zarr")


def test_parts_and_float32_store_what_the_whole_float64_path_stores(
    tmp_path: Path, plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:  # the reference: the general whole-array float64 path
        patch.setattr(_Pipeline, "_on_grid", lambda self, spectra: False)
        plain = run(tmp_path / "plain", plugins, "toy_npz")
    for reader in ("toy_npz", "toy_parts", "toy_f32"):
        report = run(tmp_path / reader, plugins, reader)
        assert stored(tmp_path / reader / "store.zarr") == stored(tmp_path / "plain" / "store.zarr"), reader
        lines = [p.replace(f"/{reader}/", "/plain/") for p in report.problems if "a reader line" not in p]
        assert lines == plain.problems
        assert (report.rows, report.kept, report.labels_matched) == (plain.rows, plain.kept, plain.labels_matched)
    assert plain.rows == 57 and any("row 10 (source_id 1010): no good pixel" in p for p in plain.problems)
    parts = json.loads((tmp_path / "toy_parts" / "store.zarr" / "ingest_report.json").read_text())["problems"]
    assert parts[0].endswith("spec_0.npz: a reader line")  # the reader's lines first, then ingest's
    assert parts[1].endswith("row 10 (source_id 1010): no good pixel on the grid 500–520 nm; skipped")


def test_parts_off_the_grid_are_joined_and_resampled_whole(tmp_path: Path, plugins: Plugins) -> None:
    plain = run(tmp_path / "plain", plugins, "toy_npz", angstrom=True)
    report = run(tmp_path / "parts", plugins, "toy_parts", angstrom=True)
    assert stored(tmp_path / "parts" / "store.zarr") == stored(tmp_path / "plain" / "store.zarr")
    assert [p for p in report.problems if "a reader line" not in p] == [
        p.replace("/plain/", "/parts/") for p in plain.problems
    ]
    assert plain.rows == 57


def test_interrupted_parts_ingest_resumes_to_the_same_store(
    tmp_path: Path, plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    import starlabel.ingest as ingest_module

    run(tmp_path / "whole", plugins, "toy_parts")
    descriptor = survey(tmp_path / "resumed", "toy_parts")
    real_commit, calls = ingest_module._commit, {"n": 0}

    def dying_commit(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if killed between two writes
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "_commit", dying_commit)
    with pytest.raises(KeyboardInterrupt):
        ingest(load_descriptor(descriptor, plugins), plugins, tmp_path / "resumed" / "store.zarr")
    monkeypatch.setattr(ingest_module, "_commit", real_commit)
    partial = Store.open(tmp_path / "resumed" / "store.zarr", allow_incomplete=True)
    record = partial.read_progress()
    # 16 rows of the first file were written while it was read, but it was not finished: nothing committed
    assert partial.n_rows == 16 and record is not None
    assert (record["rows"], record["file_index"], record["row_in_file"]) == (0, 0, 0)
    ingest(load_descriptor(descriptor, plugins), plugins, tmp_path / "resumed" / "store.zarr")
    assert stored(tmp_path / "resumed" / "store.zarr") == stored(tmp_path / "whole" / "store.zarr")


def test_a_file_failing_after_some_parts_is_skipped_whole(tmp_path: Path, plugins: Plugins) -> None:
    descriptor = survey(tmp_path, "toy_parts", sizes=(23, 25, 12))
    (tmp_path / "spec_1.npz").rename(tmp_path / "spec_1_fail_late.npz")
    resolved = load_descriptor(descriptor, plugins)
    report = ingest(resolved, plugins, tmp_path / "store.zarr")
    assert [Path(f["file"]).name for f in report.files_failed] == ["spec_1_fail_late.npz"]
    assert "damaged near its end" in report.files_failed[0]["error"]
    ids = np.asarray(Store.open(tmp_path / "store.zarr").array("source_id")[:])
    assert ids.tolist() == [i for i in range(1000, 1023) if i != 1010] + list(range(1048, 1060))
    with pytest.raises(IngestError, match="spec_1_fail_late.npz: .*damaged near its end.*strict mode"):
        ingest(resolved, plugins, tmp_path / "strict.zarr", strict=True)


def test_nothing_left_when_the_only_file_fails_after_rows_were_written(tmp_path: Path, plugins: Plugins) -> None:
    descriptor = survey(tmp_path, "toy_parts", sizes=(40,))
    (tmp_path / "spec_0.npz").rename(tmp_path / "spec_0_fail_late.npz")
    with pytest.raises(IngestError, match="no spectrum could be ingested from 1 file.*damaged near its end"):
        ingest(load_descriptor(descriptor, plugins), plugins, tmp_path / "store.zarr")
    assert not (tmp_path / "store.zarr").exists()


def test_ivar_beyond_float32_names_the_largest_of_the_whole_file(tmp_path: Path, plugins: Plugins) -> None:
    """Refused once the file's parts are all seen, naming the file's largest value (not the first part's)."""
    descriptor = survey(tmp_path, "toy_parts", sizes=(20,))
    data = dict(np.load(tmp_path / "spec_0.npz"))
    data["err"][2, 5] = 1e-20  # ivar 1e40 in the first part
    data["err"][15, 7] = 1e-22  # ivar 1e44 in the third
    np.savez(tmp_path / "spec_0.npz", **data)
    report_error = None
    try:
        ingest(load_descriptor(descriptor, plugins), plugins, tmp_path / "store.zarr", strict=True)
    except IngestError as error:
        report_error = str(error)
    assert report_error is not None and "inverse variances up to 1e+44 exceed the store's float32 range" in report_error


def test_on_grid_block_path_matches_measured_snr_and_masks(plugins: Plugins, tmp_path: Path) -> None:
    """The blockwise path (float32 and float64 flux, rows beyond one block) against the plain definitions."""
    from starlabel.ingest_grid import BLOCK_ROWS

    pipeline = _Pipeline(load_descriptor(survey(tmp_path, "toy_npz"), plugins), plugins, tmp_path)
    rng = np.random.default_rng(1)
    n = BLOCK_ROWS + 37
    flux = rng.normal(1, 0.1, (n, len(GRID)))
    ivar = rng.uniform(-10, 1e4, flux.shape)
    ivar[rng.random(flux.shape) < 0.02] = np.inf
    flux[rng.random(flux.shape) < 0.02] = np.nan
    mask = rng.random(flux.shape) < 0.05
    for values in (flux, flux.astype(np.float32)):
        spectra = Spectra(np.arange(n), GRID, values, ivar, mask)
        batch, rows, problems, peaks = pipeline._prepare(spectra, tmp_path / "x.npz", 0)
        flux64 = values.astype(np.float64)
        bad = mask | ~np.isfinite(flux64) | ~((ivar > 0) & (ivar < np.inf)) | pipeline.region_mask
        expected_flux, expected_ivar = np.where(bad, 0.0, flux64), np.where(bad, 0.0, ivar)
        assert batch.flux.dtype == np.float32 and batch.ivar.dtype == np.float32 and problems == []
        assert batch.flux.tobytes() == expected_flux.astype(np.float32).tobytes()
        assert batch.ivar.tobytes() == expected_ivar.astype(np.float32).tobytes()
        np.testing.assert_array_equal(batch.mask, bad)
        assert batch.snr.tobytes() == measured_snr(expected_flux, expected_ivar, bad).tobytes()
        assert peaks == (float(expected_ivar.max()), float(np.abs(expected_flux).max()))
        np.testing.assert_array_equal(rows, np.arange(n))
