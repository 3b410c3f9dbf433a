"""Writing small FITS files directly as bytes: astropy headers, numpy data in FITS (big-endian) order.

astropy's ``HDUList.writeto`` byte-swaps table cells holding long vectors one element at a time and
verifies every card, which makes one simulated spectrum cost tens of milliseconds. The writers here
build each header with :class:`astropy.io.fits.Header` (so card formatting is astropy's) and write the
data units themselves: header blocks padded to 2880 bytes with ``END``, data in big-endian order padded
with zeros to 2880 bytes, as the FITS standard (4.0, §3.3, §7) prescribes. Files are written under a
temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

BLOCK = 2880
"""FITS block size in bytes."""
BITPIX: dict[str, int] = {"u1": 8, "i2": 16, "i4": 32, "i8": 64, "f4": -32, "f8": -64}
"""numpy kind + itemsize → BITPIX of image data."""
TFORM: dict[str, str] = {"u1": "B", "i2": "I", "i4": "J", "i8": "K", "f4": "E", "f8": "D"}
"""numpy kind + itemsize → binary-table format letter."""

Hdu = tuple[Any, bytes]
"""A header (``astropy.io.fits.Header``) and its data unit's bytes (unpadded)."""


def _code(dtype: np.dtype) -> str:
    return f"{dtype.kind}{dtype.itemsize}"


def _add(header: Any, cards: Mapping[str, Any]) -> None:
    for key, value in cards.items():
        header[key] = value


def primary_hdu(cards: Mapping[str, Any] = {}) -> Hdu:  # noqa: B006 - read only
    """A header-only primary HDU (``NAXIS = 0``) with ``cards`` (``value`` or ``(value, comment)``)."""
    from astropy.io import fits

    header = fits.Header()
    header["SIMPLE"] = (True, "conforms to FITS standard")
    header["BITPIX"] = (8, "array data type")
    header["NAXIS"] = (0, "number of array dimensions")
    header["EXTEND"] = True
    _add(header, cards)
    return header, b""


def image_hdu(data: np.ndarray | None, cards: Mapping[str, Any] = {}) -> Hdu:  # noqa: B006 - read only
    """An IMAGE extension holding ``data`` (uint8, int16/32/64, float32/64; None: no data)."""
    from astropy.io import fits

    header = fits.Header()
    header["XTENSION"] = ("IMAGE", "Image extension")
    if data is None:
        header["BITPIX"] = (8, "array data type")
        header["NAXIS"] = (0, "number of array dimensions")
        raw = b""
    else:
        code = _code(data.dtype)
        if code not in BITPIX:
            raise TypeError(f"image data of dtype {data.dtype} cannot be written; allowed: {', '.join(BITPIX)}")
        header["BITPIX"] = (BITPIX[code], "array data type")
        header["NAXIS"] = (data.ndim, "number of array dimensions")
        for axis, size in enumerate(reversed(data.shape), start=1):
            header[f"NAXIS{axis}"] = size
        raw = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder(">")).tobytes()
    header["PCOUNT"] = (0, "number of parameters")
    header["GCOUNT"] = (1, "number of groups")
    _add(header, cards)
    return header, raw


def table_hdu(
    columns: Iterable[tuple[str, np.ndarray, str]], nrows: int, cards: Mapping[str, Any] = {}, name: str = ""  # noqa: B006
) -> Hdu:
    """A BINTABLE of ``nrows`` rows; each column ``(name, values, unit)`` with values of shape (nrows,) or
    (nrows, n) (numbers) or (nrows,) byte strings ``S<n>``. ``cards`` follow the column keywords."""
    from astropy.io import fits

    columns = list(columns)
    fields, forms = [], []
    for col_name, values, _ in columns:
        values = np.asarray(values)
        if values.shape[0] != nrows:
            raise ValueError(f"column {col_name} has {values.shape[0]} rows, expected {nrows}")
        if values.dtype.kind == "S":
            fields.append((col_name, values.dtype))
            forms.append(f"{values.dtype.itemsize}A")
            continue
        code = _code(values.dtype)
        if code not in TFORM:
            raise TypeError(f"column {col_name} of dtype {values.dtype} cannot be written; allowed: {', '.join(TFORM)}")
        width = int(np.prod(values.shape[1:], dtype=np.int64))
        big = values.dtype.newbyteorder(">")
        fields.append((col_name, big, values.shape[1:]) if values.ndim > 1 else (col_name, big))
        forms.append(f"{width}{TFORM[code]}" if values.ndim > 1 else TFORM[code])
    rows = np.zeros(nrows, dtype=fields)
    for col_name, values, _ in columns:
        rows[col_name] = values
    header = fits.Header()
    header["XTENSION"] = ("BINTABLE", "binary table extension")
    header["BITPIX"] = (8, "array data type")
    header["NAXIS"] = (2, "number of array dimensions")
    header["NAXIS1"] = (rows.dtype.itemsize, "length of dimension 1")
    header["NAXIS2"] = (nrows, "length of dimension 2")
    header["PCOUNT"] = (0, "number of group parameters")
    header["GCOUNT"] = (1, "number of groups")
    header["TFIELDS"] = (len(columns), "number of table fields")
    for index, ((col_name, _, unit), form) in enumerate(zip(columns, forms, strict=True), start=1):
        header[f"TTYPE{index}"] = col_name
        header[f"TFORM{index}"] = form
        if unit:
            header[f"TUNIT{index}"] = unit
    if name:
        header["EXTNAME"] = name
    _add(header, cards)
    return header, rows.tobytes()


def write_fits(path: Path, hdus: Iterable[Hdu]) -> None:
    """Write ``hdus`` (the first a primary HDU) to ``path`` through a temporary file in the same folder.

    Raises
    ------
    OSError
        The file cannot be written (the temporary file is removed).
    """
    path = Path(path)
    parts = []
    for header, raw in hdus:
        parts.append(header.tostring(endcard=True, padding=True).encode("ascii"))
        parts.append(raw + b"\0" * (-len(raw) % BLOCK))
    temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        temporary.write_bytes(b"".join(parts))
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
