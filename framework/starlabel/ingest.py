"""``starlabel ingest``: survey files → spectra on the descriptor's grid → a zarr store.

Per file: read with the descriptor's reader, bring wavelengths to the grid's unit and medium, shift to
the rest frame (when the descriptor says so), resample onto the grid, apply the descriptor's mask
regions, normalise, and join auxiliary inputs and reference labels by source id. Rows are buffered and
written one whole chunk at a time; after each chunk an atomic progress record says which input row
comes next, so a killed ingest resumes where it stopped and ends with the same store. A file that
fails is reported and skipped (``strict=True`` stops instead).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from starlabel.containers import AuxTable, LabelTable, Spectra
from starlabel.errors import DataFileError, StarlabelError
from starlabel.identify import matching_readers
from starlabel.join import IdIndex, keep_best
from starlabel.storage import storage_errors
from starlabel.store import RESUME as STORE_RESUME
from starlabel.store import Store, StoreBatch, StoreError, StoreLayout

if TYPE_CHECKING:
    from starlabel.descriptor import ResolvedDescriptor
    from starlabel.grid import WavelengthGrid
    from starlabel.plugins import Plugins

REPORT_FILE = "ingest_report.json"


class IngestError(StarlabelError):
    """Ingest cannot go on (strict mode, inconsistent resume, duplicate ids under the error policy)."""

    exit_code = 2


@dataclass
class IngestReport:
    """What an ingest did; also written as ``ingest_report.json`` in the store folder."""

    store: str
    files: int
    files_failed: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rows: int = 0
    kept: int = 0
    duplicate_ids: int = 0
    aux_matched: dict[str, int] = field(default_factory=dict)
    labels_matched: int = 0
    labels_complete: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


@dataclass
class _Piece:
    """Prepared rows of one file, with where each came from (for the progress record)."""

    batch: StoreBatch
    file_index: int
    rows_in_file: np.ndarray


class _Pipeline:
    """Everything fixed for one ingest: grid, components, joined tables."""

    def __init__(self, resolved: ResolvedDescriptor, plugins: Plugins, root: Path | None) -> None:
        from starlabel.datafiles import expand, expand_one
        from starlabel.grid import WavelengthGrid

        model = resolved.model
        self.resolved = resolved
        search = [resolved.path.parent] if resolved.path is not None else []
        if root is not None:
            search.append(root if root.is_dir() else root.parent)
        self.grid: WavelengthGrid = WavelengthGrid.from_section(model.grid, search)
        wave = self.grid.wavelength
        self.region_mask = np.zeros(len(wave), dtype=bool)
        for region in model.mask:
            self.region_mask |= (wave >= region.start) & (wave <= region.stop)
        self.readers = plugins.readers
        self.reader = plugins.readers.get(model.instrument.reader)(resolved.options["instrument"])
        self.normaliser = plugins.normalisers.get(model.normalise.method)(resolved.options["normalise"])
        self.arms = [(arm.start, arm.stop) for arm in model.instrument.arms]
        self.mode = model.ingest.resample
        self.aux: dict[str, AuxTable] = {}
        for index, entry in enumerate(model.auxiliary):
            provider = plugins.auxiliary.get(entry.provider)(resolved.options[f"auxiliary[{index}]"])
            pattern = model.data.auxiliary.get(entry.key)
            files = expand(root, [pattern] if pattern else model.data.spectra, "auxiliary") if root else []
            self.aux[entry.key] = provider.load(files) if files else _empty_aux(provider.columns())
        self.aux_index = {key: IdIndex(table.source_id) for key, table in self.aux.items()}
        self.labels: LabelTable | None = None
        self.label_names: list[str] = []
        if model.labels is not None:
            self.label_names = list(model.labels.columns)
            if root is not None and model.data.labels:
                source = plugins.label_sources.get(model.labels.source)(resolved.options["labels"])
                self.labels = source.load(
                    expand_one(root, model.data.labels, "label"), self.label_names, resolved.options["labels.cuts"]
                )
        self.label_index = IdIndex(self.labels.source_id) if self.labels is not None else None
        self.velocities: tuple[IdIndex, np.ndarray] | None = None
        rest = model.rest_frame
        if rest is not None and rest.source == "table" and root is not None:
            from starlabel.tables import float_column, id_column, read_table

            path = expand_one(root, rest.table or "", "rest-frame velocity")
            table = read_table(path)
            self.velocities = (
                IdIndex(id_column(table, rest.id_column, path)[0]),
                float_column(table, rest.key, path)[0],
            )

    def layout(self, id_kind: str) -> StoreLayout:
        units = self.labels.units if self.labels is not None else {}
        return StoreLayout(
            n_pixels=len(self.grid.wavelength),
            id_kind=id_kind,
            aux={k: list(t.columns) for k, t in self.aux.items()},
            labels={name: units.get(name, "") for name in self.label_names},
            chunk_rows=self.resolved.model.ingest.chunk_rows,
        )

    def prepare(self, spectra: Spectra, path: Path) -> tuple[StoreBatch, np.ndarray, list[str]]:
        """Rows of one file on the grid, the reader rows they came from, and the problems found."""
        from starlabel.resample import resample
        from starlabel.wavelengths import convert_wavelength, doppler_shift_to_rest

        grid = self.grid
        wave = convert_wavelength(spectra.wavelength, spectra.unit, spectra.medium, grid.unit, grid.medium)
        velocity = self._velocity(spectra, path)
        if velocity is not None:
            wave = doppler_shift_to_rest(wave, velocity)
        if (
            wave.ndim == 1
            and wave.shape == grid.wavelength.shape
            and np.allclose(wave, grid.wavelength, rtol=1e-12, atol=0)
        ):
            # no copies of the reader's arrays: np.where below makes the new ones
            flux, ivar = spectra.flux.astype(np.float64, copy=False), spectra.ivar.astype(np.float64, copy=False)
            bad = spectra.mask | ~np.isfinite(flux) | ~((ivar > 0) & (ivar < np.inf))  # NaN, ±inf, ≤ 0
            flux = np.where(bad, 0.0, flux)
            mask = bad | self.region_mask
            ivar = np.where(mask, 0.0, ivar)  # zero where bad or in a mask region, as the two steps did
        else:
            out = resample(wave, spectra.flux, spectra.ivar, spectra.mask, grid, mode=self.mode)
            mask = out.mask | self.region_mask
            flux, ivar = out.flux, np.where(mask, 0.0, out.ivar)
        normalised = self.normaliser.normalise(grid.wavelength, flux, ivar, mask, self.arms)
        flux, ivar, mask = normalised.flux, normalised.ivar, normalised.mask
        ivar = np.where(mask, 0.0, ivar)
        flux = np.where(mask, 0.0, flux)
        _check_float32_range(flux, ivar, path)
        good_rows = ~mask.all(axis=1)
        problems = [
            f"{path}: row {row} (source_id {spectra.source_id[row]}): no good pixel on the grid "
            f"{grid.wavelength[0]:g}–{grid.wavelength[-1]:g} {grid.unit}; skipped"
            for row in np.flatnonzero(~good_rows)
        ]
        rows = np.flatnonzero(good_rows)
        snr = _snr(spectra, flux, ivar, mask)
        ids = spectra.source_id[rows]
        batch = StoreBatch(ids, flux[rows], ivar[rows], mask[rows], snr[rows])
        for name, table in self.aux.items():
            index = self.aux_index[name].lookup(ids)
            found = index >= 0
            values = np.full((len(ids), len(table.columns)), np.nan, dtype=np.float32)
            missing = np.ones(values.shape, dtype=bool)
            values[found] = table.values[index[found]]
            missing[found] = table.missing[index[found]]
            batch.aux[name] = (values, missing)
        label_index = self.label_index.lookup(ids) if self.label_index is not None else None
        for j, name in enumerate(self.label_names):
            values = np.full(len(ids), np.nan, dtype=np.float32)
            errors = np.full(len(ids), np.nan, dtype=np.float32)
            ok = np.zeros(len(ids), dtype=bool)
            if self.labels is not None and label_index is not None:
                index = label_index
                found = index >= 0
                values[found] = self.labels.values[index[found], j]
                errors[found] = self.labels.errors[index[found], j]
                ok[found] = self.labels.ok[index[found], j]
            batch.labels[name] = (values, errors, ok)
        return batch, rows, problems

    def _velocity(self, spectra: Spectra, path: Path) -> np.ndarray | None:
        rest = self.resolved.model.rest_frame
        if rest is None:
            return None
        import astropy.units as u

        if rest.source == "meta":
            if rest.key not in spectra.meta:
                raise IngestError(
                    f"{path}: the reader gives no per-spectrum {rest.key!r} for rest_frame.key; it gives: "
                    f"{', '.join(sorted(spectra.meta)) or '(nothing)'}"
                )
            velocity = np.asarray(spectra.meta[rest.key], dtype=np.float64)
        else:
            assert self.velocities is not None
            index = self.velocities[0].lookup(spectra.source_id)
            velocity = np.where(index >= 0, self.velocities[1][np.maximum(index, 0)], np.nan)
        return (velocity * u.Unit(rest.unit)).to_value(u.km / u.s)


def _check_float32_range(flux: np.ndarray, ivar: np.ndarray, path: Path) -> None:
    """Refuse values the store's float32 arrays cannot hold (ivar of tiny physical fluxes overflows to inf)."""
    limit = float(np.finfo(np.float32).max)
    for name, values in (("inverse variances", ivar), ("fluxes", flux)):
        largest = max(float(np.max(values)), -float(np.min(values))) if values.size else 0.0  # no |values| copy
        if largest > limit:
            raise DataFileError(
                str(path),
                f"{name} up to {largest:.3g} exceed the store's float32 range ({limit:.3g}): the fluxes are in "
                "units that make them too small or too large; have them normalised (the descriptor's normalise "
                "section, or a reader option that scales each spectrum)",
            )


def _empty_aux(columns: list[str]) -> AuxTable:
    k = len(columns)
    return AuxTable(np.zeros(0, np.int64), list(columns), np.zeros((0, k)), np.zeros((0, k), bool))


def _snr(spectra: Spectra, flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The reader's per-spectrum S/N where it gives one, else :func:`measured_snr`."""
    if "snr" in spectra.meta:
        return np.asarray(spectra.meta["snr"], dtype=np.float64)
    return measured_snr(flux, ivar, mask)


def measured_snr(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-spectrum S/N as the store records it: the median of |flux|·sqrt(ivar) over unmasked pixels (0 if none).

    ``mask`` must already mark every bad pixel (as it does on the grid, after ingest's checks). Vectorised:
    bad pixels sort to the end as +inf and each row's median is read at its own good count (``np.nanmedian``
    loops over rows in Python).
    """
    if flux.size == 0:
        return np.zeros(len(flux))
    ratio = np.where(mask, np.inf, np.abs(flux) * np.sqrt(ivar)).astype(np.float32)
    ratio.sort(axis=1)
    good = (~mask).sum(axis=1)
    rows = np.arange(len(flux))
    low = ratio[rows, np.maximum(good - 1, 0) // 2].astype(np.float64)
    high = ratio[rows, np.maximum(good, 1) // 2 - (good == 0)].astype(np.float64)
    return np.where(good > 0, 0.5 * (low + high), 0.0)


def ingest(
    resolved: ResolvedDescriptor,
    plugins: Plugins,
    store_path: str | Path,
    files: Sequence[str | Path] | None = None,
    *,
    data_root: str | Path | None = None,
    strict: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
) -> IngestReport:
    """Ingest spectra into the store at ``store_path``, resuming an interrupted run of the same ingest.

    Parameters
    ----------
    resolved : ResolvedDescriptor
        The survey descriptor.
    plugins : Plugins
        Installed components.
    store_path : path
        Store folder; created if absent, resumed if an unfinished ingest of the same inputs left it.
    files : sequence of path, optional
        Spectrum files; default: the descriptor's ``data.spectra`` patterns under the data root.
    data_root : path, optional
        Folder the descriptor's ``data:`` patterns are relative to (default: ``data.root`` or plugins).
    strict : bool
        Stop at the first file that fails instead of reporting and skipping it.
    progress : callable, optional
        Called as ``progress(files_done, files_total, rows_written)`` after each file.

    Returns
    -------
    IngestReport

    Raises
    ------
    IngestError
        Strict mode and a file failed; a store of other inputs is in the way; duplicate ids under the
        ``error`` policy.
    starlabel.store.StoreError
        The store cannot be written (read-only file system, no permission, disk full): the message says
        what to do; what was written stays an incomplete store that the same command resumes.
    """
    from starlabel.datafiles import data_root as find_root
    from starlabel.datafiles import expand

    model = resolved.model
    root: Path | None
    if files:
        paths = sorted({Path(f) for f in files})
        needs_root = (
            any(e.key in model.data.auxiliary for e in model.auxiliary)
            or bool(model.labels is not None and model.data.labels)
            or bool(model.rest_frame is not None and model.rest_frame.source == "table")
        )
        root = find_root(resolved, plugins, data_root) if (needs_root or data_root) else None
    else:
        root = find_root(resolved, plugins, data_root)
        paths = expand(root, model.data.spectra, "spectrum")
    pipeline = _Pipeline(resolved, plugins, root)
    store_path = Path(store_path)
    record = _start_record(resolved, paths)
    store = _open_or_resume(store_path, resolved, record)
    if store is not None and store.complete:
        raise IngestError(f"{store_path}: already holds a complete store; remove it or choose another --store path")
    if store is not None:
        record = store.read_progress() or record
        store.truncate(record["rows"])
    pending: list[_Piece] = []
    chunk = model.ingest.chunk_rows
    writer = _Writer(store) if store is not None else None
    try:
        for file_index in range(record["file_index"], len(paths)):
            path = paths[file_index]
            skip = record["row_in_file"] if file_index == record["file_index"] else 0
            try:
                spectra = pipeline.reader.read(path)
                batch, rows, problems = pipeline.prepare(spectra, path)
            except StarlabelError as error:
                if strict:
                    raise IngestError(
                        f"{path}: {error} (strict mode: stopping; without --strict it is skipped)"
                    ) from error
                _record_failure(record, path, error, skip, pipeline)
                if progress:
                    progress(file_index + 1, len(paths), record["rows"])
                continue
            except Exception as error:  # a reader bug must not lose the other files' work
                if strict:
                    raise
                _record_failure(record, path, error, skip, pipeline)
                continue
            if file_index not in record["reported"]:  # a resumed file's problems are on record already
                record["problems"].extend(spectra.problems + problems)
                record["reported"].append(file_index)
            take = rows >= skip
            if take.any():
                pending.append(_Piece(batch.take(take), file_index, rows[take]))
            if store is None and pending:
                store = _create(store_path, resolved, plugins, pipeline, batch.source_id)
                store.write_progress(_start_record(resolved, paths))  # resumable from its first moment
                writer = _Writer(store)
            while writer is not None and sum(len(p.batch) for p in pending) >= chunk:
                pending = _commit(writer, pending, chunk, record)
            if progress:
                progress(file_index + 1, len(paths), record["rows"] + sum(len(p.batch) for p in pending))
        if store is None:
            raise IngestError(
                f"no spectrum could be ingested from {len(paths)} file(s); failures: "
                + "; ".join(f"{f['file']}: {f['error']}" for f in record["failures"][:5])
            )
        if pending and writer is not None:
            _commit(writer, pending, sum(len(p.batch) for p in pending), record)
    finally:
        if writer is not None:
            writer.close()
    return _finish(store, record, resolved, len(paths))


def _start_record(resolved: ResolvedDescriptor, paths: Sequence[Path]) -> dict[str, Any]:
    return {
        "descriptor_hash": resolved.hash(),
        "files": [str(p) for p in paths],
        "file_index": 0,
        "row_in_file": 0,
        "rows": 0,
        "failures": [],
        "problems": [],
        "reported": [],
    }


def _open_or_resume(path: Path, resolved: ResolvedDescriptor, record: dict[str, Any]) -> Store | None:
    if not path.exists():
        return None
    store = Store.open(path, "r+", allow_incomplete=True)
    if store.complete:
        return store
    saved = store.read_progress()
    if saved is None:
        raise IngestError(f"{path}: an unfinished store without a progress record; remove it and ingest again")
    if saved["descriptor_hash"] != record["descriptor_hash"] or saved["files"] != record["files"]:
        raise IngestError(
            f"{path}: an unfinished ingest of other inputs (another descriptor or file list) is there; "
            f"re-run that ingest to finish it, or remove the folder"
        )
    with storage_errors(path, "remove the temporary files of an interrupted write", StoreError):
        for partial in path.rglob("*.partial"):  # temporary files of a write that was killed
            partial.unlink()
    return store


def _create(path: Path, resolved: ResolvedDescriptor, plugins: Plugins, pipeline: _Pipeline, ids: np.ndarray) -> Store:
    return Store.create(
        path,
        pipeline.layout("str" if ids.dtype.kind in "UO" else "int"),
        descriptor=resolved.resolved(),
        descriptor_hash=resolved.hash(),
        grid=pipeline.grid.as_dict(),
        plugins=plugins.versions(),
    )


class _Writer:
    """Writes committed chunks in one background thread, in order, one at a time.

    Reading and preparing the next file overlaps with compressing and writing the previous chunk. A
    chunk's progress record is replaced only after its rows are written, so an interruption at any
    moment leaves a store that resumes exactly.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="starlabel-ingest-writer")
        self.future: Future[None] | None = None

    def submit(self, batch: StoreBatch, record: dict[str, Any]) -> None:
        """Queue ``batch`` and then ``record``; waits for the previous chunk first (and re-raises its error)."""
        self.wait()
        self.future = self.pool.submit(self._write, batch, copy.deepcopy(record))

    def _write(self, batch: StoreBatch, record: dict[str, Any]) -> None:
        self.store.append(batch)
        self.store.write_progress(record)

    def wait(self) -> None:
        """Block until the chunk in flight is written."""
        if self.future is not None:
            future, self.future = self.future, None
            future.result()

    def close(self) -> None:
        """Finish the chunk in flight and stop the thread."""
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True)


def _commit(writer: _Writer, pending: list[_Piece], n: int, record: dict[str, Any]) -> list[_Piece]:
    """Hand the first ``n`` pending rows to the writer with the next input row recorded; return the rest."""
    batch = StoreBatch.concat([p.batch for p in pending])
    files = np.concatenate([np.full(len(p.batch), p.file_index) for p in pending])
    rows = np.concatenate([p.rows_in_file for p in pending])
    record["rows"] += n
    rest = _Piece(batch.take(slice(n, None)), -1, rows[n:])
    if len(rest.batch):
        record["file_index"], record["row_in_file"] = int(files[n]), int(rows[n])
        left = [_Piece(rest.batch.take(files[n:] == f), int(f), rows[n:][files[n:] == f]) for f in np.unique(files[n:])]
    else:
        record["file_index"], record["row_in_file"] = int(files[-1]) + 1, 0
        left = []
    writer.submit(batch.take(slice(0, n)), record)
    return left


def _record_failure(record: dict[str, Any], path: Path, error: BaseException, skip: int, pipeline: _Pipeline) -> None:
    if skip == 0 and not any(f["file"] == str(path) for f in record["failures"]):
        entry = {"file": str(path), "error": f"{type(error).__name__}: {error}"}
        reader = pipeline.reader.name
        others = [cls.name for cls in matching_readers(path, pipeline.readers) if cls.name != reader]
        if others and not type(pipeline.reader).identify(path):
            entry["hint"] = (
                f"the file looks like {', '.join(others)}, not {reader} (the descriptor's instrument.reader)"
            )
        record["failures"].append(entry)


def _finish(store: Store, record: dict[str, Any], resolved: ResolvedDescriptor, n_files: int) -> IngestReport:
    ids = np.asarray(store.array("source_id")[:])
    snr = store.array("snr")[:]
    keep = keep_best(ids, snr)
    duplicates = int(len(ids) - keep.sum())
    if duplicates and resolved.model.ingest.duplicates == "error":
        repeated = np.unique(ids[~keep])
        shown = ", ".join(str(v) for v in repeated[:5]) + (", ..." if len(repeated) > 5 else "")
        raise IngestError(
            f"{store.path}: {len(repeated)} source ids occur more than once ({shown}); the descriptor's "
            f"ingest.duplicates is 'error' — set it to keep_highest_snr to keep the best row of each"
        )
    store.set_keep(keep)
    report = IngestReport(
        store=str(store.path),
        files=n_files,
        files_failed=record["failures"],
        problems=record["problems"],
        rows=len(ids),
        kept=int(keep.sum()),
        duplicate_ids=int(len(np.unique(ids[~keep]))) if duplicates else 0,
    )
    for name in store.layout.aux:
        report.aux_matched[name] = int((~store.array(f"aux/{name}_missing")[:].all(axis=1) & keep).sum())
    if store.layout.labels:
        oks = np.stack([store.array(f"labels/{n}_ok")[:] for n in store.layout.labels], axis=1) & keep[:, None]
        report.labels_matched = int(oks.any(axis=1).sum())
        report.labels_complete = int(oks.all(axis=1).sum())
    with storage_errors(store.path, f"write {REPORT_FILE}", StoreError, then=STORE_RESUME):
        (store.path / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2))
    summary = {k: v for k, v in report.to_dict().items() if k not in ("problems", "files_failed", "store")}
    summary["files_failed"] = len(report.files_failed)
    store.finish(summary)
    return report


__all__ = ["IngestError", "IngestReport", "ingest"]
