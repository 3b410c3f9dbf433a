"""Streaming prediction: a bundle applied to a store, chunk by chunk, into a FITS or Parquet catalogue.

Each store chunk becomes one catalogue part, written atomically; a run that is killed and re-run skips
the parts already written and the assembled catalogue has every row once, in store order. Monte-Carlo
dropout passes are seeded by the chunk's first row, so a chunk gives the same numbers whenever and
wherever it is computed (resumed runs, Dask workers).

Catalogue columns: ``source_id`` first; per label its value, total uncertainty ``_err`` and the parts
``_err_ensemble``, ``_err_mc`` (MC-dropout networks) and ``_err_model`` (heteroscedastic networks);
``ood_score``; ``flag_boundary`` (bit i: label i outside the training range); ``flag`` (bits in
:data:`FLAGS`, documented in the catalogue header); ``snr`` and ``masked_fraction`` of the input.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.bundle import Bundle, check_compatible, load_bundle
from starlabel.catalogue import CatalogueWriter, Column
from starlabel.data import SplitSpec, rows_in_split
from starlabel.ensemble import Ensemble
from starlabel.errors import StarlabelError
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


def make_ensemble(bundle: Bundle, device: str = "cpu", mc_samples: int | None = None) -> Ensemble:
    """The :class:`Ensemble` of a loaded bundle."""
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


def predict_chunk(
    bundle: Bundle, ensemble: Ensemble, store: Store, chunk: int, split: SplitSpec | None, split_name: str | None
) -> dict[str, np.ndarray]:
    """Catalogue rows of one store chunk (the kept rows, of ``split_name`` when given)."""
    start, stop = store.chunk_ranges()[chunk]
    rows = np.flatnonzero(rows_in_split(store, start, stop, split_name, split or SplitSpec()))
    batch = store.read(start, stop).take(rows)
    labels = bundle.labels
    n = len(rows)
    aux = (
        np.concatenate([batch.aux[k][0] for k in store.layout.aux], axis=1) if store.layout.aux else np.zeros((n, 0))
    )
    missing = (
        np.concatenate([batch.aux[k][1] for k in store.layout.aux], axis=1)
        if store.layout.aux
        else np.zeros((n, 0), bool)
    )
    pixels = bundle.transform.pixels
    fed_mask = batch.mask[:, pixels] | ~np.isfinite(batch.flux[:, pixels])
    masked_fraction = fed_mask.mean(axis=1) if pixels.size else np.zeros(n)
    no_data = (1.0 - masked_fraction) <= MIN_GOOD_FRACTION if pixels.size else np.zeros(n, bool)
    ids = batch.source_id if batch.source_id.dtype.kind in "iu" else np.array(batch.source_id.tolist(), dtype=str)
    out: dict[str, np.ndarray] = {"source_id": ids}
    if n:
        x, a = ensemble.inputs(batch.flux, batch.mask, aux, missing)
        pred = ensemble.predict(x, a, seed=start)
        features = np.concatenate([x.cpu().numpy(), a.cpu().numpy()], axis=1)
        ood_score = bundle.ood.score(features) / bundle.ood.threshold if bundle.ood is not None else np.zeros(n)
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
    out["snr"] = batch.snr.astype(np.float32)
    out["masked_fraction"] = masked_fraction.astype(np.float32)
    return out


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
) -> PredictReport:
    """Apply a bundle to every kept row of a store (or one split of it) and write the catalogue ``out``.

    Parameters
    ----------
    split : {"train", "valid", "test"}, optional
        Only the rows of this split of the bundle's training split (e.g. the held-out ``test`` stars).
    strict : bool
        Stop at the first spectrum that cannot be predicted instead of flagging it ``no_data``.

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
    bundle = load_bundle(bundle_path, plugins, device)
    store = Store.open(store_path)
    check_compatible(bundle.card, store, Path(bundle_path))
    spec = None
    if split is not None:
        s = bundle.card.split
        spec = SplitSpec(int(s["seed"]), float(s["train"]), float(s["valid"]))
    ensemble = make_ensemble(bundle, device, mc_samples)
    ids = store.array("source_id")
    id_dtype = "int64" if store.layout.id_kind != "str" else f"<U{max(1, _max_len(ids))}"
    columns = catalogue_columns(bundle, id_dtype)
    chunks = store.chunk_ranges()
    fingerprint = {
        "bundle_sha256": bundle.card.weights.sha256,
        "store_descriptor_hash": store.descriptor_hash,
        "store_rows": store.n_rows,
        "split": split,
        "mc_samples": ensemble.mc_samples if ensemble.mc_dropout else None,
    }
    header = _header(bundle, store, split)
    finished = _already_written(Path(out), fingerprint, overwrite)
    if finished is not None:
        return PredictReport(Path(out), finished, len(chunks), len(chunks), seconds=time.perf_counter() - started)
    flagged = {name: 0 for name in FLAGS}
    no_data_ids: list[str] = []
    rows = 0
    with CatalogueWriter(out, columns, n_parts=len(chunks), fingerprint=fingerprint, header=header, overwrite=overwrite) as writer:
        done = writer.done()
        with Progress(enabled=progress) as bar:
            task = bar.task("predict", total=len(chunks), completed=len(done))
            for chunk in range(len(chunks)):
                if chunk in done:
                    continue
                table = predict_chunk(bundle, ensemble, store, chunk, spec, split)
                bad = (table["flag"] & FLAGS["no_data"][0]) != 0
                if strict and bad.any():
                    row = chunks[chunk][0]
                    raise PredictionError(
                        f"{store.path}: source_id {table['source_id'][bad][0]} (chunk {chunk}, from row {row}) has no "
                        "usable pixel; without --strict such spectra are flagged no_data and the run goes on"
                    )
                writer.write_part(chunk, table)
                bar.advance(task)
        for chunk_table in _parts_summary(writer):
            rows += chunk_table["n"]
            for name, (bit, _) in FLAGS.items():
                flagged[name] += int(((chunk_table["flag"] & bit) != 0).sum())
            no_data_ids += [str(i) for i in chunk_table["no_data_ids"]]
        writer.finish()
    return PredictReport(Path(out), rows, len(chunks), len(done), flagged, no_data_ids, time.perf_counter() - started)


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
