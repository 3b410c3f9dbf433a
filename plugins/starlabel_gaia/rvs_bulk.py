"""Gaia DR3 RVS bulk files: ``RvsMeanSpectrum_NNNNNN-MMMMMM.csv.gz``, one source per row.

Layout (Gaia DR3 documentation §13.2.5, ECSV; the column list as read by published readers of these
files): gzip-compressed ECSV, ``#`` YAML header lines, a CSV header line, then rows of
``source_id, solution_id, ra, dec, flux, flux_error, combined_transits, combined_ccds, deblended_ccds``
where ``flux`` and ``flux_error`` are JSON arrays of 2401 float32 values inside one double-quoted field,
``"[0.98,0.99,...]"``; missing elements are ``null`` or ``NaN``. The same layout without the gzip layer or
the ECSV header (DataLink ``RAW`` CSV/ECSV, arrays also as ``"(a, b, ...)"``) is read the same way.

The file is streamed: lines are decompressed (:mod:`starlabel_gaia.rvs_stream`), split on the quotes in
Python (a handful of operations per row) and the array text of :data:`ARROW_ROWS` rows at a time is parsed
in bulk by Arrow's CSV reader (:func:`starlabel_gaia.rvs_floats_arrow.parse_equal_lists`); a group it
declines (another spelling, a row of the wrong length) is parsed by
:func:`starlabel_gaia.rvs_floats.parse_lists`, :data:`PARSE_ROWS` rows at a time, with the same values.
:func:`iter_bulk` yields :class:`RvsBatch` of at most ``batch_rows`` rows (the first ones smaller), so
memory for text stays bounded whatever the file size; with ``prefetch``, batches are parsed in
:data:`PARSE_THREADS` threads (neither zlib/isal, Arrow nor numpy hold the GIL for long) and handed out in
file order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from starlabel.errors import DataFileError, MissingColumnError
from starlabel_gaia.rvs_batch import META_FLOAT, META_INT, RvsBatch
from starlabel_gaia.rvs_floats import Buffer, parse_lists
from starlabel_gaia.rvs_floats_arrow import parse_equal_lists
from starlabel_gaia.rvs_grid import RVS_PIXELS
from starlabel_gaia.rvs_stream import TextStream
from starlabel_gaia.rvs_text import column_names, parse_ecsv_header, split_fields, strip_array

BATCH_ROWS = 256
"""Rows per yielded batch."""
FIRST_BATCH_ROWS = 32
"""Rows of a file's first batch; the next ones double up to :data:`BATCH_ROWS`."""
ARROW_ROWS = 64
"""Rows whose arrays are parsed in one call of :func:`parse_equal_lists` (≈ 3.5 MB of text)."""
PARSE_ROWS = 16
"""Rows whose arrays are parsed in one call of the general parser, :func:`parse_lists`, where Arrow's
cannot read a group exactly (≈ 850 kB of text: large enough to amortise numpy's call overhead, small
enough for its temporaries to stay in cache)."""
PARSE_THREADS = 2
"""Threads parsing batches of one file when the stream prefetches (the caller asked for background work)."""
LAYOUT = (
    "expected layout (Gaia DR3 rvs_mean_spectrum bulk file, RvsMeanSpectrum_NNNNNN-MMMMMM.csv.gz): gzip "
    "ECSV/CSV with one row per source and columns source_id, solution_id, ra, dec, flux, flux_error, "
    "combined_transits, combined_ccds, deblended_ccds, where flux and flux_error are quoted arrays of "
    f'{RVS_PIXELS} values, "[v1,v2,...]"'
)
REQUIRED = ("source_id", "flux", "flux_error")


class _Batchlike(Protocol):
    """What :func:`iter_bulk` hands out: an :class:`RvsBatch`, or what ``finish`` made of one."""

    problems: list[str]


@dataclass
class _Columns:
    """Positions of the columns used, from the CSV header line."""

    count: int
    source_id: int
    flux: int
    flux_error: int
    meta: dict[str, int]


@dataclass
class _Counts:
    """Running totals of one file, for the closing checks."""

    rows: int = 0
    kept: int = 0
    wrong_length: int = 0
    lengths: tuple[int, int] | None = None
    first_problem: str = ""

    def merge(self, part: _Counts) -> None:
        """Add the totals of the next batch (in file order)."""
        self.rows += part.rows
        self.kept += part.kept
        self.wrong_length += part.wrong_length
        self.lengths = part.lengths or self.lengths
        self.first_problem = self.first_problem or part.first_problem


def read_bulk(source: Path | BinaryIO, label: str, prefetch: bool = False) -> RvsBatch:
    """Read every complete, well-formed row of a bulk (array-per-row) file.

    Parameters
    ----------
    source : Path or binary file object
        The file (gzip-compressed or plain).
    label : str
        How messages name it.
    prefetch : bool
        Decompress in a background thread, overlapping with parsing (see :mod:`starlabel_gaia.rvs_stream`).

    Returns
    -------
    RvsBatch
        All spectra, in file order; ``problems`` lists skipped rows and any truncation.

    Raises
    ------
    DataFileError
        No header line, no complete row, or every row with arrays of another length than 2401.
    MissingColumnError
        ``source_id``, ``flux`` or ``flux_error`` is absent.
    """
    return RvsBatch.concat(list(iter_bulk(source, label, prefetch=prefetch)))


def iter_bulk(
    source: Path | BinaryIO,
    label: str,
    batch_rows: int | None = None,
    prefetch: bool = False,
    finish: Callable[[RvsBatch], Any] | None = None,
) -> Iterator[Any]:
    """Yield the spectra of a bulk file in batches of at most ``batch_rows`` rows (default
    :data:`BATCH_ROWS`; see :func:`read_bulk`).

    ``finish``, when given, is applied to every batch where it is parsed (in the parsing threads when
    ``prefetch``), and its results (which must have a ``problems`` list) are yielded instead.
    """
    rows = batch_rows or BATCH_ROWS
    if isinstance(source, str | Path):
        with open(source, "rb") as handle:
            yield from _iter_closing(TextStream(handle, prefetch), label, rows, finish)
    else:
        yield from _iter_closing(TextStream(source, prefetch), label, rows, finish)


def _iter_closing(
    stream: TextStream, label: str, batch_rows: int, finish: Callable[[RvsBatch], Any] | None
) -> Iterator[Any]:
    """:func:`_iter_stream`, then stop the stream (and its thread) whatever happened."""
    try:
        yield from _iter_stream(stream, label, batch_rows, finish)
    finally:
        stream.close()


def _iter_stream(
    stream: TextStream, label: str, batch_rows: int, finish: Callable[[RvsBatch], Any] | None
) -> Iterator[_Batchlike]:
    """Header lines, the column line, then the data rows in batches; closing problems on the last batch."""
    spans = stream.spans()
    header: list[str] = []
    columns_line: bytes | None = None
    for buffer, start, end in spans:
        line = buffer[start:end]
        if line.startswith(b"#"):
            header.append(line.decode("utf-8", errors="replace"))
        elif line.strip():
            columns_line = line
            break
    if columns_line is None:
        why = f" ({stream.damage})" if stream.damage else ""
        raise DataFileError(label, f"no CSV header line found{why}; {LAYOUT}")
    ecsv = parse_ecsv_header(header)
    delimiter = ecsv.delimiter.encode()
    columns = _locate(column_names(columns_line.decode("utf-8", errors="replace"), ecsv.delimiter), label)

    counts = _Counts()
    submitted = 0  # rows handed to the parser so far
    parser = _OrderedParser(columns, delimiter, label, counts, PARSE_THREADS if stream.prefetching else 0, finish)
    try:
        pending: list[tuple[int, bytes, int, int]] = []
        size = min(FIRST_BATCH_ROWS, batch_rows)  # small first batches: both threads busy sooner
        for buffer, start, end in spans:
            if start == end or (buffer[start] in b" \t" and not buffer[start:end].strip()):
                continue  # blank line
            pending.append((stream.lines_read, buffer, start, end))
            if len(pending) >= size:
                parser.submit(pending)
                submitted += len(pending)
                pending = []
                size = min(2 * size, batch_rows)
                yield from parser.ready()
        closing: list[str] = []
        last = stream.lines_read + 1  # 1-based number of the unterminated piece, if any
        if stream.damage:
            dropped = f"; the incomplete line {last} after them was dropped" if stream.tail.strip() else ""
            closing.append(
                f"{label}: {stream.damage}: read the {submitted + len(pending)} complete rows before the damage{dropped}"
            )
        elif stream.tail.strip():
            pending.append((last, stream.tail, 0, len(stream.tail.rstrip())))  # a last row without a final newline
        if pending or closing:
            parser.submit(pending)
        batches = list(parser.ready(drain=True))
        if batches and closing:
            batches[-1].problems.extend(closing)
        yield from batches
    finally:
        parser.close()
    _close(counts, stream, label)


class _OrderedParser:
    """Parses batches of rows in up to ``threads`` worker threads (inline when 0), handing them back in order.

    numpy releases the GIL inside the parser's array operations, so two threads parse about twice as fast
    as one on two free cores; the results, problems and counts are the same as parsing in order.
    """

    def __init__(
        self,
        columns: _Columns,
        delimiter: bytes,
        label: str,
        counts: _Counts,
        threads: int,
        finish: Callable[[RvsBatch], Any] | None = None,
    ) -> None:
        self._args = (columns, delimiter, label, finish)
        self._counts = counts
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="rvs-parse") if threads else None
        self._limit = 2 * threads
        self._queue: deque[Future[tuple[_Batchlike, _Counts]] | tuple[_Batchlike, _Counts]] = deque()

    def submit(self, rows: list[tuple[int, bytes, int, int]]) -> None:
        """Queue one batch of rows."""
        if self._pool is None:
            self._queue.append(_parse_finish(rows, *self._args))
        else:
            self._queue.append(self._pool.submit(_parse_finish, rows, *self._args))

    def ready(self, drain: bool = False) -> Iterator[_Batchlike]:
        """The parsed batches at the head of the queue (all of them when ``drain``), their counts merged."""
        while self._queue and (drain or len(self._queue) > self._limit or self._done(self._queue[0])):
            item = self._queue.popleft()
            batch, part = item.result() if isinstance(item, Future) else item
            self._counts.merge(part)
            yield batch

    @staticmethod
    def _done(item: object) -> bool:
        return not isinstance(item, Future) or item.done()

    def close(self) -> None:
        """Stop the workers (batches still queued are dropped)."""
        if self._pool is not None:
            for item in self._queue:
                if isinstance(item, Future):
                    item.cancel()
            self._pool.shutdown(wait=True)
            self._pool = None


def _close(counts: _Counts, stream: TextStream, label: str) -> None:
    """Raise when no row could be read."""
    if counts.kept:
        return
    if counts.wrong_length and counts.wrong_length == counts.rows:
        found = f"{counts.lengths[0]} and {counts.lengths[1]}" if counts.lengths else "other numbers of"
        raise DataFileError(
            label,
            f"every row has flux/flux_error arrays of {found} values, not {RVS_PIXELS}: not Gaia DR3 RVS mean "
            f"spectra; {LAYOUT}",
        )
    if counts.rows == 0:
        why = f"{stream.damage} before the first complete row" if stream.damage else "no data rows"
        raise DataFileError(label, f"{why}; {LAYOUT}")
    raise DataFileError(
        label, f"none of the {counts.rows} rows could be read (first: {counts.first_problem}); {LAYOUT}"
    )


def _locate(names: list[str], label: str) -> _Columns:
    """Column positions; raises :class:`MissingColumnError` naming the layout."""
    for name in REQUIRED:
        if name not in names:
            raise MissingColumnError(label, name, names, LAYOUT)
    return _Columns(
        count=len(names),
        source_id=names.index("source_id"),
        flux=names.index("flux"),
        flux_error=names.index("flux_error"),
        meta={key: names.index(key) for key in (*META_INT, *META_FLOAT) if key in names},
    )


def _parse_finish(
    rows: list[tuple[int, bytes, int, int]],
    columns: _Columns,
    delimiter: bytes,
    label: str,
    finish: Callable[[RvsBatch], Any] | None,
) -> tuple[_Batchlike, _Counts]:
    """:func:`_parse_rows`, then ``finish`` on the batch (where given)."""
    batch, counts = _parse_rows(rows, columns, delimiter, label)
    return (batch if finish is None else finish(batch)), counts


def _parse_rows(
    rows: list[tuple[int, bytes, int, int]], columns: _Columns, delimiter: bytes, label: str
) -> tuple[RvsBatch, _Counts]:
    """Split the rows, parse their arrays in groups of :data:`PARSE_ROWS` and keep the well-formed ones;
    also the batch's counts."""
    counts = _Counts()
    problems: list[str] = []
    numbers: list[int] = []
    ids: list[int] = []
    flux_texts: list[Buffer] = []
    error_texts: list[Buffer] = []
    scalars: dict[str, list[bytes]] = {key: [] for key in columns.meta}
    for number, buffer, start, end in rows:
        counts.rows += 1
        split = _split_row(buffer, start, end, delimiter, columns)
        if isinstance(split, str):
            problems.append(f"{label}: line {number}: {split}; row skipped")
            continue
        fields, flux, error = split
        try:
            source_id = int(fields[columns.source_id])
        except ValueError:
            problems.append(
                f"{label}: line {number}: source_id {fields[columns.source_id][:30]!r} is not an integer; row skipped"
            )
            continue
        if not -(2**63) <= source_id < 2**63:
            problems.append(
                f"{label}: line {number}: source_id {fields[columns.source_id][:30]!r} does not fit in 64 bits; "
                "row skipped"
            )
            continue
        numbers.append(number)
        ids.append(source_id)
        flux_texts.append(flux)
        error_texts.append(error)
        for key, position in columns.meta.items():
            scalars[key].append(fields[position])

    flux = np.empty((len(ids), RVS_PIXELS), np.float32)
    error = np.empty((len(ids), RVS_PIXELS), np.float32)
    rejected: dict[int, tuple[int, int]] = {}  # row: the lengths of its flux and flux_error arrays
    for begin in range(0, len(ids), ARROW_ROWS):
        end = min(begin + ARROW_ROWS, len(ids))
        n = end - begin
        values = parse_equal_lists(flux_texts[begin:end] + error_texts[begin:end], RVS_PIXELS)
        if values is not None:
            np.copyto(flux[begin:end], values[:n], casting="same_kind")
            np.copyto(error[begin:end], values[n:], casting="same_kind")
            continue
        for first in range(begin, end, PARSE_ROWS):  # something Arrow does not read exactly: the general parser
            last = min(first + PARSE_ROWS, end)
            rejected.update(_parse_general(flux_texts, error_texts, first, last, flux, error))
    for row, (nf, ne) in sorted(rejected.items()):
        counts.wrong_length += 1
        counts.lengths = (nf, ne)
        problems.append(
            f"{label}: line {numbers[row]} (source_id {ids[row]}): flux has {_describe(nf)} and "
            f"flux_error {_describe(ne)}, expected {RVS_PIXELS} each; row skipped"
        )
    keep = [row for row in range(len(ids)) if row not in rejected]
    if rejected:
        flux, error = flux[keep], error[keep]
    counts.kept += len(keep)
    if problems and not counts.first_problem:
        counts.first_problem = problems[0]
    batch = RvsBatch.from_rows(
        [ids[k] for k in keep],
        flux,
        error,
        {key: [column[k] for k in keep] for key, column in scalars.items()},
        problems,
    )
    return batch, counts


def _parse_general(
    flux_texts: list[Buffer],
    error_texts: list[Buffer],
    begin: int,
    end: int,
    flux: np.ndarray,
    error: np.ndarray,
) -> dict[int, tuple[int, int]]:
    """Parse rows ``begin:end`` with :func:`parse_lists` into ``flux`` and ``error``; return the rows whose
    arrays do not both hold 2401 values, with their two lengths (-1: unparseable)."""
    values, lengths = parse_lists(flux_texts[begin:end] + error_texts[begin:end])
    n = end - begin
    if np.all(lengths == RVS_PIXELS):
        both = values.reshape(2, n, RVS_PIXELS)
        np.copyto(flux[begin:end], both[0], casting="same_kind")
        np.copyto(error[begin:end], both[1], casting="same_kind")
        return {}
    rejected = {}
    offsets = np.concatenate(([0], np.cumsum(np.maximum(lengths, 0))))
    for k in range(n):
        nf, ne = int(lengths[k]), int(lengths[n + k])
        if nf == RVS_PIXELS and ne == RVS_PIXELS:
            np.copyto(flux[begin + k], values[offsets[k] : offsets[k + 1]], casting="same_kind")
            np.copyto(error[begin + k], values[offsets[n + k] : offsets[n + k + 1]], casting="same_kind")
        else:
            rejected[begin + k] = (nf, ne)
    return rejected


def _split_row(
    buffer: bytes, start: int, end: int, delimiter: bytes, columns: _Columns
) -> tuple[list[bytes], Buffer, Buffer] | str:
    """Fields of one row, the flux and flux_error array texts (brackets removed), or what is wrong.

    The usual row, ``a,b,c,d,"[...]","[...]",e,f,g``, is split around its four quotes without copying the
    arrays (memoryview slices of ``buffer``); any other shape goes through :func:`split_fields`.
    """
    quotes: list[int] = []
    position = start
    while len(quotes) < 5 and (found := buffer.find(b'"', position, end)) >= 0:
        quotes.append(found)
        position = found + 1
    if len(quotes) == 4:
        before = buffer[start : quotes[0]].split(delimiter)
        after = buffer[quotes[3] + 1 : end].split(delimiter)
        first = len(before) - 1
        if (
            before[-1] == b""
            and after[0] == b""
            and buffer[quotes[1] + 1 : quotes[2]] == delimiter
            and len(before) + len(after) == columns.count
            and {first, first + 1} == {columns.flux, columns.flux_error}
        ):
            inner = [_inside(buffer, quotes[0] + 1, quotes[1]), _inside(buffer, quotes[2] + 1, quotes[3])]
            if inner[0] is not None and inner[1] is not None:
                view = memoryview(buffer)
                texts = [view[a:b] for a, b in inner]  # type: ignore[misc]
                fields = before[:-1] + [b"", b""] + after[1:]
                flux = texts[columns.flux - first]
                return fields, flux, texts[1 - (columns.flux - first)]
    fields = split_fields(buffer[start:end], delimiter)
    if fields is None or len(fields) != columns.count:
        return "unbalanced quotes" if fields is None else f"{len(fields)} fields, expected {columns.count}"
    flux, error = strip_array(fields[columns.flux]), strip_array(fields[columns.flux_error])
    if flux is None or error is None:
        return "flux/flux_error is not a quoted array"
    return fields, flux, error


def _inside(buffer: bytes, start: int, end: int) -> tuple[int, int] | None:
    """The span inside ``[...]`` or ``(...)`` (empty for an empty cell); None otherwise."""
    if start == end:
        return start, end
    if buffer[start] in b"[(" and buffer[end - 1] in b"])":
        return start + 1, end - 1
    return None


def _describe(count: int) -> str:
    """``2400 values`` or ``unparseable values``."""
    return "unparseable values" if count < 0 else f"{count} values"
