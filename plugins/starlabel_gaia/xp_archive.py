"""Reading the Gaia archive's XP products (XP_CONTINUOUS, XP_SAMPLED) as tables, from files or zip bundles.

The archive writes every XP product in four formats, one or several sources per file, and DataLink bundles
them in a zip whose members are named ``<PRODUCT>-Gaia DR3 <source_id>.<csv|ecsv|fits|xml>``:

=========  =======================================================================================
format     array columns (``bp_coefficients``, ``flux`` of RAW files, ...)
=========  =======================================================================================
CSV        quoted ``"(v1, v2, …)"`` strings; a missing array is an empty field
ECSV       quoted JSON ``"[v1,v2,…]"``; astropy returns object columns, an empty array when missing
FITS       variable-length heap columns (``PD(55)``, ``PE(343)``); zero-length when missing
VOTable    ``arraysize="*"``, TABLEDATA or BINARY2; empty or null when missing
=========  =======================================================================================

Scalars of the one-source DataLink files (``source_id``, ``solution_id`` of an XP_SAMPLED INDIVIDUAL file)
sit in the ECSV ``meta``, the FITS header (``SOURCEID``, ``SOLUTION`` as strings) or VOTable ``PARAM`` s;
:class:`ArchiveTable` gathers them in ``meta`` with lower-case keys.
"""

from __future__ import annotations

import gzip
import re
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.errors import DataFileError
from starlabel.tables import read_table, table_format

MEMBER = re.compile(r"^(?P<product>[A-Z_]+)[-_]Gaia DR3 (?P<id>\d+)\.", re.IGNORECASE)
"""DataLink member names: ``XP_CONTINUOUS-Gaia DR3 5937083312263887616.csv``."""
ZIP_MAGIC = b"PK\x03\x04"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class ArchiveTable:
    """One table read from an archive file or zip member.

    Attributes
    ----------
    label : str
        ``file`` or ``file[member]``, for messages.
    name : str
        Base name of the file or member (DataLink names carry the source id).
    table : astropy.table.Table
        The data.
    meta : dict
        Scalars outside the table (ECSV meta, FITS header, VOTable PARAMs), keys lower-case.
    """

    label: str
    name: str
    table: Any
    meta: dict[str, Any] = field(default_factory=dict)


def product_of(name: str) -> str | None:
    """Upper-case DataLink product of a member name (``XP_SAMPLED``), or None for other names."""
    match = MEMBER.match(name.rsplit("/", 1)[-1])
    return match.group("product").upper() if match else None


def is_zip(path: Path) -> bool:
    """True when ``path`` starts with the zip magic bytes (never raises)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == ZIP_MAGIC
    except OSError:
        return False


def read_archive_tables(path: str | Path, product: str, hdu: int | str | None = None) -> list[ArchiveTable]:
    """Read ``path``, or each ``product`` member of a DataLink zip bundle, as tables.

    Parameters
    ----------
    path : path
        A CSV, ECSV, FITS or VOTable file (gzip allowed where astropy reads it), or a zip bundle.
    product : str
        DataLink product read from a zip (``XP_CONTINUOUS`` or ``XP_SAMPLED``); other members are ignored.
    hdu : int or str, optional
        FITS extension (default 1).

    Raises
    ------
    DataFileError
        Unreadable file, or a zip with no ``product`` member.
    """
    path = Path(path)
    if not is_zip(path):
        return [_read_one(path, path.name, str(path), hdu)]
    try:
        with zipfile.ZipFile(path) as bundle, tempfile.TemporaryDirectory() as scratch:
            # not ZipInfo.is_dir(): it raises IndexError for an empty member name (Python 3.11)
            infos = [
                i
                for i in bundle.infolist()
                if not i.filename.endswith("/") and product_of(i.filename) == product.upper()
            ]
            if not infos:
                names = ", ".join(i.filename for i in bundle.infolist()) or "(none)"
                raise DataFileError(
                    str(path),
                    f"no {product} member (named '{product}-Gaia DR3 <source_id>.<ext>') in this zip; found: {names}",
                )
            out = []
            for number, info in enumerate(infos):
                base = info.filename.rsplit("/", 1)[-1]
                local = Path(scratch) / f"{number}-{base}"
                local.write_bytes(bundle.read(info))
                out.append(_read_one(local, base, f"{path}[{info.filename}]", hdu))
            return out
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, UnicodeDecodeError, RuntimeError) as error:
        # UnicodeDecodeError: a member name flagged UTF-8 that is not; RuntimeError: a member flagged
        # encrypted; NotImplementedError (a RuntimeError): an unsupported compression method or flag
        raise DataFileError(str(path), f"cannot read as a zip bundle: {type(error).__name__}: {error}") from None


def _read_one(path: Path, name: str, label: str, hdu: int | str | None) -> ArchiveTable:
    """One file → :class:`ArchiveTable` (VOTable PARAMs and FITS header kept in ``meta``)."""
    fmt = table_format(path)
    if fmt == "votable":
        table, meta = _read_votable(path, label)
    elif fmt in ("ascii.csv", "ascii.ecsv"):
        table = _read_text(path, label)
        meta = {str(k).lower(): v for k, v in table.meta.items()}
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicate FITS keys (SPECTRAL, FLUXAXIS), unit strings
                table = read_table(path, hdu)
        except DataFileError as error:
            raise DataFileError(label, str(error).split(": ", 1)[-1]) from None
        meta = {str(k).lower(): v for k, v in table.meta.items() if not isinstance(v, (list, dict)) or k != "comments"}
    return ArchiveTable(label, name, table, meta)


def _read_text(path: Path, label: str) -> Any:
    """CSV or ECSV, gzip-compressed or not; ECSV is recognised from its ``# %ECSV`` first line, not the name
    (the archive's bulk ``*.csv.gz`` files are ECSV)."""
    from astropy.table import Table

    try:
        with open(path, "rb") as handle:
            compressed = handle.read(2) == GZIP_MAGIC
        data = gzip.decompress(path.read_bytes()) if compressed else path.read_bytes()
        text = data.decode("utf-8")
        fmt = "ascii.ecsv" if text.lstrip().startswith("# %ECSV") else "ascii.csv"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Table.read(text, format=fmt, guess=False)
    except Exception as error:  # astropy raises many kinds on malformed text
        raise DataFileError(label, f"cannot read as CSV/ECSV: {type(error).__name__}: {error}") from None


def _read_votable(path: Path, label: str) -> tuple[Any, dict[str, Any]]:
    """First table of a VOTable and its PARAMs (lower-case names → values)."""
    from astropy.io.votable import parse

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            votable = parse(str(path), verify="ignore")
            first = votable.get_first_table()
            table = first.to_table(use_names_over_ids=True)
            params = {p.name.lower(): p.value for p in votable.iter_fields_and_params() if hasattr(p, "value")}
            params.update({p.name.lower(): p.value for p in first.params})
    except Exception as error:  # astropy raises many kinds on malformed XML
        raise DataFileError(label, f"cannot read as VOTable: {type(error).__name__}: {error}") from None
    return table, params


def parse_array_text(text: str) -> np.ndarray:
    """``"(1.5, 2.0)"`` or ``"[1.5,2.0,null]"`` → float64 array (``null``/empty elements NaN; ``""`` → 0 values)."""
    body = text.strip().strip("()[]").strip()
    if not body:
        return np.zeros(0)
    parts = [p.strip() for p in body.split(",")]
    return np.array([p if p and p.lower() not in ("null", "none", "--") else "nan" for p in parts], dtype=np.float64)


def array_column(column: Any, length: int, label: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Stack an array column into ``(values, row_missing)``.

    Parameters
    ----------
    column : astropy column
        Fixed-size 2-D, object (ragged/heap/VOTable ``*``) or text (``"(…)"``) column.
    length : int
        Elements expected per row (55 coefficients, 343 samples).
    label, name : str
        File (or member) and column, for messages.

    Returns
    -------
    values : numpy.ndarray
        (N, length) float64, NaN in missing rows and masked elements.
    row_missing : numpy.ndarray
        (N,) True where the row holds no array (masked, empty, zero-length).

    Raises
    ------
    DataFileError
        A row holds an array of another non-zero length, or text that is not a list of numbers.
    """
    data = np.ma.asarray(column)
    n = data.shape[0]
    row_masked = np.ma.getmaskarray(data)
    if data.ndim == 2:
        values = np.ma.filled(data.astype(np.float64), np.nan)
        if values.shape[1] != length:
            raise DataFileError(label, f"column {name!r} holds {values.shape[1]} values per row, expected {length}")
        return values, np.all(np.ma.getmaskarray(data), axis=1) | np.all(~np.isfinite(values), axis=1)
    values = np.full((n, length), np.nan)
    missing = np.zeros(n, dtype=bool)
    raw = np.ma.getdata(data)
    for row in range(n):
        cell = raw[row]
        if (row_masked.ndim == 1 and row_masked[row]) or cell is None or cell is np.ma.masked:
            missing[row] = True
            continue
        try:
            array = _cell_array(cell)
        except (ValueError, TypeError):
            shown = str(cell)[:60] + ("..." if len(str(cell)) > 60 else "")
            raise DataFileError(
                label, f"row {row + 1}: column {name!r} holds {shown!r}, not a list of numbers"
            ) from None
        if array.size == 0:
            missing[row] = True
            continue
        if array.size != length:
            raise DataFileError(label, f"row {row + 1}: column {name!r} holds {array.size} values, expected {length}")
        values[row] = array
        missing[row] = not np.isfinite(array).any()
    return values, missing


def _cell_array(cell: Any) -> np.ndarray:
    """One cell (string, bytes, array, masked array) → float64 array, NaN where masked."""
    if isinstance(cell, bytes):
        cell = cell.decode("ascii", errors="replace")
    if isinstance(cell, str):
        return parse_array_text(cell)
    return np.ma.filled(np.ma.asarray(cell, dtype=np.float64), np.nan).ravel()


def exact_id(value: Any) -> int | None:
    """A source id from a header string, a JSON int or a VOTable long, exactly (None if not an integer or
    outside int64, as no source id is)."""
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or isinstance(value, float):
        return None
    if not isinstance(value, int):
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?\d{1,19}", text):  # int64 has at most 19 digits
            return None
        value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def first_of(meta: dict[str, Any], keys: Iterable[str]) -> Any:
    """Value of the first of ``keys`` present in ``meta`` (lower-case keys), else None."""
    return next((meta[k] for k in keys if k in meta), None)
