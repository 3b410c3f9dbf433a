"""Reading one input file in a background thread, part by part, a few parts ahead of the ingest loop."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from starlabel.containers import Spectra


class FileReading:
    """The parts of one file, read in a background thread at most :attr:`ahead` parts ahead of the consumer.

    The next file can then be read while this one's last parts are prepared and committed. Errors of the
    reader are raised where the consumer reaches them, in file order.
    """

    ahead = 4

    def __init__(self, read: Callable[[], Iterator[Spectra]]) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=self.ahead)
        self._stop = threading.Event()
        self._read = threading.Event()  # set once the reader has handed over its last part (or failed)
        self._thread = threading.Thread(target=self._produce, args=(read,), name="starlabel-ingest-read", daemon=True)
        self._thread.start()

    def _produce(self, read: Callable[[], Iterator[Spectra]]) -> None:
        try:
            parts = read()
            try:
                for part in parts:
                    if not self._put(("part", part)):
                        return
            finally:
                close = getattr(parts, "close", None)
                if close is not None:
                    close()
            item: tuple[str, Any] = ("end", None)
        except BaseException as error:  # handed to the consumer, raised there
            item = ("error", error)
        self._read.set()
        self._put(item)

    def _put(self, item: tuple[str, Any]) -> bool:
        """Queue ``item`` unless the consumer has stopped; False when it has."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def parts(self, when_read: Callable[[], None]) -> Iterator[Spectra]:
        """The parts, in order; ``when_read()`` is called once the reader has produced them all."""
        called = False
        while True:
            kind, value = self._queue.get()
            if not called and self._read.is_set():
                called = True
                when_read()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value

    def close(self) -> None:
        """Stop the reader (parts not taken are dropped) and wait for its thread."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
        self._thread.join()
