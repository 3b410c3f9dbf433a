"""Parsing many comma-separated lists of the same length at once with Arrow's C++ CSV reader.

The lists (the ``flux``/``flux_error`` arrays of Gaia bulk rows, brackets removed) are joined by newlines,
their commas turned into newlines, and the text read as a one-column CSV of float64 values by
:func:`pyarrow.csv.read_csv` (correctly rounded, like Python's ``float``; about twice as fast as
:func:`starlabel_gaia.rvs_floats.parse_lists` and without the GIL, so two threads parse in parallel).

Only texts whose values come out exactly as :func:`~starlabel_gaia.rvs_floats.parse_lists` gives them are
accepted here: every list must hold ``length`` elements, and every element must be a number Arrow reads
(``1.5``, ``-2e-3``, ``NaN``, ``inf``), ``null`` or empty (both NaN). Anything else (``NULL``, a vertical tab,
a carriage return, a list of another length, a byte-order mark Arrow would drop) makes
:func:`parse_equal_lists` return None, and the caller parses those texts the general way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from starlabel_gaia.rvs_floats import Buffer

_BOM = b"\xef\xbb\xbf"
_NULLS = ["null", ""]
_COMMA, _NEWLINE = ord(","), ord("\n")


def parse_equal_lists(texts: Sequence[Buffer], length: int) -> np.ndarray | None:
    """Parse ``texts``, each a list of ``length`` comma-separated numbers, into one float64 array.

    Parameters
    ----------
    texts : sequence of bytes-like
        Lists such as ``b"0.99,1.01,null"`` (brackets removed); ``memoryview`` slices are fine.
    length : int
        The number of elements every list must hold (at least 1).

    Returns
    -------
    numpy.ndarray or None
        ``(len(texts), length)`` float64, NaN for ``null``, ``NaN`` and empty elements; None when a list
        has another number of elements or holds anything Arrow does not read exactly as Python's
        ``float`` would (the caller then falls back to the general parser).
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if not texts or length < 1:
        return None
    data = bytearray(b"\n").join(texts)  # mutable: its commas become newlines in place
    if data.startswith(_BOM) or b"\r" in data:
        return None  # Arrow drops a leading BOM and ends lines at a carriage return
    codes = np.frombuffer(data, dtype=np.uint8)
    commas = codes == _COMMA
    position = 0
    for text in texts:  # every list must hold `length` elements (a few microseconds per list)
        end = position + len(text)
        if np.count_nonzero(commas[position:end]) != length - 1:
            return None
        position = end + 1
    codes ^= commas.view(np.uint8) * np.uint8(_COMMA ^ _NEWLINE)  # commas become newlines (no GIL held)
    pool = pa.system_memory_pool()  # malloc reuses the freed buffers of the last call: no fresh pages to fault in
    try:
        table = pcsv.read_csv(
            pa.py_buffer(data),
            read_options=pcsv.ReadOptions(column_names=["v"], block_size=len(data) + 1, use_threads=False),
            parse_options=pcsv.ParseOptions(
                quote_char=False,
                double_quote=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={"v": pa.float64()},
                null_values=_NULLS,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
            memory_pool=pool,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    column = table.column(0)
    if len(column) != len(texts) * length:  # an empty last element: Arrow reads no line after a final newline
        return None
    return _float64_values(column.combine_chunks()).reshape(len(texts), length)


def _float64_values(array: Any) -> np.ndarray:
    """The values of an Arrow float64 array, NaN where null (read from its buffers: Arrow's own conversion
    of nulls is slow, and its first scalar conversion imports pandas)."""
    validity, data = array.buffers()
    values = np.frombuffer(data, dtype=np.float64, count=len(array), offset=8 * array.offset)
    if not array.null_count:
        return values
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=array.offset + len(array), bitorder="little")
    values = values.copy()
    values[bits[array.offset :] == 0] = np.nan
    return values
