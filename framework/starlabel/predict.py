"""Streaming prediction: a bundle applied to a store, chunk by chunk, into a FITS or Parquet catalogue.

Each store chunk becomes one catalogue part, written atomically; a run that is killed and re-run skips
the parts already written and the assembled catalogue has every row once, in store order. Monte-Carlo
dropout passes are seeded by the chunk's first row, so a chunk gives the same numbers whenever and
wherever it is computed (resumed runs, Dask workers).

Two ways to run: :func:`predict` predicts the chunks one after the other in this process;
:func:`starlabel.predict_dask.predict_dask` (``starlabel predict --dask [ADDRESS]``) makes one Dask task
per chunk still to predict, each task writing its own part, on a local cluster or on any Dask scheduler.
Both build the same :class:`PredictionPlan` and finish the same way (lock, parts, fingerprint, assembly),
so they write the same catalogue (byte for byte where the workers run the same torch build with the
same number of threads per chunk: one, in a Dask worker and in each of :func:`predict`'s CPU lanes) and either
one resumes what the other left.

Catalogue columns: ``source_id`` first; per label its value, total uncertainty ``_err`` and the parts
``_err_ensemble``, ``_err_mc`` (MC-dropout networks) and ``_err_model`` (heteroscedastic networks);
``ood_score``; ``flag_boundary`` (bit i: label i outside the training range); ``flag`` (bits in
:data:`FLAGS`, documented in the catalogue header); ``snr`` and ``masked_fraction`` of the input.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.bundle import Bundle, check_compatible, load_bundle
from starlabel.catalogue import CatalogueWriter, Column
from starlabel.data import SplitSpec, rows_in_split
from starlabel.ensemble import Ensemble, warm_up
from starlabel.errors import StarlabelError
from starlabel.lanes import choose_lanes, one_thread_kernels, ordered_map
from starlabel.plugins import Plugins
from starlabel.progress import Progress
from starlabel.store import Store

FLAGS: dict[str, tuple[int, str]] = {
    "boundary": (1, "a label lies outside the training labels' range (which ones: flag_boundary, bit i = label i)"),
    "sparse": (2, "the labels fall where a 2-D histogram of the training labels has fewer than 3 stars"),
    "ood": (4, "the input is unlike the training inputs (ood_score > 1)"),
    "no_data": (8, "no usable pixel in the spectrum: labels are NaN"),
    "aux_missing": (16, "an auxiliary input was missing (imputed with the training mean)"),
}
"""Flag name → (bit value, meaning)."""

MIN_GOOD_FRACTION = 0.0
"""A spectrum needs more than this fraction of good pixels to be predicted (else ``no_data``)."""


class PredictionError(StarlabelError):
    """A prediction cannot run as asked (or, in strict mode, met a bad input row)."""

    exit_code = 2


@dataclass
class PredictReport:
    """What a prediction run did."""

    out: Path
    rows: int
    chunks: int
    resumed_chunks: int
    flagged: dict[str, int] = field(default_factory=dict)
    no_data_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0


def make_ensemble(
    bundle: Bundle, device: str = "cpu", mc_samples: int | None = None, engine: str = "fast"
) -> Ensemble:
    """The :class:`Ensemble` of a loaded bundle (``engine``: see :mod:`starlabel.ensemble`)."""
    norm = bundle.card.normalisation
    samples = mc_samples or int(bundle.card.training["options"].get("mc_samples", 16))
    return Ensemble(
        bundle.members,
        bundle.transform,
        np.asarray(norm.label_mean),
        np.asarray(norm.label_std),
        np.asarray(norm.aux_mean),
        np.asarray(norm.aux_std),
        bundle.card.heteroscedastic,
        bundle.card.mc_dropout,
        samples,
        device,
        engine,
    )


def catalogue_columns(bundle: Bundle, id_dtype: str) -> list[Column]:
    """The catalogue's columns, ``source_id`` first, with units and descriptions."""
    card = bundle.card
    cols = [Column("source_id", id_dtype, None, "source identifier, as in the store")]
    for name in bundle.labels:
        unit = card.normalisation.label_units.get(name) or None
        cols.append(Column(name, "float32", unit, f"{name}: ensemble mean of {card.members} member(s)"))
        cols.append(Column(f"{name}_err", "float32", unit, f"{name} total uncertainty (quadrature sum of the parts)"))
        cols.append(Column(f"{name}_err_ensemble", "float32", unit, f"{name} spread of the ensemble members"))
        if card.mc_dropout:
            cols.append(Column(f"{name}_err_mc", "float32", unit, f"{name} Monte-Carlo dropout spread"))
        if card.heteroscedastic:
            cols.append(Column(f"{name}_err_model", "float32", unit, f"{name} predicted (heteroscedastic) uncertainty"))
    cols += [
        Column("ood_score", "float32", None, "input distance from the training inputs; > 1 is out of distribution"),
        Column("flag_boundary", "int32", None, "bit i set: label i outside the training labels' range"),
        Column("flag", "int32", None, "flag bits, see the header's COMMENT cards"),
        Column("snr", "float32", None, "median S/N of the input spectrum"),
        Column("masked_fraction", "float32", None, "fraction of the network's pixels that were masked"),
    ]
    return cols


READ_BLOCK_ROWS = 1024
"""Most rows :class:`ChunkReader` reads in one go: consecutive small store chunks are read together."""


@dataclass
class ChunkInputs:
    """What prediction reads of one store chunk: its predicted rows, and only the arrays prediction uses.

    ``rows`` are the indices, within the chunk, of the kept rows (of the wanted split); every array
    holds those rows only. ``aux`` and ``missing`` are the auxiliary arrays side by side, in store order.
    """

    chunk: int
    start: int
    rows: np.ndarray
    source_id: np.ndarray
    flux: np.ndarray
    mask: np.ndarray
    snr: np.ndarray
    aux: np.ndarray
    missing: np.ndarray
    network: tuple[Any, Any] | None = None
    """The network inputs ``(x, a)``, once made by :func:`prepare_chunk`."""
    ood_score: np.ndarray | None = None
    """The normalised input-coverage score, once computed by :func:`prepare_chunk`."""


def prepare_chunk(bundle: Bundle, ensemble: Ensemble, inputs: ChunkInputs) -> ChunkInputs:
    """Fill in what needs no network: the network inputs and the input-coverage (OOD) score. Returns ``inputs``."""
    if len(inputs.rows) and inputs.network is None:
        x, a = ensemble.inputs(inputs.flux, inputs.mask, inputs.aux, inputs.missing)
        if bundle.ood is not None:
            features = np.concatenate([x.cpu().numpy(), a.cpu().numpy()], axis=1)
            inputs.ood_score = bundle.ood.score(features) / bundle.ood.threshold
        else:
            inputs.ood_score = np.zeros(len(inputs.rows))
        inputs.network = (x, a)
    return inputs


class ChunkReader:
    """Reads store chunks for prediction: flux, mask, snr, ids, aux and keep flags; never ivar or labels.

    The arrays are opened once, and consecutive chunks are read as one block of at most
    :data:`READ_BLOCK_ROWS` rows (at least one chunk), each compressed chunk decoded once.
    """

    def __init__(self, store: Store, split: SplitSpec | None, split_name: str | None) -> None:
        self.store = store
        self.spec = split or SplitSpec()
        self.split_name = split_name
        self.ranges = store.chunk_ranges()
        self.aux_names = list(store.layout.aux)
        names = ["source_id", "flux", "mask", "snr", "keep"]
        names += [f"aux/{k}" for k in self.aux_names] + [f"aux/{k}_missing" for k in self.aux_names]
        self.arrays = {name: store.array(name) for name in names}

    def blocks(self, chunks: list[int]) -> list[list[int]]:
        """``chunks`` (ascending) grouped into runs of consecutive chunks of at most READ_BLOCK_ROWS rows."""
        blocks: list[list[int]] = []
        for chunk in chunks:
            last = blocks[-1] if blocks else None
            if (
                last is not None
                and chunk == last[-1] + 1
                and self.ranges[chunk][1] - self.ranges[last[0]][0] <= READ_BLOCK_ROWS
            ):
                last.append(chunk)
            else:
                blocks.append([chunk])
        return blocks

    def read(self, chunks: list[int]) -> list[ChunkInputs]:
        """The inputs of the consecutive ``chunks``, read as one block."""
        start, stop = self.ranges[chunks[0]][0], self.ranges[chunks[-1]][1]
        block = {name: array[start:stop] for name, array in self.arrays.items()}
        wanted = rows_in_split(
            self.store, start, stop, self.split_name, self.spec, keep=block["keep"], ids=block["source_id"]
        )
        out = []
        for chunk in chunks:
            a, b = (i - start for i in self.ranges[chunk])
            rows = np.flatnonzero(wanted[a:b])
            every = rows.size == b - a

            def take(name: str, a: int = a, b: int = b, rows: np.ndarray = rows, every: bool = every) -> np.ndarray:
                values = block[name][a:b]
                return values if every else values[rows]

            n = rows.size
            aux_names = self.aux_names
            aux = np.concatenate([take(f"aux/{k}") for k in aux_names], axis=1) if aux_names else np.zeros((n, 0))
            missing = (
                np.concatenate([take(f"aux/{k}_missing") for k in aux_names], axis=1)
                if aux_names
                else np.zeros((n, 0), bool)
            )
            out.append(
                ChunkInputs(
                    chunk,
                    self.ranges[chunk][0],
                    rows,
                    np.asarray(take("source_id")),
                    take("flux"),
                    take("mask"),
                    take("snr"),
                    aux,
                    missing,
                )
            )
        return out


def read_ahead(
    reader: ChunkReader, chunks: list[int], prepare: Callable[[ChunkInputs], ChunkInputs] | None = None
) -> Iterator[ChunkInputs]:
    """The inputs of ``chunks`` in order, the next block read (and ``prepare``-d) by a background thread.

    Reading (zarr decompression) and ``prepare`` (e.g. :func:`prepare_chunk`) then overlap the networks'
    work on the current block; at most two blocks are held.
    """
    from concurrent.futures import ThreadPoolExecutor

    def load(block: list[int]) -> list[ChunkInputs]:
        return [prepare(i) for i in reader.read(block)] if prepare is not None else reader.read(block)

    blocks = reader.blocks(chunks)
    pool = ThreadPoolExecutor(1, thread_name_prefix="starlabel-read")
    pending = None
    try:
        for index in range(len(blocks)):
            current = pending if pending is not None else pool.submit(load, blocks[index])
            pending = pool.submit(load, blocks[index + 1]) if index + 1 < len(blocks) else None
            yield from current.result()
    finally:
        if pending is not None:
            pending.cancel()
        pool.shutdown(wait=True)


def predict_chunk(
    bundle: Bundle,
    ensemble: Ensemble,
    store: Store,
    chunk: int,
    split: SplitSpec | None,
    split_name: str | None,
    inputs: ChunkInputs | None = None,
) -> dict[str, np.ndarray]:
    """Catalogue rows of one store chunk (the kept rows, of ``split_name`` when given).

    ``inputs`` are the chunk's arrays when already read (by :func:`read_ahead`); by default they are read here.
    """
    if inputs is None:
        inputs = ChunkReader(store, split, split_name).read([chunk])[0]
    start = inputs.start
    missing = inputs.missing
    labels = bundle.labels
    n = len(inputs.rows)
    pixels = bundle.transform.pixels
    if pixels.size:
        whole = pixels.size == inputs.flux.shape[1] and bool((pixels == np.arange(pixels.size)).all())
        fed_flux, fed_mask = (inputs.flux, inputs.mask) if whole else (inputs.flux[:, pixels], inputs.mask[:, pixels])
        bad = ~np.isfinite(fed_flux)
        bad |= fed_mask
        masked_fraction = np.count_nonzero(bad, axis=1) / pixels.size  # exactly the mean of the bad flags
    else:
        masked_fraction = np.zeros(n)
    no_data = (1.0 - masked_fraction) <= MIN_GOOD_FRACTION if pixels.size else np.zeros(n, bool)
    ids = inputs.source_id if inputs.source_id.dtype.kind in "iu" else np.array(inputs.source_id.tolist(), dtype=str)
    out: dict[str, np.ndarray] = {"source_id": ids}
    if n:
        prepare_chunk(bundle, ensemble, inputs)
        x, a = inputs.network  # type: ignore[misc]
        pred = ensemble.predict(x, a, seed=start)
        ood_score = inputs.ood_score
    else:
        empty = np.zeros((0, len(labels)))
        from starlabel.ensemble import Prediction

        pred = Prediction(empty, empty, empty, empty)
        ood_score = np.zeros(0)
    mean = np.where(no_data[:, None], np.nan, pred.mean)
    for i, name in enumerate(labels):
        out[name] = mean[:, i].astype(np.float32)
        out[f"{name}_err"] = np.where(no_data, np.nan, pred.error[:, i]).astype(np.float32)
        out[f"{name}_err_ensemble"] = np.where(no_data, np.nan, np.sqrt(pred.var_ensemble[:, i])).astype(np.float32)
        if bundle.card.mc_dropout:
            out[f"{name}_err_mc"] = np.where(no_data, np.nan, np.sqrt(pred.var_mc[:, i])).astype(np.float32)
        if bundle.card.heteroscedastic:
            out[f"{name}_err_model"] = np.where(no_data, np.nan, np.sqrt(pred.var_model[:, i])).astype(np.float32)
    boundary = np.where(no_data, 0, bundle.coverage.outside(mean)).astype(np.int32)
    sparse = ~no_data & bundle.coverage.sparse(mean)
    ood = ~no_data & (ood_score > 1.0)
    flag = np.zeros(n, np.int32)
    for name, hit in (
        ("boundary", boundary != 0),
        ("sparse", sparse),
        ("ood", ood),
        ("no_data", no_data),
        ("aux_missing", missing.any(axis=1)),
    ):
        flag |= np.where(hit, FLAGS[name][0], 0).astype(np.int32)
    out["ood_score"] = np.asarray(ood_score, np.float32)
    out["flag_boundary"] = boundary
    out["flag"] = flag
    out["snr"] = inputs.snr.astype(np.float32)
    out["masked_fraction"] = masked_fraction.astype(np.float32)
    return out


@dataclass
class PredictionPlan:
    """What a prediction run writes, worked out before any chunk is predicted.

    The single-process run (:func:`predict`) and the Dask run (:func:`starlabel.predict_dask.predict_dask`)
    build the same plan, so they write the same parts, fingerprint and header, hence the same catalogue.
    """

    bundle: Bundle
    store: Store
    ensemble: Ensemble
    split: str | None
    spec: SplitSpec | None
    columns: list[Column]
    chunks: list[tuple[int, int]]
    fingerprint: dict[str, Any]
    header: dict[str, tuple[Any, str]]


def plan_prediction(
    bundle_path: str | Path,
    store_path: str | Path,
    plugins: Plugins,
    *,
    split: str | None = None,
    device: str = "cpu",
    mc_samples: int | None = None,
    engine: str = "fast",
) -> PredictionPlan:
    """Load the bundle, check it against the store, and work out the catalogue's columns, fingerprint and header.

    Raises
    ------
    starlabel.bundle.BundleError
        The bundle does not load or does not fit the store.
    """
    bundle = load_bundle(bundle_path, plugins, device)
    store = Store.open(store_path)
    check_compatible(bundle.card, store, Path(bundle_path))
    spec = None
    if split is not None:
        s = bundle.card.split
        spec = SplitSpec(int(s["seed"]), float(s["train"]), float(s["valid"]))
    ensemble = make_ensemble(bundle, device, mc_samples, engine)
    ids = store.array("source_id")
    id_dtype = "int64" if store.layout.id_kind != "str" else f"<U{max(1, _max_len(ids))}"
    fingerprint = {
        "bundle_sha256": bundle.card.weights.sha256,
        "store_descriptor_hash": store.descriptor_hash,
        "store_rows": store.n_rows,
        "split": split,
        "mc_samples": ensemble.mc_samples if ensemble.mc_dropout else None,
    }
    return PredictionPlan(
        bundle,
        store,
        ensemble,
        split,
        spec,
        catalogue_columns(bundle, id_dtype),
        store.chunk_ranges(),
        fingerprint,
        _header(bundle, store, split),
    )


def no_data_message(store: Store, chunk: int, table: dict[str, np.ndarray]) -> str | None:
    """The ``--strict`` refusal for a chunk's first spectrum with no usable pixel, or None when there is none."""
    bad = (table["flag"] & FLAGS["no_data"][0]) != 0
    if not bad.any():
        return None
    row = store.chunk_ranges()[chunk][0]
    return (
        f"{store.path}: source_id {table['source_id'][bad][0]} (chunk {chunk}, from row {row}) has no "
        "usable pixel; without --strict such spectra are flagged no_data and the run goes on"
    )


def predict(
    bundle_path: str | Path,
    store_path: str | Path,
    out: str | Path,
    plugins: Plugins,
    *,
    split: str | None = None,
    device: str = "cpu",
    mc_samples: int | None = None,
    overwrite: bool = False,
    strict: bool = False,
    progress: bool = True,
    engine: str = "fast",
    lanes: int | None = None,
) -> PredictReport:
    """Apply a bundle to every kept row of a store (or one split of it) and write the catalogue ``out``.

    This runs in one process; :func:`starlabel.predict_dask.predict_dask` (``starlabel predict --dask``)
    spreads the chunks over a Dask cluster and writes the same catalogue.

    Parameters
    ----------
    split : {"train", "valid", "test"}, optional
        Only the rows of this split of the bundle's training split (e.g. the held-out ``test`` stars).
    strict : bool
        Stop at the first spectrum that cannot be predicted instead of flagging it ``no_data``.
    lanes : int, optional
        Chunks predicted side by side on the CPU, each on one thread (:mod:`starlabel.lanes`); default one
        per torch CPU thread. Monte-Carlo dropout passes and accelerators use one lane (torch's own threads).

    Raises
    ------
    starlabel.bundle.BundleError
        The bundle does not fit the store.
    PredictionError
        In strict mode, for the first spectrum with no usable pixel.
    starlabel.catalogue.CatalogueError
        The output exists, is being written by another run, an interrupted run there used other inputs, or
        it cannot be written (read-only file system, no permission, disk full: the parts written so far
        are kept and the same command resumes).
    """
    started = time.perf_counter()
    plan = plan_prediction(
        bundle_path, store_path, plugins, split=split, device=device, mc_samples=mc_samples, engine=engine
    )
    n_chunks = len(plan.chunks)
    finished = _already_written(Path(out), plan.fingerprint, overwrite)
    if finished is not None:
        return PredictReport(Path(out), finished, n_chunks, n_chunks, seconds=time.perf_counter() - started)
    with open_catalogue(plan, out, overwrite) as writer:
        done = writer.done()
        with Progress(enabled=progress) as bar:
            task = bar.task("predict", total=n_chunks, completed=len(done))
            todo = [chunk for chunk in range(n_chunks) if chunk not in done]
            n_lanes = choose_lanes(lanes, device, not plan.ensemble.mc_dropout)
            reader = ChunkReader(plan.store, plan.spec, split)
            # one lane: the reading thread also makes the network inputs while torch's threads run the network;
            # several lanes: each makes its own chunk's inputs on its own core
            prepare = (lambda i: prepare_chunk(plan.bundle, plan.ensemble, i)) if n_lanes == 1 else None

            def table(inputs: ChunkInputs) -> tuple[int, dict[str, np.ndarray]]:
                return inputs.chunk, predict_chunk(
                    plan.bundle, plan.ensemble, plan.store, inputs.chunk, plan.spec, split, inputs
                )

            with one_thread_kernels(n_lanes > 1):
                warm_up(plan.ensemble)
                prepared = read_ahead(reader, todo, prepare)
                tables = ordered_map(table, prepared, n_lanes)
                with contextlib.closing(prepared), contextlib.closing(tables):  # on an error, stop the threads now
                    for chunk, rows in tables:
                        refusal = no_data_message(plan.store, chunk, rows) if strict else None
                        if refusal is not None:
                            raise PredictionError(refusal)
                        writer.write_part(chunk, rows)
                        bar.advance(task)
        return finish_catalogue(writer, len(done), started)


def open_catalogue(plan: PredictionPlan, out: str | Path, overwrite: bool) -> CatalogueWriter:
    """The catalogue writer of ``plan`` (takes the lock; resumes the parts of an interrupted run)."""
    return CatalogueWriter(
        out,
        plan.columns,
        n_parts=len(plan.chunks),
        fingerprint=plan.fingerprint,
        header=plan.header,
        overwrite=overwrite,
    )


def finish_catalogue(writer: CatalogueWriter, resumed: int, started: float) -> PredictReport:
    """Count rows and flags from the parts on disk, assemble the catalogue, and report the run."""
    flagged = {name: 0 for name in FLAGS}
    no_data_ids: list[str] = []
    rows = 0
    for chunk_table in _parts_summary(writer):
        rows += chunk_table["n"]
        for name, (bit, _) in FLAGS.items():
            flagged[name] += int(((chunk_table["flag"] & bit) != 0).sum())
        no_data_ids += [str(i) for i in chunk_table["no_data_ids"]]
    writer.finish()
    return PredictReport(writer.out, rows, writer.n_parts, resumed, flagged, no_data_ids, time.perf_counter() - started)


def _already_written(out: Path, fingerprint: dict[str, Any], overwrite: bool) -> int | None:
    """Rows of ``out`` when it is the finished catalogue of this very run (same fingerprint), else None.

    A run killed after renaming its catalogue into place but before removing its parts and lock is
    finished: the leftovers are removed (unless a live process holds the lock).
    """
    import json
    import shutil
    import socket

    from starlabel.catalogue import CatalogueError, read_catalogue

    if overwrite or not out.is_file():
        return None
    try:
        columns, meta = read_catalogue(out)
    except CatalogueError:
        return None
    if meta.get("fingerprint") != json.loads(json.dumps(fingerprint)):
        return None
    lock = Path(str(out) + ".lock")
    if lock.exists():
        try:
            holder = json.loads(lock.read_text())
            pid = int(holder["pid"])
            os.kill(pid, 0)
            if holder.get("host") == socket.gethostname():
                return None  # a live writer: let the writer report it
        except ProcessLookupError:
            pass
        except (OSError, ValueError, KeyError, TypeError):
            return None
        lock.unlink(missing_ok=True)
    shutil.rmtree(Path(str(out) + ".parts"), ignore_errors=True)
    return len(next(iter(columns.values()))) if columns else 0


def _parts_summary(writer: CatalogueWriter) -> Any:
    """Per part: row count, flags and the ids flagged no_data (read back from the parts on disk)."""
    names = [c.name for c in writer.columns]
    flag_key, id_key = f"c{names.index('flag')}", f"c{names.index('source_id')}"
    for path in sorted(writer.parts_dir.glob("part-*.npz")):
        with np.load(path, allow_pickle=False) as part:
            flag = part[flag_key]
            yield {"n": len(flag), "flag": flag, "no_data_ids": part[id_key][(flag & FLAGS["no_data"][0]) != 0]}


def _max_len(ids: Any) -> int:
    longest = 0
    for start in range(0, ids.shape[0], 1 << 16):
        values = np.asarray(ids[start : start + (1 << 16)]).tolist()  # zarr gives numpy StringDType for text ids
        if values:
            longest = max(longest, max(len(str(v)) for v in values))
    return longest


def _header(bundle: Bundle, store: Store, split: str | None) -> dict[str, tuple[Any, str]]:
    card = bundle.card
    header: dict[str, tuple[Any, str]] = {
        "SURVEY": (store.meta["descriptor"]["name"], "survey descriptor of the store"),
        "MODEL": (card.descriptor["name"], "descriptor the model was trained with"),
        "MODELSHA": (card.weights.sha256[:16], "SHA-256 (first 16 hex) of the model weights"),
        "ARCH": (card.architecture.name, "network architecture"),
        "NMEMBER": (card.members, "ensemble members"),
        "SPLIT": (split or "all", "which rows of the store were predicted"),
    }
    for name, (bit, meaning) in FLAGS.items():
        header[f"COMMENT{bit}"] = (f"flag bit {bit} ({name}): {meaning}", "")
    for i, label in enumerate(bundle.labels):
        header[f"COMMENTB{i}"] = (f"flag_boundary bit {1 << i}: {label} outside the training range", "")
    return header
