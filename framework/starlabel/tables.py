"""Reading tables (FITS, CSV, ECSV, VOTable, Parquet) for components, without losing ids or nulls.

Survey ids are 64-bit integers above 2**53 or strings: they never pass through float64. Null
entries (FITS ``TNULL``, empty CSV fields, NaN) come back as a boolean mask, never as zeros.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.errors import DataFileError, MissingColumnError
from starlabel.fitspeek import fits_structure_problem

_FORMATS = {
    ".fits": "fits",
    ".fit": "fits",
    ".fits.gz": "fits",
    ".fit.gz": "fits",
    ".csv": "ascii.csv",
    ".csv.gz": "ascii.csv",
    ".ecsv": "ascii.ecsv",
    ".ecsv.gz": "ascii.ecsv",
    ".parquet": "parquet",
    ".vot": "votable",
    ".xml": "votable",
}


def table_format(path: Path) -> str | None:
    """astropy format name for ``path`` from its suffix, or None when unknown."""
    name = path.name.lower()
    return next((fmt for suffix, fmt in _FORMATS.items() if name.endswith(suffix)), None)


def read_table(path: str | Path, hdu: int | str | None = None) -> Any:
    """Read ``path`` into an :class:`astropy.table.Table`.

    Raises
    ------
    DataFileError
        Unknown suffix, unreadable or malformed file.
    """
    from astropy.table import Table

    path = Path(path)
    fmt = table_format(path)
    if fmt is None:
        allowed = ", ".join(sorted(set(_FORMATS)))
        raise DataFileError(str(path), f"unknown table format; allowed suffixes: {allowed}")
    kwargs: dict[str, Any] = {"format": fmt}
    if fmt == "fits":
        kwargs["hdu"] = 1 if hdu is None else hdu
        kwargs["character_as_bytes"] = False
        problem = fits_structure_problem(path)  # before astropy: it would hang or allocate the declared sizes
        if problem is not None:
            raise DataFileError(str(path), f"cannot read as fits table: {problem}")
    elif fmt.startswith("ascii"):
        kwargs["guess"] = False
    try:
        return Table.read(path, **kwargs)
    except FileNotFoundError:
        raise DataFileError(str(path), "no such file") from None
    except Exception as error:
        raise DataFileError(str(path), f"cannot read as {fmt} table: {type(error).__name__}: {error}") from None


def find_column(colnames: Sequence[str], candidates: Iterable[str]) -> str | None:
    """Return the first column matching one of ``candidates``, or None.

    FITS column names are case-insensitive, astropy's are not: an exact match is preferred, then a
    case-insensitive one. Candidates are tried in order.
    """
    lower = {name.lower(): name for name in reversed(list(colnames))}
    for candidate in candidates:
        if candidate in colnames:
            return candidate
        if candidate.lower() in lower:
            return lower[candidate.lower()]
    return None


def resolve_column(table: Any, name: str, path: str | Path, hint: str = "") -> str:
    """Actual name of column ``name`` in ``table`` (case-insensitive).

    Raises
    ------
    MissingColumnError
        Naming the file, the closest column and every column present, plus ``hint``.
    """
    found = find_column(table.colnames, [name])
    if found is None:
        raise MissingColumnError(str(path), name, table.colnames, hint)
    return found


def float_column(table: Any, name: str, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(values, missing)`` of a numeric column (name case-insensitive) as float64; masked, null or non-finite → missing."""
    name = resolve_column(table, name, path)
    column = table[name]
    try:
        values = np.array(np.ma.getdata(column), dtype=np.float64)
    except (TypeError, ValueError):
        raise DataFileError(str(path), f"column {name!r} is not numeric (dtype {column.dtype})") from None
    missing = np.array(np.ma.getmaskarray(column), dtype=bool) | ~np.isfinite(values)
    if missing.ndim > 1:  # array column: missing element-wise
        return values, missing
    values[missing] = np.nan
    return values, missing


def id_column(table: Any, name: str, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(ids, missing)``: int64 or str ids and a mask of null entries.

    Raises
    ------
    DataFileError
        The column holds floats (ids above 2**53 would be corrupted).
    """
    name = resolve_column(table, name, path)
    column = table[name]
    missing = np.array(np.ma.getmaskarray(column), dtype=bool)
    data = np.ma.getdata(column)
    kind = data.dtype.kind
    if kind in "iu":
        return np.asarray(data, dtype=np.int64), missing
    if kind in "US":
        ids = np.char.strip(np.asarray(data).astype(str))
        return ids, missing | (ids == "")
    if kind == "O":
        ids = np.array([str(v).strip() for v in data])
        return ids, missing | (ids == "")
    raise DataFileError(
        str(path), f"id column {name!r} has dtype {data.dtype}; ids must be integers or strings, never floats"
    )
