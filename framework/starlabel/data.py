"""Streaming torch datasets over a store: bounded memory, deterministic splits, masks for what is missing.

Rows are read one store chunk at a time, filtered to the wanted split (and to rows the duplicate
policy kept), and passed through a shuffle buffer of bounded size. Workers (and distributed ranks)
take disjoint sets of chunks. Normalisation statistics come from the training split only. A missing
label or auxiliary value is never silently a number: each comes with a mask (``label_ok``,
``aux_missing``) and its value is set to 0 in normalised units only where that mask says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from starlabel.splits import SPLIT_NAMES, assign_splits, member_splits
from starlabel.store import Store, StoreError


@dataclass(frozen=True)
class SplitSpec:
    """Seed and fractions of the id-hash split (the test fraction is the rest)."""

    seed: int = 0
    train: float = 0.8
    valid: float = 0.1
    member: int | None = None
    """Ensemble member: its own train/valid division of the non-test stars (see ``member_splits``)."""


@dataclass
class Stats:
    """Per-column mean and standard deviation, for labels and for the concatenated auxiliary inputs."""

    label_names: list[str]
    label_mean: list[float]
    label_std: list[float]
    aux_columns: list[str]
    aux_mean: list[float]
    aux_std: list[float]
    n_train: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for model cards)."""
        return asdict(self)


def rows_in_split(
    store: Store,
    start: int,
    stop: int,
    split: str | None,
    spec: SplitSpec,
    keep: np.ndarray | None = None,
    ids: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of rows ``start:stop`` that are in ``split`` (None: every kept row) and kept.

    ``keep`` and ``ids`` are those rows' keep flags and source ids when the caller has already read them.
    """
    if keep is None:
        keep = store.array("keep")[start:stop]
    if split is None:
        return keep
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLIT_NAMES)} or None")
    if ids is None:
        ids = np.asarray(store.array("source_id")[start:stop])
    if spec.member is None:
        codes = assign_splits(ids, spec.seed, spec.train, spec.valid)
    else:
        codes = member_splits(ids, spec.seed, spec.train, spec.valid, spec.member)
    return keep & (codes == SPLIT_NAMES[split])


def labelled_rows(store: Store, start: int, stop: int) -> np.ndarray:
    """Boolean mask of rows ``start:stop`` with at least one usable label."""
    ok = [store.array(f"labels/{name}_ok")[start:stop] for name in store.layout.labels]
    return np.any(ok, axis=0) if ok else np.zeros(stop - start, bool)


def compute_stats(store: Store, spec: SplitSpec) -> Stats:
    """Mean and std of each label (over ok values) and aux column (over present values), training split only."""
    labels = list(store.layout.labels)
    aux_cols = [f"{n}.{c}" for n, cols in store.layout.aux.items() for c in cols]
    sums = np.zeros((2, len(labels) + len(aux_cols)))
    counts = np.zeros(len(labels) + len(aux_cols))
    n_train = 0
    for start, stop in store.chunk_ranges():
        rows = rows_in_split(store, start, stop, "train", spec)
        n_train += int(rows.sum())
        values, present = _columns(store, start, stop)
        values, present = values[rows], present[rows]
        v = np.where(present, values, 0.0)
        sums[0] += v.sum(axis=0)
        sums[1] += (v * v).sum(axis=0)
        counts += present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums[0] / counts
        std = np.sqrt(np.maximum(sums[1] / counts - mean**2, 0.0))
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    k = len(labels)
    return Stats(labels, mean[:k].tolist(), std[:k].tolist(), aux_cols, mean[k:].tolist(), std[k:].tolist(), n_train)


def _columns(store: Store, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels then aux columns of rows start:stop as float64 values and a present mask."""
    values, present = [], []
    for name in store.layout.labels:
        values.append(store.array(f"labels/{name}")[start:stop].astype(np.float64)[:, None])
        present.append(store.array(f"labels/{name}_ok")[start:stop][:, None])
    for name in store.layout.aux:
        values.append(store.array(f"aux/{name}")[start:stop].astype(np.float64))
        present.append(~store.array(f"aux/{name}_missing")[start:stop])
    n = stop - start
    if not values:
        return np.zeros((n, 0)), np.zeros((n, 0), bool)
    return np.concatenate(values, axis=1), np.concatenate(present, axis=1)


class StoreDataset(IterableDataset):
    """Rows of one split of a store, streamed chunk by chunk through a bounded shuffle buffer.

    Parameters
    ----------
    path : path
        A complete store.
    split : {"train", "valid", "test"} or None
        Which rows; None means every row the duplicate policy kept.
    spec : SplitSpec
        Seed and fractions of the split.
    stats : Stats, optional
        Normalise labels and aux inputs with these (from the training split); raw values otherwise.
    shuffle : bool
        Shuffle chunk order and rows (through the buffer); the order depends on ``seed`` and the epoch.
    buffer_rows : int
        Shuffle-buffer size in rows: memory is bounded by this plus one chunk.
    rank, world_size : int
        For distributed training: this process takes chunks ``rank::world_size``.
    batch_size : int, optional
        Yield collated batches of this many rows (the last may be shorter; use a ``DataLoader`` with
        ``batch_size=None``); by default single rows are yielded, for a ``DataLoader`` to collate.
    labelled_only : bool
        Skip rows with no usable label (they teach a network nothing).
    """

    def __init__(
        self,
        path: str | Path,
        split: str | None = "train",
        spec: SplitSpec = SplitSpec(),
        stats: Stats | None = None,
        *,
        shuffle: bool = True,
        buffer_rows: int = 4096,
        rank: int = 0,
        world_size: int = 1,
        batch_size: int | None = None,
        labelled_only: bool = False,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        store = Store.open(self.path)  # refuses incomplete stores now, not in a worker later
        self.n_chunks = len(store.chunk_ranges())
        self.split, self.spec, self.stats = split, spec, stats
        self.shuffle, self.buffer_rows = shuffle, max(1, buffer_rows)
        self.rank, self.world_size = rank, world_size
        self.batch_size = batch_size
        self.labelled_only = labelled_only
        self.epoch = 0
        if stats is not None and stats.label_names != list(store.layout.labels):
            raise StoreError(
                f"{path}: stats are for labels {stats.label_names}, the store has {list(store.layout.labels)}"
            )

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffle order (call once per epoch, before iterating)."""
        self.epoch = epoch

    def _my_chunks(self) -> list[int]:
        chunks = np.arange(self.n_chunks)
        if self.shuffle:
            np.random.default_rng([self.spec.seed, self.epoch]).shuffle(chunks)
        chunks = chunks[self.rank :: self.world_size]
        info = get_worker_info()
        if info is not None:
            chunks = chunks[info.id :: info.num_workers]
        return chunks.tolist()

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        store = Store.open(self.path)
        info = get_worker_info()
        rng = np.random.default_rng([self.spec.seed, self.epoch, self.rank, info.id if info else 0])
        size = self.batch_size or 1
        pool: _Pool | None = None
        plain_pool: dict[str, np.ndarray] | None = None
        for chunk in self._my_chunks():
            rows = self._rows(store, chunk)
            if rows is None:
                continue
            if not self.shuffle:
                plain = rows if plain_pool is None else {k: np.concatenate([plain_pool[k], v]) for k, v in rows.items()}
                while len(plain["row"]) >= size:
                    yield self._emit({k: v[:size] for k, v in plain.items()})
                    plain = {k: v[size:] for k, v in plain.items()}
                plain_pool = plain
                continue
            pool = _Pool(rows) if pool is None else pool.extended(rows)
            while pool.alive >= self.buffer_rows + size:
                # the same draws as picking positions among the waiting rows and deleting them in place
                yield self._emit(pool.take(rng.choice(pool.alive, size=size, replace=False)))
        remaining = plain_pool if not self.shuffle else (pool.compacted() if pool is not None else None)
        if remaining is None:
            return
        order = rng.permutation(len(remaining["row"])) if self.shuffle else np.arange(len(remaining["row"]))
        for begin in range(0, len(order), size):
            yield self._emit({k: v[order[begin : begin + size]] for k, v in remaining.items()})

    def _emit(self, rows: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """One batch (``batch_size`` set) or one row, as torch tensors that own their memory."""
        if self.batch_size is None:
            return {k: torch.tensor(v[0]) for k, v in rows.items()}
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in rows.items()}

    def _rows(self, store: Store, chunk: int) -> dict[str, np.ndarray] | None:
        start, stop = store.chunk_ranges()[chunk]
        wanted = rows_in_split(store, start, stop, self.split, self.spec)
        values, present = _columns(store, start, stop)
        k = len(store.layout.labels)
        if self.labelled_only:
            wanted = wanted & present[:, :k].any(axis=1)
        rows = np.flatnonzero(wanted)
        if rows.size == 0:
            return None
        batch = store.read(start, stop).take(rows)
        values, present = values[rows], present[rows]
        if self.stats is not None:
            mean = np.array(self.stats.label_mean + self.stats.aux_mean)
            std = np.array(self.stats.label_std + self.stats.aux_std)
            values = (values - mean) / std
        values = np.where(present, values, 0.0).astype(np.float32)
        errors = np.stack([batch.labels[n][1] for n in store.layout.labels], axis=1) if k else np.zeros((len(rows), 0))
        if self.stats is not None and k:
            errors = errors / np.array(self.stats.label_std)
        errors = np.where(present[:, :k] & np.isfinite(errors), errors, 0.0).astype(np.float32)
        # Rows are copied out of the chunk (fancy indexing copies): a view would keep the whole chunk alive
        # for as long as any of its rows waits in the shuffle buffer, and memory would no longer be bounded.
        return {
            "row": (start + rows).astype(np.int64),
            "flux": batch.flux,
            "ivar": batch.ivar,
            "mask": batch.mask,
            "labels": np.ascontiguousarray(values[:, :k]),
            "label_err": errors,
            "label_ok": np.ascontiguousarray(present[:, :k]),
            "aux": np.ascontiguousarray(values[:, k:]),
            "aux_missing": np.ascontiguousarray(~present[:, k:]),
        }


class _Pool:
    """The shuffle buffer: rows in arrival order, taken by their position among the rows still waiting.

    Taking rows only marks them gone (a Fenwick tree of the waiting rows finds a position's row in
    O(log n)); the arrays are compacted once per arriving chunk, so emitting a row costs no copy of the
    buffer, and memory stays bounded by the buffer plus one chunk.
    """

    def __init__(self, rows: dict[str, np.ndarray]) -> None:
        self.rows = rows
        self.waiting = np.ones(len(rows["row"]), dtype=bool)
        self.alive = len(self.waiting)
        n = self.alive
        self._tree = [0] + [i & -i for i in range(1, n + 1)]  # counts of waiting rows, all 1
        self._top = 1 << (n.bit_length() - 1) if n else 0

    def compacted(self) -> dict[str, np.ndarray]:
        """The waiting rows, in arrival order (copies)."""
        if self.alive == len(self.waiting):
            return self.rows
        keep = np.flatnonzero(self.waiting)
        return {k: v[keep] for k, v in self.rows.items()}

    def extended(self, rows: dict[str, np.ndarray]) -> _Pool:
        """A pool of the waiting rows followed by ``rows``."""
        waiting = self.compacted()
        return _Pool({k: np.concatenate([waiting[k], v]) for k, v in rows.items()})

    def take(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """Rows at ``positions`` (0-based, among the waiting rows, all counted before any is taken), in
        that order; they stop waiting."""
        tree, n = self._tree, len(self.waiting)
        found = []
        for position in positions.tolist():
            index, rest, step = 0, position + 1, self._top
            while step:
                nxt = index + step
                if nxt <= n and tree[nxt] < rest:
                    index, rest = nxt, rest - tree[nxt]
                step >>= 1
            found.append(index)  # 0-based row index
        for index in found:
            i = index + 1
            while i <= n:
                tree[i] -= 1
                i += i & -i
        picked = np.array(found, dtype=np.int64)
        self.waiting[picked] = False
        self.alive -= len(found)
        return {k: v[picked] for k, v in self.rows.items()}


def make_loader(dataset: StoreDataset, batch_size: int = 64, workers: int = 0) -> DataLoader:
    """A DataLoader over ``dataset`` (workers open the store themselves); batches come from the dataset
    itself when it was made with a ``batch_size``."""
    if dataset.batch_size is not None:
        return DataLoader(dataset, batch_size=None, num_workers=workers, persistent_workers=False)
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers, persistent_workers=False)
