"""Recognising Gaia DR3 RVS mean-spectrum files from their first bytes, for ``identify`` and for reading.

Every function here is cheap (at most :data:`HEAD_BYTES` of decompressed text, the first FITS header
blocks, a zip's central directory) and never raises.

==============  =====================================================================================
layout          recognised by
==============  =====================================================================================
``array_text``  CSV/ECSV (gzip or not) with ``source_id``, ``flux``, ``flux_error`` and no ``wavelength``:
                the bulk ``RvsMeanSpectrum_*.csv.gz`` files and DataLink RAW; RVS when an RVS-only column
                (``combined_transits``, ...) is present, else when the first row's flux array has 2401
                values or the ECSV declares 2401-element arrays (``XpSampledMeanSpectrum``: 343, refused)
``pixel_text``  CSV/ECSV with ``wavelength``, ``flux``, ``flux_error`` whose first wavelength is 846.00 nm
``fits``        HDU1 binary table with ``wavelength``, ``flux``, ``flux_error`` and 2401 rows (a multiple of
                2401 with a ``source_id`` column), or ``source_id`` and 2401-element ``flux`` arrays
``votable``     ``FIELD`` s ``wavelength``, ``flux``, ``flux_error`` and a first wavelength or
                ``spectralCoverageBoundsStart`` of 846 nm (or an ``RVS-`` file name); or ``source_id`` and
                ``flux`` with ``arraysize="2401"``
``zip``         a member named ``RVS-...`` (DataLink bundle)
==============  =====================================================================================
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from starlabel.fitspeek import column_names as fits_column_names
from starlabel.fitspeek import peek_header
from starlabel_gaia.rvs_grid import RVS_PIXELS, RVS_START_NM
from starlabel_gaia.rvs_text import column_names, complete_lines, parse_ecsv_header, split_fields, strip_array

Layout = Literal["array_text", "pixel_text", "fits", "votable", "zip"]
SUFFIXES: tuple[str, ...] = (
    ".csv",
    ".csv.gz",
    ".ecsv",
    ".ecsv.gz",
    ".fits",
    ".fits.gz",
    ".fit",
    ".xml",
    ".vot",
    ".zip",
)
"""File names ``identify`` considers (the archive's formats); ``read`` looks at the content only."""
MEMBER_SUFFIXES: tuple[str, ...] = (".csv", ".ecsv", ".fits", ".xml", ".vot", ".csv.gz", ".ecsv.gz", ".fits.gz")
HEAD_BYTES = 256 * 1024
RVS_ONLY_COLUMNS: tuple[str, ...] = ("combined_transits", "combined_ccds", "deblended_ccds")
SPECTRUM_COLUMNS: tuple[str, ...] = ("flux", "flux_error")
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
FITS_MAGIC = b"SIMPLE  ="
_RVS_MEMBER = re.compile(r"^RVS[-_]", re.IGNORECASE)
_FIELD = re.compile(r"<FIELD\b([^>]*)>", re.IGNORECASE)
_PARAM = re.compile(r"<PARAM\b([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"(\w+)\s*=\s*\"([^\"]*)\"")
_FIRST_TD = re.compile(r"<TABLEDATA>\s*<TR>\s*<TD>([^<]*)</TD>", re.IGNORECASE)
_REPEAT = re.compile(r"(\d+)")


def is_rvs_member(name: str) -> bool:
    """True for a DataLink RVS product name, ``RVS-Gaia DR3 <id>.<ext>`` (any folder, archive suffix)."""
    base = name.rsplit("/", 1)[-1]
    return bool(_RVS_MEMBER.match(base)) and base.lower().endswith(MEMBER_SUFFIXES)


def has_archive_suffix(path: Path) -> bool:
    """True when the file name ends with one of the archive suffixes :data:`SUFFIXES` (case-insensitive)."""
    return path.name.lower().endswith(SUFFIXES)


def sniff(path: str | Path, strict: bool = True) -> Layout | None:
    """The RVS layout of ``path``, or None when it is not one (or cannot be read).

    ``strict=False`` accepts any table of that shape without the RVS evidence (first wavelength 846 nm,
    2401-value arrays, RVS-only columns), so that reading a near miss explains what is wrong with it.
    """
    try:
        path = Path(path)
        if not path.is_file():
            return None
        with open(path, "rb") as handle:
            magic = handle.read(4)
        if magic == ZIP_MAGIC:
            return "zip" if _zip_has_rvs(path) else None
        head = read_head(path)
        if head.startswith(FITS_MAGIC):
            return "fits" if fits_is_rvs(peek_header(path, hdu=1), strict) else None
        return sniff_bytes(head, path.name, strict)
    except Exception:  # identification never raises
        return None


def sniff_bytes(head: bytes, name: str, strict: bool = True) -> Layout | None:
    """The layout of the first bytes of a text (CSV, ECSV, VOTable) file, or None (``strict``: see :func:`sniff`)."""
    try:
        stripped = head.lstrip()
        if stripped.startswith(b"<"):
            return "votable" if votable_is_rvs(head.decode("utf-8", errors="replace"), name, strict) else None
        return sniff_text(head.decode("utf-8", errors="replace"), name, strict)
    except Exception:
        return None


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """Up to ``size`` bytes of the file, decompressed when it is gzip (b"" on any error)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(2)
            if raw != GZIP_MAGIC:
                return raw + handle.read(size - len(raw))
            decoder = zlib.decompressobj(wbits=31)
            out = b""
            while len(out) < size:
                chunk = raw + handle.read(64 * 1024)
                raw = b""
                if not chunk:
                    break
                out += decoder.decompress(chunk, size - len(out))
                while decoder.unconsumed_tail and len(out) < size:
                    out += decoder.decompress(decoder.unconsumed_tail, size - len(out))
                if decoder.eof:
                    break
            return out
    except (OSError, zlib.error, EOFError):
        return b""


def sniff_text(text: str, name: str, strict: bool = True) -> Layout | None:
    """``array_text`` / ``pixel_text`` for RVS CSV/ECSV text, else None (see the module table)."""
    lines = complete_lines(text)
    header = parse_ecsv_header(line for line in _leading_comments(lines))
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    if not body:
        return None
    names = column_names(body[0], header.delimiter)
    if not all(column in names for column in (SPECTRUM_COLUMNS if strict else ("flux",))):
        return None
    first = (
        split_fields(body[1].encode("utf-8", errors="replace"), header.delimiter.encode()) if len(body) > 1 else None
    )
    if first is not None and len(first) != len(names):
        first = None
    if "wavelength" in names:
        if not strict:
            return "pixel_text"
        if first is None:
            return None
        try:
            start = float(first[names.index("wavelength")])
        except ValueError:
            return None
        return "pixel_text" if abs(start - RVS_START_NM) < 1e-3 else None
    if "source_id" not in names:
        return None
    if not strict or any(column in names for column in RVS_ONLY_COLUMNS):
        return "array_text"
    if first is not None:
        array = strip_array(first[names.index("flux")])
        if array:
            return "array_text" if array.count(b",") + 1 == RVS_PIXELS else None
    return "array_text" if header.declared_length("flux") == RVS_PIXELS else None


def fits_is_rvs(header: dict[str, object] | None, strict: bool = True) -> bool:
    """True for an HDU1 header of a per-pixel RVS table or of one-row-per-source RVS arrays."""
    if header is None or header.get("XTENSION") != "BINTABLE":
        return False
    names = [name.lower() for name in fits_column_names(header)]
    if not all(column in names for column in (SPECTRUM_COLUMNS if strict else ("flux",))):
        return False
    rows = header.get("NAXIS2")
    if not strict:
        return "wavelength" in names or "source_id" in names
    if "wavelength" in names:
        start = header.get("WAVESTAR")
        if start is not None and not _near_start(start):
            return False
        return (
            isinstance(rows, int)
            and rows > 0
            and (rows == RVS_PIXELS or (rows % RVS_PIXELS == 0 and "source_id" in names))
        )
    if "source_id" not in names:
        return False
    tform = str(header.get(f"TFORM{names.index('flux') + 1}", ""))
    repeat = _REPEAT.findall(tform)
    return bool(repeat) and int(repeat[-1]) == RVS_PIXELS


def votable_is_rvs(text: str, name: str, strict: bool = True) -> bool:
    """True for the head of a VOTable holding a per-pixel RVS table or RVS arrays (see the module table)."""
    if "<VOTABLE" not in text.upper():
        return False
    fields = {}
    for attributes in _FIELD.findall(text):
        values = dict(_ATTRIBUTE.findall(attributes))
        if "name" in values:
            fields[values["name"].lower()] = values
    if not all(column in fields for column in (SPECTRUM_COLUMNS if strict else ("flux",))):
        return False
    if not strict:
        return "wavelength" in fields or "source_id" in fields
    if "wavelength" in fields:
        params = {}
        for attributes in _PARAM.findall(text):
            values = dict(_ATTRIBUTE.findall(attributes))
            if "name" in values:
                params[values["name"].lower()] = values.get("value", "")
        if "spectralcoverageboundsstart" in params:
            return _near_start(params["spectralcoverageboundsstart"])
        first = _FIRST_TD.search(text)
        if first is not None:
            return _near_start(first.group(1))
        return bool(_RVS_MEMBER.match(name))
    if "source_id" not in fields:
        return False
    if fields["flux"].get("arraysize", "").strip() == str(RVS_PIXELS):
        return True
    return any(column in fields for column in RVS_ONLY_COLUMNS)


def _near_start(value: object) -> bool:
    """True when ``value`` reads as 846 nm (the first RVS wavelength)."""
    try:
        return abs(float(str(value).strip()) - RVS_START_NM) < 1e-3
    except ValueError:
        return False


def _leading_comments(lines: Iterable[str]) -> Iterable[str]:
    """The ``#`` lines before the first other line."""
    for line in lines:
        if not line.startswith("#"):
            return
        yield line


def _zip_has_rvs(path: Path) -> bool:
    """True when the zip's directory lists an RVS DataLink product."""
    with zipfile.ZipFile(path) as bundle:
        return any(is_rvs_member(info.filename) for info in bundle.infolist() if not info.is_dir())
