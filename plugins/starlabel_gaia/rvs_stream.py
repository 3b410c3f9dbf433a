"""Streaming the text of a gzip-compressed (or plain) file line by line, noting truncation and corruption.

``gzip.GzipFile`` raises ``EOFError`` at a truncated end and can lose the data decoded in the same call;
here the raw stream is inflated with :mod:`zlib` directly, so every complete line before the damage is
delivered, and the damage is described in :attr:`TextStream.damage` instead of raised.

With ``prefetch=True`` the inflating runs in a background thread (zlib releases the GIL) a few chunks
ahead of the consumer, so decompression overlaps with parsing when a second core is free.

Inflating uses ``isal`` (python-isal, Intel ISA-L: about 2.7 times as fast as :mod:`zlib`) when it is
installed, else :mod:`zlib`. Both decode the same bytes; where the data is corrupt, the stream is decoded
again with :mod:`zlib` from its start (skipping what was delivered), so that the damage is described
exactly as without ``isal``.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Iterator
from types import ModuleType
from typing import BinaryIO

try:  # optional: the `data` extra installs it
    from isal import isal_zlib as _fast_zlib
except ImportError:  # pragma: no cover - depends on the environment
    _fast_zlib = None

GZIP_MAGIC = b"\x1f\x8b"
READ_BYTES = 1 << 20
"""Compressed bytes read per step (about 2.6 MB of Gaia bulk text)."""
PREFETCH_CHUNKS = 4
"""Decompressed chunks the background thread may hold ready."""
_END = object()
FAST_INFLATE: ModuleType | None = _fast_zlib
"""The faster zlib-compatible module used when the stream can be re-read after damage (None: zlib only)."""


class _FastFailed(Exception):
    """The fast inflater hit corrupt data: decode again with :mod:`zlib` for its exact description."""


class TextStream:
    """The lines of a binary stream, gzip or plain, as spans of decompressed chunks (see :meth:`spans`).

    Attributes
    ----------
    damage : str or None
        After iteration: why the stream ended early (truncated gzip stream, corrupt data), else None.
    tail : bytes
        After iteration: the unterminated piece after the last newline (empty for a well-formed file).
    lines_read : int
        Complete lines delivered so far.
    """

    def __init__(self, handle: BinaryIO, prefetch: bool = False) -> None:
        self._handle = handle
        self._prefetch = prefetch
        self._active: Iterator[bytes] | None = None
        self.damage: str | None = None
        self.tail = b""
        self.lines_read = 0

    @property
    def prefetching(self) -> bool:
        """True when background threads were asked for (decompression ahead of the consumer)."""
        return self._prefetch

    def chunks(self) -> Iterator[bytes]:
        """Decompressed (or plain) byte chunks of the whole stream."""
        self._active = self._prefetched() if self._prefetch else self._chunks()
        return self._active

    def close(self) -> None:
        """Stop reading: ends the background thread, if any, before the caller closes the handle."""
        if self._active is not None:
            self._active.close()  # type: ignore[attr-defined]
            self._active = None

    def _prefetched(self) -> Iterator[bytes]:
        """:meth:`_chunks` run in a background thread, at most :data:`PREFETCH_CHUNKS` ahead."""
        ready: queue.Queue[object] = queue.Queue(maxsize=PREFETCH_CHUNKS)
        stop = threading.Event()

        def hand_over(item: object) -> bool:
            """Queue ``item`` unless the consumer has stopped; False when it has."""
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for chunk in self._chunks():
                    if not hand_over(chunk):
                        return
                hand_over(_END)
            except BaseException as error:  # handed to the consumer, raised there
                hand_over(error)

        worker = threading.Thread(target=produce, name="rvs-inflate", daemon=True)
        worker.start()
        try:
            while (item := ready.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    ready.get(timeout=0.1)
                except queue.Empty:
                    pass
            worker.join()

    def _chunks(self) -> Iterator[bytes]:
        origin = self._position()
        first = self._handle.read(2)
        if first != GZIP_MAGIC:
            yield first
            while chunk := self._handle.read(READ_BYTES):
                yield chunk
            return
        fast = FAST_INFLATE
        if fast is None or origin is None:
            yield from self._inflate(first, zlib)
            return
        delivered = 0
        try:
            for out in self._inflate(first, fast):
                delivered += len(out)
                yield out
            return
        except _FastFailed:
            pass
        self._handle.seek(origin)  # corrupt data: zlib again from the start, for its own description
        skip = delivered
        for out in self._inflate(self._handle.read(2), zlib):
            if skip >= len(out):
                skip -= len(out)
                continue
            yield out[skip:] if skip else out
            skip = 0

    def _position(self) -> int | None:
        """Where the stream starts in a seekable handle, else None (no second decoding possible)."""
        try:
            return self._handle.tell() if self._handle.seekable() else None
        except (AttributeError, OSError, ValueError):
            return None

    def _inflate(self, first: bytes, inflate: ModuleType) -> Iterator[bytes]:
        """The decompressed chunks of gzip members read from the handle (``first``: bytes already read).

        ``inflate`` is :mod:`zlib` or a module with the same ``decompressobj`` interface; with another
        module than :mod:`zlib`, corrupt data raises :class:`_FastFailed` instead of being described.
        """
        decoder = inflate.decompressobj(wbits=31)
        pending = first
        consumed = 0
        while True:
            raw = pending + self._handle.read(READ_BYTES)
            pending = b""
            if not raw:
                if not decoder.eof:
                    self.damage = f"gzip stream truncated after {consumed} compressed bytes"
                return
            consumed += len(raw)
            try:
                out = decoder.decompress(raw)
            except inflate.error as error:
                if inflate is not zlib:
                    raise _FastFailed from None
                self.damage = f"corrupt gzip data within the first {consumed} compressed bytes ({error})"
                return
            if out:
                yield out
            if decoder.eof:
                rest = decoder.unused_data + self._handle.read(READ_BYTES)
                if not rest.strip(b"\x00"):
                    if self._handle.read(1):  # zero padding followed by more data: not a gzip member
                        self.damage = "unexpected data after the end of the gzip stream"
                    return
                if not rest.startswith(GZIP_MAGIC):
                    self.damage = "unexpected data after the end of the gzip stream"
                    return
                decoder = inflate.decompressobj(wbits=31)  # concatenated gzip members
                pending = rest

    def spans(self) -> Iterator[tuple[bytes, int, int]]:
        """Yield ``(buffer, start, end)`` for each complete line, without copying lines inside a chunk.

        ``buffer[start:end]`` is the line without its line end. Only a line that straddles two chunks is
        copied (once).
        """
        pending = b""
        for chunk in self.chunks():
            position = 0
            if pending:
                newline = chunk.find(b"\n")
                if newline < 0:
                    pending += chunk
                    continue
                line = pending + chunk[:newline]
                pending = b""
                self.lines_read += 1
                yield line, 0, len(line) - (line.endswith(b"\r"))
                position = newline + 1
            while (newline := chunk.find(b"\n", position)) >= 0:
                self.lines_read += 1
                yield chunk, position, newline - (newline > position and chunk[newline - 1] == 13)
                position = newline + 1
            pending = chunk[position:]
        self.tail = pending
