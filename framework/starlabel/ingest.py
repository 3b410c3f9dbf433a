"""``starlabel ingest``: survey files → spectra on the descriptor's grid → a zarr store.

Per file: read with the descriptor's reader, bring wavelengths to the grid's unit and medium, shift to
the rest frame (when the descriptor says so), resample onto the grid, apply the descriptor's mask
regions, normalise, and join auxiliary inputs and reference labels by source id. Rows are buffered and
written one whole chunk at a time; after each chunk an atomic progress record says which input row
comes next, so a killed ingest resumes where it stopped and ends with the same store. A file that
fails is reported and skipped (``strict=True`` stops instead).

A reader whose ``read_parts(path)`` hands a file out in several parts
(:meth:`~starlabel.components.InstrumentReader.read_parts`; one part by default) is read part by part when
the descriptor's normaliser is ``none``: parts on the grid are prepared as they come
(:mod:`starlabel.ingest_grid`, without float64 copies of float32 fluxes), in a background thread the next
file is read while this one is finished (:mod:`starlabel.ingest_reading`), and a writer thread compresses
and appends whole chunks (:mod:`starlabel.ingest_writer`). The stored values are those of the whole-file
path. Chunks may be written before a file is read to its end, but the progress record only ever claims
whole files, and the rows of a file that fails part-way are cut back out of the store.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from starlabel.containers import AuxTable, LabelTable, Spectra, concat_spectra
from starlabel.errors import DataFileError, StarlabelError
from starlabel.identify import matching_readers
from starlabel.identity_normaliser import NoNormalisation
from starlabel.ingest_grid import Scratch, largest, measured_snr, prepare_on_grid
from starlabel.ingest_reading import FileReading
from starlabel.ingest_writer import StoreWriter
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
        self._work = Scratch()
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

    def read(self, path: Path) -> Iterator[Spectra]:
        """The spectra of ``path``: in parts where the reader gives them and the normaliser is ``none``
        (row by row, so parts change nothing), else whole."""
        read_parts = getattr(self.reader, "read_parts", None)
        if callable(read_parts) and isinstance(self.normaliser, NoNormalisation):
            yield from read_parts(path)
        else:
            yield self.reader.read(path)

    def prepare_parts(
        self, parts: Iterable[Spectra], path: Path, problems: list[str]
    ) -> Iterator[tuple[StoreBatch, np.ndarray]]:
        """Rows of one file on the grid, part by part, with the reader rows they came from; once the file is
        read, its problems (the reader's lines first, then ingest's, as :meth:`prepare` gives them for the
        whole file) are added to ``problems``.

        Parts on the grid are prepared one by one; if the first is not, all are joined and prepared whole
        (resampling many spectra at once). Values beyond float32 are refused once the whole file was seen.
        """
        reader_lines: list[str] = []
        lines: list[str] = []
        peaks = (0.0, 0.0)
        offset = 0
        held: list[Spectra] = []
        for spectra in parts:
            reader_lines += spectra.problems
            if held or (offset == 0 and not self._on_grid(spectra)):
                held.append(spectra)
                continue
            batch, rows, part_lines, part_peaks = self._prepare(spectra, path, offset)
            offset += len(spectra)
            lines += part_lines
            peaks = (max(peaks[0], part_peaks[0]), max(peaks[1], part_peaks[1]))
            if len(batch):
                yield batch, rows
        if held:
            batch, rows, lines, peaks = self._prepare(concat_spectra(held), path, 0)
            if len(batch):
                yield batch, rows
        _check_float32_range(peaks, path)
        problems += reader_lines + lines

    def prepare(self, spectra: Spectra, path: Path) -> tuple[StoreBatch, np.ndarray, list[str]]:
        """Rows of one file on the grid, the reader rows they came from, and the problems found."""
        batch, rows, problems, peaks = self._prepare(spectra, path, 0)
        _check_float32_range(peaks, path)
        return batch, rows, problems

    def _on_grid(self, spectra: Spectra) -> bool:
        """True when the spectra need no unit change, rest-frame shift or resampling, and are not normalised."""
        grid = self.grid
        if self.resolved.model.rest_frame is not None or not isinstance(self.normaliser, NoNormalisation):
            return False
        if spectra.wavelength.ndim != 1 or spectra.wavelength.shape != grid.wavelength.shape:
            return False
        from starlabel.wavelengths import convert_wavelength

        wave = convert_wavelength(spectra.wavelength, spectra.unit, spectra.medium, grid.unit, grid.medium)
        return bool(np.allclose(wave, grid.wavelength, rtol=1e-12, atol=0))

    def _prepare(
        self, spectra: Spectra, path: Path, offset: int
    ) -> tuple[StoreBatch, np.ndarray, list[str], tuple[float, float]]:
        """:meth:`prepare` of spectra that are rows ``offset...`` of the file, and the largest |ivar| and |flux|."""
        if self._on_grid(spectra):
            flux, ivar, mask, snr, peaks = prepare_on_grid(spectra, self.region_mask, self._work)
        else:
            flux, ivar, mask = self._resampled(spectra, path)
            peaks = (largest(ivar), largest(flux))
            snr = _snr(spectra, flux, ivar, mask)
        grid = self.grid
        good_rows = ~mask.all(axis=1)
        problems = [
            f"{path}: row {offset + row} (source_id {spectra.source_id[row]}): no good pixel on the grid "
            f"{grid.wavelength[0]:g}–{grid.wavelength[-1]:g} {grid.unit}; skipped"
            for row in np.flatnonzero(~good_rows)
        ]
        rows = np.flatnonzero(good_rows)
        if len(rows) == len(good_rows):
            batch = StoreBatch(spectra.source_id, flux, ivar, mask, snr)
        else:
            batch = StoreBatch(spectra.source_id[rows], flux[rows], ivar[rows], mask[rows], snr[rows])
        ids = batch.source_id
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
        return batch, offset + rows, problems, peaks

    def _resampled(self, spectra: Spectra, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flux, ivar and mask (float64) on the grid: converted, shifted, resampled, masked and normalised."""
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
            flux64 = spectra.flux.astype(np.float64, copy=False)  # a float32 reader's values, resampled in float64
            out = resample(wave, flux64, spectra.ivar, spectra.mask, grid, mode=self.mode)
            mask = out.mask | self.region_mask
            flux, ivar = out.flux, np.where(mask, 0.0, out.ivar)
        normalised = self.normaliser.normalise(grid.wavelength, flux, ivar, mask, self.arms)
        flux, ivar, mask = normalised.flux, normalised.ivar, normalised.mask
        ivar = np.where(mask, 0.0, ivar)
        flux = np.where(mask, 0.0, flux)
        return flux, ivar, mask

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


def _check_float32_range(peaks: tuple[float, float], path: Path) -> None:
    """Refuse values the store's float32 arrays cannot hold (ivar of tiny physical fluxes overflows to inf).

    ``peaks`` are the largest |ivar| and |flux| of the file's prepared rows.
    """
    limit = float(np.finfo(np.float32).max)
    for name, peak in (("inverse variances", peaks[0]), ("fluxes", peaks[1])):
        if peak > limit:
            raise DataFileError(
                str(path),
                f"{name} up to {peak:.3g} exceed the store's float32 range ({limit:.3g}): the fluxes are in "
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
    writer = StoreWriter(store) if store is not None else None
    created = False  # the store was made by this run (and is removed if nothing could be ingested)
    readings: dict[int, FileReading] = {}

    def read_ahead(index: int) -> None:
        """Start reading file ``index`` in the background (the next file, once this one is read)."""
        if index < len(paths) and index not in readings:
            readings[index] = FileReading(partial(pipeline.read, paths[index]))

    def start_writing() -> StoreWriter:
        """The writer of a store it makes first, in its thread (ids of the first pending rows give the id kind)."""
        nonlocal created
        created = True
        return StoreWriter(
            partial(_new_store, store_path, resolved, plugins, pipeline, pending[0].batch.source_id, paths)
        )

    try:
        for file_index in range(record["file_index"], len(paths)):
            path = paths[file_index]
            skip = record["row_in_file"] if file_index == record["file_index"] else 0
            # rows before this file's: what the progress record may claim while this file is read
            unfinished = (record["rows"] + sum(len(p.batch) for p in pending), file_index, skip)
            read_ahead(file_index)
            reading = readings.pop(file_index)
            problems: list[str] = []
            try:
                try:
                    parts = reading.parts(partial(read_ahead, file_index + 1))
                    for batch, rows in pipeline.prepare_parts(parts, path, problems):
                        # whole chunks before this part are written while the file is read (a file read in one
                        # part is written once it is complete, as always); committed once the file is
                        ready = sum(len(p.batch) for p in pending)
                        if ready >= chunk:
                            writer = writer or start_writing()
                            pending = _commit(writer, pending, ready - ready % chunk, record, unfinished)
                        take = rows >= skip
                        if take.all():
                            pending.append(_Piece(batch, file_index, rows))
                        elif take.any():
                            pending.append(_Piece(batch.take(take), file_index, rows[take]))
                finally:
                    reading.close()  # stops a reader's background work when a part failed
            except StarlabelError as error:
                pending = _roll_back(writer, pending, file_index, record, unfinished[0])
                if strict:
                    raise IngestError(
                        f"{path}: {error} (strict mode: stopping; without --strict it is skipped)"
                    ) from error
                _record_failure(record, path, error, skip, pipeline)
                if progress:
                    progress(file_index + 1, len(paths), record["rows"])
                continue
            except Exception as error:  # a reader bug must not lose the other files' work
                pending = _roll_back(writer, pending, file_index, record, unfinished[0])
                if strict:
                    raise
                _record_failure(record, path, error, skip, pipeline)
                continue
            if file_index not in record["reported"]:  # a resumed file's problems are on record already
                record["problems"].extend(problems)
                record["reported"].append(file_index)
            if writer is None and pending:
                writer = start_writing()
            ready = sum(len(p.batch) for p in pending)
            if writer is not None and ready >= chunk and file_index < len(paths) - 1:
                pending = _commit(writer, pending, ready - ready % chunk, record)
            if progress:
                progress(file_index + 1, len(paths), record["rows"] + sum(len(p.batch) for p in pending))
        if pending and writer is not None:  # the rest, and the last file's rows, in one write
            _commit(writer, pending, sum(len(p.batch) for p in pending), record)
        if writer is not None:
            writer.wait()
            store = writer.store or store
        if store is None or (created and record["rows"] == 0):
            if writer is not None:
                writer.close()
                writer = None
            if created:
                shutil.rmtree(store_path, ignore_errors=True)  # as if never made: nothing could be ingested
            raise IngestError(
                f"no spectrum could be ingested from {len(paths)} file(s); failures: "
                + "; ".join(f"{f['file']}: {f['error']}" for f in record["failures"][:5])
            )
    finally:
        for reading in readings.values():
            reading.close()
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


def _new_store(
    path: Path, resolved: ResolvedDescriptor, plugins: Plugins, pipeline: _Pipeline, ids: np.ndarray, paths: list[Path]
) -> Store:
    """:func:`_create`, with a progress record that makes it resumable from its first moment."""
    store = _create(path, resolved, plugins, pipeline, ids)
    store.write_progress(_start_record(resolved, paths))
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


def _commit(
    writer: StoreWriter,
    pending: list[_Piece],
    n: int,
    record: dict[str, Any],
    unfinished: tuple[int, int, int] | None = None,
) -> list[_Piece]:
    """Hand the first ``n`` pending rows to the writer with the next input row recorded; return the rest.

    ``record["rows"]`` counts the rows handed over. ``unfinished`` is ``(rows, file_index, row_in_file)``
    of the first row of a file still being read: rows from it are written, but the progress record written
    with them stops at that row (an interrupted ingest drops them and reads the file again; a file that
    fails is taken back, :func:`_roll_back`). Only the pieces that make up the ``n`` rows are handed over
    (the writer's thread joins them); the rest stay as they were, so rows are copied once.
    """
    taken: list[_Piece] = []
    left: list[_Piece] = []
    count = 0
    for piece in pending:
        size = len(piece.batch)
        if count >= n:
            left.append(piece)
        elif count + size <= n:
            taken.append(piece)
            count += size
        else:
            cut = n - count
            taken.append(_Piece(piece.batch.take(slice(0, cut)), piece.file_index, piece.rows_in_file[:cut]))
            left.append(_Piece(piece.batch.take(slice(cut, None)), piece.file_index, piece.rows_in_file[cut:]))
            count = n
    record["rows"] += n
    if left:
        record["file_index"], record["row_in_file"] = left[0].file_index, int(left[0].rows_in_file[0])
    else:
        record["file_index"], record["row_in_file"] = taken[-1].file_index + 1, 0
    saved = record
    if unfinished is not None and record["rows"] > unfinished[0]:
        saved = {**record, "rows": unfinished[0], "file_index": unfinished[1], "row_in_file": unfinished[2]}
    writer.submit([p.batch for p in taken], saved)
    return left


def _roll_back(
    writer: StoreWriter | None, pending: list[_Piece], file_index: int, record: dict[str, Any], rows: int
) -> list[_Piece]:
    """Take back the rows of a file that failed: its pending rows are dropped and, where some were written
    already, the store is cut back to the ``rows`` before them. Returns the pending rows of other files."""
    if writer is not None and record["rows"] > rows:
        writer.truncate(rows)
        record["rows"] = rows
    return [p for p in pending if p.file_index != file_index]


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
