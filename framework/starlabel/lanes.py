"""Prediction lanes: chunks predicted side by side, one per CPU thread, results handed back in order.

A small network on one core runs its convolutions more efficiently than the same network split over
several threads (no synchronisation inside each layer), so on a CPU a prediction run is faster with one
chunk per core than with every core on one chunk. :func:`ordered_map` runs a function over items on
``lanes`` threads and yields the results in the items' order; :func:`one_thread_kernels` makes torch
and the BLAS under numpy use one thread each meanwhile (their own thread pools would otherwise
oversubscribe the cores), and restores them afterwards.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from starlabel.errors import StarlabelError

Item = TypeVar("Item")
Result = TypeVar("Result")


class LanesError(StarlabelError, ValueError):
    """An impossible number of lanes was asked for."""

    exit_code = 2


def choose_lanes(requested: int | None, device: str, deterministic: bool) -> int:
    """How many lanes a prediction run uses.

    Parameters
    ----------
    requested : int or None
        What the user asked for (``--lanes``); None: as many as torch has CPU threads.
    device : str
        ``cpu`` or an accelerator: an accelerator runs one lane (its kernels are already parallel).
    deterministic : bool
        False for Monte-Carlo dropout passes, which use torch's global random generator and so run in one lane.

    Raises
    ------
    LanesError
        ``requested`` is below 1.
    """
    if requested is not None and requested < 1:
        raise LanesError(f"lanes must be at least 1 (or left out for one per CPU thread), got {requested}")
    import torch

    if torch.device(device).type != "cpu" or not deterministic:
        return 1
    return int(requested) if requested is not None else max(1, torch.get_num_threads())


@contextlib.contextmanager
def one_thread_kernels(active: bool = True) -> Iterator[None]:
    """Within the block, torch and numpy's BLAS each compute on the calling thread only (when ``active``)."""
    if not active:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _blas_one_thread():
            yield
    finally:
        torch.set_num_threads(before)


def _blas_one_thread() -> contextlib.AbstractContextManager[Any]:
    """numpy's BLAS limited to one thread (threadpoolctl), or nothing where threadpoolctl is absent."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the ml extra
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def ordered_map(fn: Callable[[Item], Result], items: Iterable[Item], lanes: int) -> Iterator[Result]:
    """``fn(item)`` for every item, on ``lanes`` threads, yielded in the items' order.

    At most ``2 * lanes`` items are taken from ``items`` ahead of the result being yielded, so a lazy
    ``items`` (e.g. chunks read from disk) is held in memory only that far ahead. With one lane, ``fn``
    runs on the calling thread. An exception from ``fn`` is raised when its result is due; items not yet
    started are then dropped. Closing the generator early waits for the running calls to end.
    """
    if lanes <= 1:
        for item in items:
            yield fn(item)
        return
    pool = ThreadPoolExecutor(lanes, thread_name_prefix="starlabel-lane")
    pending: deque[Future[Result]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * lanes:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
