"""Ingest's store writer: committed rows joined, compressed and appended in one background thread, in order."""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from starlabel.ingest_grid import Scratch
from starlabel.store import Store, StoreBatch


class StoreWriter:
    """Writes committed batches in one background thread, in order, at most :attr:`in_flight` queued at a time.

    Reading and preparing the next file overlaps with compressing and writing the previous rows. A batch's
    progress record is replaced only after its rows are written, so an interruption at any moment leaves
    a store that resumes exactly; after a failed write, the batches queued behind it are not written.
    """

    in_flight = 2

    def __init__(self, store: Store | Callable[[], Store]) -> None:
        """``store``: the store, or what makes it (called by the first task, in the writer's thread)."""
        self.store: Store | None = store if isinstance(store, Store) else None
        self._open_store = store if not isinstance(store, Store) else None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="starlabel-ingest-writer")
        self.futures: deque[Future[None]] = deque()
        self.failed = False
        self._buffers = Scratch()  # the joined spectra arrays, reused from write to write

    def _join(self, batches: list[StoreBatch]) -> StoreBatch:
        """The rows of ``batches`` in one batch whose spectra arrays are this writer's reused buffers (fresh
        arrays of tens of MB would cost as much in page faults as the joining itself)."""
        n = sum(len(b) for b in batches)
        first = batches[0]
        joined = StoreBatch(
            np.concatenate([b.source_id for b in batches]),
            self._into("flux", n, first.flux.shape[1], np.float32, [b.flux for b in batches]),
            self._into("ivar", n, first.ivar.shape[1], np.float32, [b.ivar for b in batches]),
            self._into("mask", n, first.mask.shape[1], np.bool_, [b.mask for b in batches]),
            np.concatenate([b.snr for b in batches]),
        )
        for key in first.aux:
            joined.aux[key] = (
                np.concatenate([b.aux[key][0] for b in batches]),
                np.concatenate([b.aux[key][1] for b in batches]),
            )
        for key in first.labels:
            values, errors, ok = (np.concatenate([b.labels[key][i] for b in batches]) for i in range(3))
            joined.labels[key] = (values, errors, ok)
        return joined

    def _into(self, name: str, rows: int, width: int, dtype: Any, parts: list[np.ndarray]) -> np.ndarray:
        """``parts`` joined (and cast, as the store will) into the reused buffer ``name``."""
        out = self._buffers.get(name, rows, width, dtype)
        np.concatenate(parts, out=out, casting="same_kind")
        return out

    def _store(self) -> Store:
        if self.store is None:
            assert self._open_store is not None
            self.store = self._open_store()
        return self.store

    def submit(self, batches: list[StoreBatch], record: dict[str, Any]) -> None:
        """Queue the rows of ``batches`` (joined in the writer's thread) and then ``record``; waits while
        :attr:`in_flight` are queued (re-raises the error of a write that failed)."""
        while self.futures and (len(self.futures) >= self.in_flight or self.futures[0].done()):
            self.futures.popleft().result()
        self.futures.append(self.pool.submit(self._write, batches, copy.deepcopy(record)))

    def _write(self, batches: list[StoreBatch], record: dict[str, Any]) -> None:
        if self.failed:
            return  # an earlier batch was not written: nothing after it may be
        try:
            store = self._store()
            store.append(batches[0] if len(batches) == 1 else self._join(batches))
            store.write_progress(record)
        except BaseException:
            self.failed = True
            raise

    def truncate(self, rows: int) -> None:
        """Queue cutting the store back to ``rows`` rows, after the batches in flight."""
        while self.futures and (len(self.futures) >= self.in_flight or self.futures[0].done()):
            self.futures.popleft().result()
        self.futures.append(self.pool.submit(self._truncate, rows))

    def _truncate(self, rows: int) -> None:
        if not self.failed:
            self._store().truncate(rows)

    def wait(self) -> None:
        """Block until every queued batch is written (re-raises the first error)."""
        while self.futures:
            self.futures.popleft().result()

    def close(self) -> None:
        """Finish the batches in flight and stop the thread."""
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True)
