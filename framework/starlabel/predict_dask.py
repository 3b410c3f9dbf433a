"""Prediction on a Dask cluster: one task per store chunk, each task writing its own catalogue part.

``starlabel predict BUNDLE --store S --out CAT --dask`` starts a local cluster of ``--workers N``
processes (one thread each, torch limited to one thread); ``--dask tcp://host:8786`` connects to a
running Dask scheduler instead. Workers of such a scheduler must see the bundle, the store and the
folder of ``--out`` at the same paths as this process (a shared file system), and have starlabel and
the plugins that built the bundle installed.

How a run goes:

1. This process (the *parent*) loads the bundle, checks it against the store and works out the
   catalogue's columns, fingerprint and header exactly as :func:`starlabel.predict.predict` does
   (:func:`starlabel.predict.plan_prediction`); a finished catalogue of the same run is left as it is.
2. It takes the catalogue lock and prepares (or resumes) the parts folder with a
   :class:`~starlabel.catalogue.CatalogueWriter`, then connects to the cluster.
3. It submits one task per chunk whose part is not on disk yet, ``pure=False``, with ``retries``, and a
   key made of a hash of everything the task is given (paths, fingerprint, options) and the chunk
   number: the same command gives the same keys, and a task still known to the scheduler from an
   interrupted identical run is reused, never one that was asked for something else. A task
   (:func:`predict_part`) opens the bundle (cached per worker process, keyed by bundle path and weights
   SHA-256) and the store itself, runs :func:`~starlabel.predict.predict_chunk`, and writes its part
   atomically through :class:`~starlabel.catalogue.CatalogueParts`, only into a parts folder whose run
   record is this run's (a late task of an abandoned run cannot write into a run with other inputs). It
   returns a few numbers, never the table.
4. The parent follows the tasks with ``as_completed`` (the progress bar), then counts, assembles and
   fingerprints the catalogue as the single-process run does.

Same numbers. Monte-Carlo dropout passes are seeded by the chunk's first row and a worker process
predicts its chunks one at a time (the seeding uses torch's global generator), so every part is the
same file whichever worker writes it, and the catalogue is the single-process run's, byte for byte,
where the workers run the same torch build with the same number of threads.

Failures. A worker that dies mid-task has its task re-run by the scheduler on a live worker (the nanny of
a local cluster restarts the dead one); a task that raises an unexpected exception is re-run up to
``retries`` times. A :class:`~starlabel.errors.StarlabelError` inside a task (a bundle the worker cannot
load, a part that cannot be written) is not retried: the parent raises :class:`DaskPredictionError`
naming the chunk. Whatever stops a run, the parts written so far stay, and the same command (with or
without ``--dask``) resumes it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlabel.catalogue import CatalogueParts, Column
from starlabel.errors import StarlabelError
from starlabel.predict import (
    PredictionError,
    PredictReport,
    _already_written,
    finish_catalogue,
    no_data_message,
    open_catalogue,
    plan_prediction,
    predict_chunk,
)
from starlabel.progress import Progress

if TYPE_CHECKING:
    from starlabel.bundle import Bundle
    from starlabel.ensemble import Ensemble
    from starlabel.plugins import Plugins

LOCAL = "local"
"""The ``--dask`` value that means "start a local cluster" (what ``--dask`` alone gives)."""

DEFAULT_WORKERS = 2
DEFAULT_RETRIES = 3
CONNECT_TIMEOUT_S = 10.0
"""How long to try to reach a scheduler given by address before giving up."""

KEY_PREFIX = "starlabel-predict"

_PREDICT_LOCK = threading.Lock()  # one chunk at a time per worker process: MC seeding uses torch's global RNG


class DaskPredictionError(PredictionError):
    """A prediction on a Dask cluster failed: a chunk's task failed, or the cluster cannot be used."""


class SchedulerUnreachableError(DaskPredictionError):
    """The Dask scheduler at the given address cannot be reached."""


# ------------------------------------------------------------------------------------------------- parent
def predict_dask(
    bundle_path: str | Path,
    store_path: str | Path,
    out: str | Path,
    plugins: Plugins,
    *,
    address: str | None = None,
    workers: int = DEFAULT_WORKERS,
    retries: int = DEFAULT_RETRIES,
    client: Any = None,
    connect_timeout: float | None = None,
    split: str | None = None,
    device: str = "cpu",
    mc_samples: int | None = None,
    overwrite: bool = False,
    strict: bool = False,
    progress: bool = True,
    engine: str = "fast",
) -> PredictReport:
    """Write the catalogue of :func:`starlabel.predict.predict`, computing the chunks on a Dask cluster.

    Parameters
    ----------
    address : str, optional
        Scheduler address (``tcp://host:8786``). None or ``"local"``: start a local cluster of
        ``workers`` processes, one thread each, closed at the end of the run.
    workers : int
        Worker processes of the local cluster (ignored with ``address`` or ``client``).
    retries : int
        Times a chunk's task is re-run after it raised an unexpected exception.
    client : distributed.Client, optional
        Use this client (and its cluster) instead; it is left open.
    connect_timeout : float, optional
        Seconds to try to reach the scheduler at ``address`` (default :data:`CONNECT_TIMEOUT_S`).
    split, device, mc_samples, overwrite, strict, progress, engine
        As for :func:`starlabel.predict.predict`; ``device`` is the workers' device.

    Returns
    -------
    PredictReport

    Raises
    ------
    SchedulerUnreachableError
        No scheduler answers at ``address`` within ``connect_timeout`` seconds.
    DaskPredictionError
        A chunk's task failed (after its retries, or at once for a starlabel error on the worker).
    PredictionError
        In strict mode, for a spectrum with no usable pixel (the first one reported by a worker).
    starlabel.bundle.BundleError, starlabel.catalogue.CatalogueError
        As for :func:`starlabel.predict.predict`.
    """
    started = time.perf_counter()
    if client is not None and address not in (None, LOCAL):
        raise ValueError("give either a client or an address, not both")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise DaskPredictionError(f"--workers must be an integer >= 1, not {workers!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise DaskPredictionError(f"--retries must be an integer >= 0, not {retries!r}")
    out = Path(out).absolute()  # workers resolve paths on their own machines
    plan = plan_prediction(
        bundle_path, store_path, plugins, split=split, device="cpu", mc_samples=mc_samples, engine=engine
    )
    n_chunks = len(plan.chunks)
    finished = _already_written(out, plan.fingerprint, overwrite)
    if finished is not None:
        return PredictReport(out, finished, n_chunks, n_chunks, seconds=time.perf_counter() - started)
    local = client is None and address in (None, LOCAL)
    with open_catalogue(plan, out, overwrite) as writer:
        done = writer.done()
        todo = [chunk for chunk in range(n_chunks) if chunk not in done]
        if todo:
            job = {
                "bundle": str(Path(bundle_path).absolute()),
                "weights_sha256": plan.bundle.card.weights.sha256,
                "store": str(Path(store_path).absolute()),
                "out": str(out),
                "columns": [asdict(c) for c in plan.columns],
                "n_parts": n_chunks,
                "fingerprint": plan.fingerprint,
                "split": split,
                "split_spec": asdict(plan.spec) if plan.spec is not None else None,
                "device": device,
                "mc_samples": mc_samples,
                "engine": engine,
                "strict": strict,
                "plugin_environ": plugin_environ(plugins),
                "torch_threads": 1 if local else None,
            }
            run = _run_id(job)
            timeout = CONNECT_TIMEOUT_S if connect_timeout is None else connect_timeout
            try:
                with _connect(client, address, workers, timeout) as dask_client:
                    _run_tasks(dask_client, job, todo, plan.chunks, run, retries, progress, len(done))
            except SchedulerUnreachableError:
                if not writer.done():  # nothing was computed: leave no parts folder behind for a mistyped address
                    shutil.rmtree(writer.parts_dir, ignore_errors=True)
                raise
        return finish_catalogue(writer, len(done), started)


def _run_tasks(
    client: Any,
    job: dict[str, Any],
    todo: list[int],
    chunks: list[tuple[int, int]],
    run_id: str,
    retries: int,
    progress: bool,
    already: int,
) -> None:
    """Submit one task per chunk of ``todo`` and wait for all of them, advancing the progress bar."""
    from distributed import as_completed

    futures = {}
    with Progress(enabled=progress) as bar:
        if not client.scheduler_info().get("workers"):
            bar.note(f"the Dask scheduler {client.scheduler.address} has no worker yet: the tasks wait for one")
        task = bar.task("predict", total=len(chunks), completed=already)
        for chunk in todo:
            future = client.submit(predict_part, job, chunk, key=chunk_key(run_id, chunk), pure=False, retries=retries)
            futures[future.key] = (chunk, future)
        try:
            for future in as_completed([f for _, f in futures.values()]):
                chunk = futures[future.key][0]
                result = _result(future, chunk, chunks, job["out"], retries)
                if "error" in result:
                    raise DaskPredictionError(
                        f"{job['out']}: chunk {chunk} (rows {chunks[chunk][0]} to {chunks[chunk][1] - 1}) failed on "
                        f"Dask worker {result.get('worker', '?')}: {result['error']}; the parts written so far are "
                        "kept: fix the cause and re-run the same command to resume"
                    )
                if "strict" in result:
                    raise PredictionError(result["strict"])
                bar.advance(task)
        except BaseException:
            with contextlib.suppress(Exception):
                client.cancel([f for _, f in futures.values()])
            raise


def _result(future: Any, chunk: int, chunks: list[tuple[int, int]], out: str, retries: int) -> dict[str, Any]:
    """The task's metadata, or a :class:`DaskPredictionError` naming the chunk for whatever the task raised."""
    try:
        return dict(future.result())
    except StarlabelError:
        raise
    except Exception as error:  # the task's own exception (after its retries), KilledWorker, CancelledError
        start, stop = chunks[chunk]
        raise DaskPredictionError(
            f"{out}: chunk {chunk} (rows {start} to {stop - 1}) failed on the Dask cluster "
            f"(retried up to {retries} time(s)): {type(error).__name__}: {error}; the parts written so far are "
            "kept: re-run the same command to resume"
        ) from error


@contextlib.contextmanager
def _connect(client: Any, address: str | None, workers: int, timeout: float) -> Iterator[Any]:
    """The client to use: the one given, one connected to ``address``, or one on a new local cluster."""
    if client is not None:
        yield client
        return
    from distributed import Client

    if address in (None, LOCAL):
        with local_client(workers) as client_of_local_cluster:
            yield client_of_local_cluster
        return
    try:
        remote = Client(address, timeout=timeout)
    except Exception as error:  # OSError (timeout, refused), ValueError (bad scheme), garbage from a non-Dask port
        raise SchedulerUnreachableError(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({type(error).__name__}: {error}); "
            "check the address and that a scheduler runs there (`dask scheduler` prints it), or give --dask "
            "without an address for a local cluster"
        ) from None
    with remote:
        yield remote


@contextlib.contextmanager
def local_client(workers: int = DEFAULT_WORKERS) -> Iterator[Any]:
    """A client on a new local cluster of ``workers`` processes with one thread each; closed on exit.

    What ``--dask`` alone starts. Each worker process runs under a nanny, which starts it again if it
    dies; the nanny also sets ``OMP_NUM_THREADS=1`` in it, and the tasks set torch's threads to 1.
    """
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


def chunk_key(run_id: str, chunk: int) -> str:
    """The Dask key of chunk ``chunk``'s task in run ``run_id`` (see :func:`_run_id`)."""
    return f"{KEY_PREFIX}-{run_id}-{chunk:06d}"


def _run_id(job: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of everything the tasks are given: equal for equal commands only."""
    return hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:16]


def plugin_environ(plugins: Plugins) -> dict[str, str]:
    """The ``STARLABEL_*`` plugin switches that make a worker load the plugins ``plugins`` has loaded.

    Blocked plugins stay blocked; entry-point plugins are loaded only if this process loaded some.
    Plugin objects given to :func:`~starlabel.plugins.load_plugins` as ``extra`` cannot be sent to a
    worker: a bundle whose architecture comes from one fails on the workers (and says so).
    """
    from starlabel.plugins import DISABLE_ENV, NO_AUTOLOAD_ENV

    blocked = sorted(name for name, info in plugins.infos.items() if info.blocked)
    third_party = any(
        not info.builtin and not info.blocked and info.distribution != "(in-process)" for info in plugins.infos.values()
    )
    return {DISABLE_ENV: ",".join(blocked), NO_AUTOLOAD_ENV: "" if third_party else "1"}


# ------------------------------------------------------------------------------------------------- worker
def predict_part(job: dict[str, Any], chunk: int) -> dict[str, Any]:
    """One Dask task: predict store chunk ``chunk`` and write its catalogue part; return small metadata.

    ``job`` holds plain values only (paths, the columns, the fingerprint, options). The result is
    ``{"chunk", "rows", "worker"}``; or, without a part written, ``{"chunk", "worker", "strict": message}``
    (``--strict`` and a spectrum with no usable pixel) or ``{"chunk", "worker", "error": message}`` for
    a :class:`~starlabel.errors.StarlabelError`, which retrying would not cure. Other exceptions propagate,
    so that Dask retries the task.
    """
    from starlabel.data import SplitSpec
    from starlabel.store import Store

    worker = f"{socket.gethostname()} pid {os.getpid()}"
    try:
        spec = SplitSpec(**job["split_spec"]) if job["split_spec"] is not None else None
        with _PREDICT_LOCK:
            if job["torch_threads"]:
                import torch

                torch.set_num_threads(int(job["torch_threads"]))
            bundle, ensemble = _cached_bundle(
                job["bundle"],
                job["weights_sha256"],
                job["device"],
                job["mc_samples"],
                job["engine"],
                tuple(sorted(job["plugin_environ"].items())),
            )
            store = Store.open(job["store"])
            table = predict_chunk(bundle, ensemble, store, chunk, spec, job["split"])
        if job["strict"]:
            refusal = no_data_message(store, chunk, table)
            if refusal is not None:
                return {"chunk": chunk, "worker": worker, "strict": refusal}
        columns = [Column(**c) for c in job["columns"]]
        parts = CatalogueParts(job["out"], columns, n_parts=job["n_parts"], fingerprint=job["fingerprint"])
        parts.write_part(chunk, table)
    except StarlabelError as error:
        return {"chunk": chunk, "worker": worker, "error": f"{type(error).__name__}: {error}"}
    return {"chunk": chunk, "rows": len(table["source_id"]), "worker": worker}


@functools.lru_cache(maxsize=2)
def _cached_bundle(
    path: str, sha256: str, device: str, mc_samples: int | None, engine: str, environ: tuple[tuple[str, str], ...]
) -> tuple[Bundle, Ensemble]:
    """The bundle at ``path`` and its ensemble, loaded once per worker process (and checked to be ``sha256``)."""
    from starlabel.bundle import BundleError, load_bundle
    from starlabel.predict import make_ensemble

    bundle = load_bundle(path, _cached_plugins(environ), device)
    if bundle.card.weights.sha256 != sha256:
        found = bundle.card.weights.sha256
        raise BundleError(
            f"{path}: the bundle changed since this prediction started (weights SHA-256 {found[:16]}… on this "
            f"worker, {sha256[:16]}… when the run began); re-run the prediction"
        )
    return bundle, make_ensemble(bundle, device, mc_samples, engine)


@functools.lru_cache(maxsize=2)
def _cached_plugins(environ: tuple[tuple[str, str], ...]) -> Plugins:
    from starlabel.plugins import load_plugins

    return load_plugins(environ=dict(environ))
