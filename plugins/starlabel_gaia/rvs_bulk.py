"""Gaia DR3 RVS bulk files: ``RvsMeanSpectrum_NNNNNN-MMMMMM.csv.gz``, one source per row.

Layout (Gaia DR3 documentation §13.2.5, ECSV; the column list as read by published readers of these
files): gzip-compressed ECSV, ``#`` YAML header lines, a CSV header line, then rows of
``source_id, solution_id, ra, dec, flux, flux_error, combined_transits, combined_ccds, deblended_ccds``
where ``flux`` and ``flux_error`` are JSON arrays of 2401 float32 values inside one double-quoted field,
``"[0.98,0.99,...]"``; missing elements are ``null`` or ``NaN``. The same layout without the gzip layer or
the ECSV header (DataLink ``RAW`` CSV/ECSV, arrays also as ``"(a, b, ...)"``) is read the same way.

The file is streamed: lines are decompressed with :mod:`zlib`, split on the quotes in Python (a handful
of operations per row) and the array text of :data:`PARSE_ROWS` rows at a time is parsed in bulk by
:func:`starlabel_gaia.rvs_floats.parse_lists`; :func:`iter_bulk` yields :class:`RvsBatch` of at most
``batch_rows`` rows, so memory for text stays bounded whatever the file size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from starlabel.errors import DataFileError, MissingColumnError
from starlabel_gaia.rvs_batch import META_FLOAT, META_INT, RvsBatch
from starlabel_gaia.rvs_floats import Buffer, parse_lists
from starlabel_gaia.rvs_grid import RVS_PIXELS
from starlabel_gaia.rvs_stream import TextStream
from starlabel_gaia.rvs_text import column_names, parse_ecsv_header, split_fields, strip_array

BATCH_ROWS = 256
"""Rows per yielded batch."""
PARSE_ROWS = 16
"""Rows whose arrays are parsed in one call (≈ 850 kB of text: large enough to amortise numpy's call
overhead, small enough for its temporaries to stay in cache)."""
PARSE_THREADS = 2
"""Threads parsing batches of one file when the stream prefetches (the caller asked for background work)."""
LAYOUT = (
    "expected layout (Gaia DR3 rvs_mean_spectrum bulk file, RvsMeanSpectrum_NNNNNN-MMMMMM.csv.gz): gzip "
    "ECSV/CSV with one row per source and columns source_id, solution_id, ra, dec, flux, flux_error, "
    "combined_transits, combined_ccds, deblended_ccds, where flux and flux_error are quoted arrays of "
    f'{RVS_PIXELS} values, "[v1,v2,...]"'
)
REQUIRED = ("source_id", "flux", "flux_error")


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
    source: Path | BinaryIO, label: str, batch_rows: int = BATCH_ROWS, prefetch: bool = False
) -> Iterator[RvsBatch]:
    """Yield the spectra of a bulk file in batches of at most ``batch_rows`` rows (see :func:`read_bulk`)."""
    if isinstance(source, str | Path):
        with open(source, "rb") as handle:
            yield from _iter_closing(TextStream(handle, prefetch), label, batch_rows)
    else:
        yield from _iter_closing(TextStream(source, prefetch), label, batch_rows)


def _iter_closing(stream: TextStream, label: str, batch_rows: int) -> Iterator[RvsBatch]:
    """:func:`_iter_stream`, then stop the stream (and its thread) whatever happened."""
    try:
        yield from _iter_stream(stream, label, batch_rows)
    finally:
        stream.close()


def _iter_stream(stream: TextStream, label: str, batch_rows: int) -> Iterator[RvsBatch]:
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
    parser = _OrderedParser(columns, delimiter, label, counts, PARSE_THREADS if stream.prefetching else 0)
    try:
        pending: list[tuple[int, bytes, int, int]] = []
        for buffer, start, end in spans:
            if start == end or (buffer[start] in b" \t" and not buffer[start:end].strip()):
                continue  # blank line
            pending.append((stream.lines_read, buffer, start, end))
            if len(pending) >= batch_rows:
                parser.submit(pending)
                submitted += len(pending)
                pending = []
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

    def __init__(self, columns: _Columns, delimiter: bytes, label: str, counts: _Counts, threads: int) -> None:
        self._args = (columns, delimiter, label)
        self._counts = counts
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="rvs-parse") if threads else None
        self._limit = 2 * threads
        self._queue: deque[Future[tuple[RvsBatch, _Counts]] | tuple[RvsBatch, _Counts]] = deque()

    def submit(self, rows: list[tuple[int, bytes, int, int]]) -> None:
        """Queue one batch of rows."""
        if self._pool is None:
            self._queue.append(_parse_rows(rows, *self._args))
        else:
            self._queue.append(self._pool.submit(_parse_rows, rows, *self._args))

    def ready(self, drain: bool = False) -> Iterator[RvsBatch]:
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

    keep: list[int] = []
    flux_rows: list[np.ndarray] = []
    error_rows: list[np.ndarray] = []
    for begin in range(0, len(ids), PARSE_ROWS):
        end = min(begin + PARSE_ROWS, len(ids))
        values, lengths = parse_lists(flux_texts[begin:end] + error_texts[begin:end])
        n = end - begin
        if np.all(lengths == RVS_PIXELS):
            both = values.astype(np.float32).reshape(2, n, RVS_PIXELS)
            flux_rows.append(both[0])
            error_rows.append(both[1])
            keep.extend(range(begin, end))
            continue
        offsets = np.concatenate(([0], np.cumsum(np.maximum(lengths, 0))))
        for k in range(n):
            nf, ne = int(lengths[k]), int(lengths[n + k])
            if nf == RVS_PIXELS and ne == RVS_PIXELS:
                flux_rows.append(values[offsets[k] : offsets[k + 1]].astype(np.float32)[None])
                error_rows.append(values[offsets[n + k] : offsets[n + k + 1]].astype(np.float32)[None])
                keep.append(begin + k)
                continue
            counts.wrong_length += 1
            counts.lengths = (nf, ne)
            problems.append(
                f"{label}: line {numbers[begin + k]} (source_id {ids[begin + k]}): flux has {_describe(nf)} and "
                f"flux_error {_describe(ne)}, expected {RVS_PIXELS} each; row skipped"
            )
    counts.kept += len(keep)
    if problems and not counts.first_problem:
        counts.first_problem = problems[0]
    batch = RvsBatch.from_rows(
        [ids[k] for k in keep],
        np.concatenate(flux_rows) if flux_rows else np.zeros((0, RVS_PIXELS), np.float32),
        np.concatenate(error_rows) if error_rows else np.zeros((0, RVS_PIXELS), np.float32),
        {key: [values[k] for k in keep] for key, values in scalars.items()},
        problems,
    )
    return batch, counts


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
