"""The zarr v3 store of one ingested dataset.

Layout (one group per dataset, rows = spectra, chunked by rows)::

    flux, ivar            (N, P) float32      spectra on the descriptor's grid, inverse variance
    mask                  (N, P) bool         True = bad pixel
    source_id             (N,)   int64 | str
    snr                   (N,)   float32      median S/N of the good pixels (or the reader's value)
    keep                  (N,)   bool         False for rows dropped by the duplicate policy (set on completion)
    aux/<name>            (N, k) float32      attrs: columns
    aux/<name>_missing    (N, k) bool
    labels/<name>         (N,)   float32      attrs: unit
    labels/<name>_err     (N,)   float32
    labels/<name>_ok      (N,)   bool

Group attrs under ``"starlabel"``: format and version, the resolved descriptor and its hash, the grid,
plugin and code versions, creation time, and ``completion`` (rows, chunks, complete flag). While a
writer is working, an atomically replaced ``_progress.json`` beside the arrays records what is
committed, so an interrupted ingest resumes without losing or duplicating rows. A store whose
``completion.complete`` is false is never opened for reading unless asked for explicitly.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from starlabel._version import __version__
from starlabel.errors import StarlabelError
from starlabel.storage import storage_errors

FORMAT = "starlabel-store"
FORMAT_VERSION = 1
PROGRESS_FILE = "_progress.json"
RESUME = "re-run the same `starlabel ingest` command to resume (the store stays incomplete until then)"


class StoreError(StarlabelError):
    """A store is missing, of another format, incomplete, or does not match what is written to it."""

    exit_code = 2


@dataclass
class StoreBatch:
    """Rows to append to (or read from) a store; every array has the same first dimension n."""

    source_id: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    snr: np.ndarray
    aux: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    labels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.source_id.shape[0])

    def take(self, rows: np.ndarray | slice) -> StoreBatch:
        """The batch restricted to ``rows``."""
        return StoreBatch(
            self.source_id[rows],
            self.flux[rows],
            self.ivar[rows],
            self.mask[rows],
            self.snr[rows],
            {k: (v[rows], m[rows]) for k, (v, m) in self.aux.items()},
            {k: (v[rows], e[rows], o[rows]) for k, (v, e, o) in self.labels.items()},
        )

    @staticmethod
    def concat(batches: Sequence[StoreBatch]) -> StoreBatch:
        """Rows of several batches, in order."""
        first = batches[0]

        def cat(get: Any) -> np.ndarray:
            return np.concatenate([get(b) for b in batches])

        return StoreBatch(
            cat(lambda b: b.source_id),
            cat(lambda b: b.flux),
            cat(lambda b: b.ivar),
            cat(lambda b: b.mask),
            cat(lambda b: b.snr),
            {k: (cat(lambda b, k=k: b.aux[k][0]), cat(lambda b, k=k: b.aux[k][1])) for k in first.aux},
            {k: tuple(cat(lambda b, k=k, i=i: b.labels[k][i]) for i in range(3)) for k in first.labels},  # type: ignore[misc]
        )


@dataclass(frozen=True)
class StoreLayout:
    """What a store holds besides spectra: set at creation, checked on every append."""

    n_pixels: int
    id_kind: str
    aux: dict[str, list[str]]
    labels: dict[str, str]
    chunk_rows: int = 1024


COMPRESSION = {"cname": "lz4", "clevel": 9, "shuffle": "shuffle"}
"""Blosc settings of the arrays. lz4 with byte shuffle writes spectra about 5 times as fast as zstd level 3
with bitshuffle (the ingest writer's main cost) and reads them faster, for about 5% more bytes on the flux
and ivar of continuum-normalised spectra; stores written with other settings read the same (the codec is
in each array's metadata)."""


PARALLEL_VALUES = 1 << 20
"""Appends of at least this many flux values write their arrays in two threads."""
_POOL: list[concurrent.futures.ThreadPoolExecutor] = []


def _put_pool() -> concurrent.futures.ThreadPoolExecutor:
    """Two threads shared by every store's appends (made on first use)."""
    if not _POOL:
        _POOL.append(concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="starlabel-store-put"))
    return _POOL[0]


def _compressor() -> Any:
    from zarr.codecs import BloscCodec

    return BloscCodec(**COMPRESSION)


class Store:
    """A dataset store on a local folder (use :meth:`create` or :meth:`open`)."""

    def __init__(self, group: Any, path: Path) -> None:
        self.group = group
        self.path = path
        meta = dict(group.attrs).get("starlabel")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise StoreError(f"{path}: not a starlabel store (no 'starlabel' attributes of format {FORMAT})")
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise StoreError(
                f"{path}: store format version {meta['format_version']} is newer than this starlabel reads "
                f"({FORMAT_VERSION}); upgrade starlabel"
            )
        self.meta: dict[str, Any] = meta
        layout = meta["layout"]
        self.layout = StoreLayout(
            layout["n_pixels"], layout["id_kind"], layout["aux"], layout["labels"], layout["chunk_rows"]
        )

    # ------------------------------------------------------------------------------------------- creation
    @classmethod
    def create(
        cls,
        path: str | Path,
        layout: StoreLayout,
        *,
        descriptor: Mapping[str, Any],
        descriptor_hash: str,
        grid: Mapping[str, Any],
        plugins: Mapping[str, str],
        extra: Mapping[str, Any] | None = None,
    ) -> Store:
        """Create an empty store at ``path`` (which must not exist); nothing is left there if this fails.

        Raises
        ------
        StoreError
            ``path`` exists, or it cannot be written (read-only, no permission, disk full).
        """
        path = Path(path)
        if path.exists():
            raise StoreError(f"{path}: already exists; remove it or choose another --store path")
        try:
            with storage_errors(path, "create the store", StoreError, then="run the command again"):
                return cls._create(path, layout, descriptor, descriptor_hash, grid, plugins, extra)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)  # a half-created store would be in the way of the next try
            raise

    @classmethod
    def _create(
        cls,
        path: Path,
        layout: StoreLayout,
        descriptor: Mapping[str, Any],
        descriptor_hash: str,
        grid: Mapping[str, Any],
        plugins: Mapping[str, str],
        extra: Mapping[str, Any] | None,
    ) -> Store:
        import zarr

        group = zarr.open_group(str(path), mode="w-", zarr_format=3)
        rows, pix = layout.chunk_rows, layout.n_pixels
        comp = _compressor()

        def array(name: str, shape: tuple[int, ...], dtype: Any, where: Any = group) -> None:
            chunks = (rows, *shape[1:])
            kwargs: dict[str, Any] = {"compressors": comp} if dtype is not str else {}
            where.create_array(name, shape=(0, *shape[1:]), dtype=dtype, chunks=chunks, **kwargs)

        array("flux", (0, pix), "float32")
        array("ivar", (0, pix), "float32")
        array("mask", (0, pix), "bool")
        array("source_id", (0,), str if layout.id_kind == "str" else "int64")
        array("snr", (0,), "float32")
        array("keep", (0,), "bool")
        aux = group.require_group("aux")
        for name, columns in layout.aux.items():
            array(name, (0, len(columns)), "float32", aux)
            array(f"{name}_missing", (0, len(columns)), "bool", aux)
            aux[name].attrs["columns"] = list(columns)
        labels = group.require_group("labels")
        for name, unit in layout.labels.items():
            array(name, (0,), "float32", labels)
            array(f"{name}_err", (0,), "float32", labels)
            array(f"{name}_ok", (0,), "bool", labels)
            labels[name].attrs["unit"] = unit
        group.attrs["starlabel"] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "code_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "descriptor": dict(descriptor),
            "descriptor_hash": descriptor_hash,
            "grid": dict(grid),
            "plugins": dict(plugins),
            "layout": {
                "n_pixels": pix,
                "id_kind": layout.id_kind,
                "aux": {k: list(v) for k, v in layout.aux.items()},
                "labels": dict(layout.labels),
                "chunk_rows": rows,
            },
            "completion": {"complete": False, "rows": 0, "chunks": 0},
            **(dict(extra) if extra else {}),
        }
        return cls(group, path)

    @classmethod
    def open(cls, path: str | Path, mode: str = "r", *, allow_incomplete: bool = False) -> Store:
        """Open an existing store read-only (``"r"``) or for appending (``"r+"``).

        Raises
        ------
        StoreError
            No store there, another format, or (unless ``allow_incomplete``) a store whose writer has not
            finished.
        """
        import zarr

        path = Path(path)
        if not (path / "zarr.json").is_file():
            raise StoreError(f"{path}: no store here (no zarr.json); create one with `starlabel ingest`")
        with storage_errors(path, "open the store", StoreError, write=False):
            store = cls(zarr.open_group(str(path), mode=mode, zarr_format=3), path)
        if not allow_incomplete and not store.complete:
            try:
                committed = int((store.read_progress() or {}).get("rows", 0))
            except (StoreError, TypeError, ValueError):
                committed = 0
            raise StoreError(
                f"{path}: store is incomplete (its ingest did not finish: {committed} rows committed); re-run the "
                "same `starlabel ingest` command to resume it"
            )
        return store

    # ----------------------------------------------------------------------------------------- properties
    @property
    def complete(self) -> bool:
        """True once the writer has finished."""
        return bool(self.meta["completion"].get("complete"))

    @property
    def n_rows(self) -> int:
        """Rows stored (spectra)."""
        return int(self.group["source_id"].shape[0])

    @property
    def chunk_rows(self) -> int:
        """Rows per chunk."""
        return self.layout.chunk_rows

    @property
    def descriptor_hash(self) -> str:
        """Hash of the descriptor the store was made with."""
        return str(self.meta["descriptor_hash"])

    def chunk_ranges(self) -> list[tuple[int, int]]:
        """``(start, stop)`` row ranges of the store's chunks, in order."""
        n, rows = self.n_rows, self.chunk_rows
        return [(start, min(start + rows, n)) for start in range(0, n, rows)]

    def array(self, name: str) -> Any:
        """The zarr array ``name`` (e.g. ``"flux"``, ``"aux/photometry"``, ``"labels/teff_ok"``)."""
        return self.group[name]

    # ------------------------------------------------------------------------------------------- writing
    def append(self, batch: StoreBatch) -> None:
        """Append rows; the batch must carry exactly the store's aux and label names."""
        self._check(batch)
        with storage_errors(self.path, "write rows to the store", StoreError, then=RESUME):
            self._append(batch)

    def _append(self, batch: StoreBatch) -> None:
        start, n = self.n_rows, len(batch)
        stop = start + n

        def put(name: str, values: np.ndarray) -> None:
            arr = self.group[name]
            arr.resize((stop, *arr.shape[1:]))
            arr[start:stop] = values

        arrays = [
            ("flux", batch.flux.astype(np.float32, copy=False)),
            ("ivar", batch.ivar.astype(np.float32, copy=False)),
            ("mask", batch.mask),
            ("snr", batch.snr.astype(np.float32, copy=False)),
            ("keep", np.ones(n, dtype=bool)),
        ]
        for name, (values, missing) in batch.aux.items():
            arrays += [(f"aux/{name}", values.astype(np.float32, copy=False)), (f"aux/{name}_missing", missing)]
        for name, (values, errors, ok) in batch.labels.items():
            arrays += [
                (f"labels/{name}", values.astype(np.float32, copy=False)),
                (f"labels/{name}_err", errors.astype(np.float32, copy=False)),
                (f"labels/{name}_ok", ok),
            ]
        if batch.flux.size >= PARALLEL_VALUES:  # flux and ivar compressed side by side
            futures = [_put_pool().submit(put, name, values) for name, values in arrays]
            concurrent.futures.wait(futures)
            for future in futures:
                future.result()  # the first error, once every write has stopped
        else:
            for name, values in arrays:
                put(name, values)
        put("source_id", batch.source_id)  # last: n_rows counts only rows whose every array is written

    def truncate(self, n_rows: int) -> None:
        """Shrink every row array to ``n_rows`` (drops rows a killed writer left uncommitted)."""
        with storage_errors(self.path, "drop the uncommitted rows of the store", StoreError, then=RESUME):
            for name in self.row_arrays():
                arr = self.group[name]
                if arr.shape[0] > n_rows:
                    arr.resize((n_rows, *arr.shape[1:]))

    def set_keep(self, keep: np.ndarray) -> None:
        """Write the duplicate-policy result."""
        with storage_errors(self.path, "write the store's keep flags", StoreError, then=RESUME):
            self.group["keep"][:] = keep

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Mark the store complete, recording ``summary`` (counts, report) in its attributes."""
        meta = dict(self.meta)
        rows = self.n_rows
        meta["completion"] = {
            "complete": True,
            "rows": rows,
            "chunks": -(-rows // self.chunk_rows),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **dict(summary),
        }
        with storage_errors(self.path, "mark the store complete", StoreError, then=RESUME):
            self.group.attrs["starlabel"] = meta  # zarr replaces zarr.json atomically: complete, or not at all
        self.meta = meta
        self.clear_progress()

    # ------------------------------------------------------------------------------------------- reading
    def read(self, start: int, stop: int) -> StoreBatch:
        """Rows ``start:stop`` as a :class:`StoreBatch`."""
        g = self.group
        return StoreBatch(
            np.asarray(g["source_id"][start:stop]),
            g["flux"][start:stop],
            g["ivar"][start:stop],
            g["mask"][start:stop],
            g["snr"][start:stop],
            {n: (g[f"aux/{n}"][start:stop], g[f"aux/{n}_missing"][start:stop]) for n in self.layout.aux},
            {
                n: (g[f"labels/{n}"][start:stop], g[f"labels/{n}_err"][start:stop], g[f"labels/{n}_ok"][start:stop])
                for n in self.layout.labels
            },
        )

    # -------------------------------------------------------------------------------------------- progress
    def read_progress(self) -> dict[str, Any] | None:
        """The writer's committed-work record, or None."""
        path = self.path / PROGRESS_FILE
        if not path.is_file():
            return None
        with storage_errors(self.path, "read the ingest's progress record", StoreError, write=False):
            text = path.read_text()
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise StoreError(
                f"{path}: the progress record of this unfinished store is damaged; remove the store folder and "
                "ingest again"
            )
        return record

    def write_progress(self, record: Mapping[str, Any]) -> None:
        """Atomically replace the committed-work record (write, fsync, rename)."""
        path = self.path / PROGRESS_FILE
        tmp = path.with_suffix(".tmp")
        with storage_errors(self.path, "record the ingest's progress", StoreError, then=RESUME):
            try:
                with open(tmp, "w") as handle:
                    handle.write(json.dumps(record))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

    def clear_progress(self) -> None:
        """Remove the committed-work record (the store is complete)."""
        with storage_errors(self.path, "remove the store's progress record", StoreError):
            (self.path / PROGRESS_FILE).unlink(missing_ok=True)

    # --------------------------------------------------------------------------------------------- helpers
    def row_arrays(self) -> list[str]:
        """Names of every array with one entry per row."""
        names = ["flux", "ivar", "mask", "source_id", "snr", "keep"]
        for n in self.layout.aux:
            names += [f"aux/{n}", f"aux/{n}_missing"]
        for n in self.layout.labels:
            names += [f"labels/{n}", f"labels/{n}_err", f"labels/{n}_ok"]
        return names

    def _check(self, batch: StoreBatch) -> None:
        n = len(batch)
        if batch.flux.shape != (n, self.layout.n_pixels):
            raise StoreError(f"{self.path}: batch flux shape {batch.flux.shape}, store holds {self.layout.n_pixels} px")
        if set(batch.aux) != set(self.layout.aux) or set(batch.labels) != set(self.layout.labels):
            raise StoreError(
                f"{self.path}: batch carries aux {sorted(batch.aux)} and labels {sorted(batch.labels)}, the store "
                f"holds aux {sorted(self.layout.aux)} and labels {sorted(self.layout.labels)}"
            )
