"""Cheap look at FITS headers: one extension's cards for readers' ``identify``, every header's sanity for ``read``.

``astropy.io.fits.open`` on a large ``.fits.gz`` file costs about half a second even when it is told to
load lazily; reading the first few 2880-byte blocks ourselves costs well under a millisecond.

astropy trusts the structural keywords: ``NAXIS = 10**18`` makes it build a list of 10**18 axes (a hang
that eats memory), ``NAXIS2 = 2**31`` makes it allocate the declared data unit before noticing the file is
far shorter. :func:`fits_structure_problem` checks those keywords and sizes first, so that a reader can
refuse such a file with a clear message before handing it to astropy. Once astropy has opened a file,
:func:`parsed_header` parses every card at once, so that a corrupt card is a typed error where it is read.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from starlabel.errors import DataFileError

BLOCK = 2880
CARD = 80
GZIP_MAGIC = b"\x1f\x8b"
FITS_MAGIC = b"SIMPLE  ="
MAX_HEADER_BLOCKS = 200
"""A header longer than this (7200 cards) is not one we expect; give up."""
MAX_SKIP_BYTES = 64 * 1024 * 1024
"""Do not decompress more than this to reach the wanted extension."""
MAX_AXES = 999
"""Largest NAXIS (and TFIELDS) the FITS standard allows."""
_STRUCTURAL_KEY = re.compile(r"^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|GROUPS|TFIELDS|EXTEND|ZIMAGE)$")
"""Keywords astropy reads to pick an HDU's class and size its data unit."""
_FIXED_VALUE = re.compile(
    r"^ *(?:'(?:[\x20-\x26\x28-\x7e]|'')*'|[TF]|[+-]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][+-]?\d+)?) *(?:/[\x20-\x7e]*)?$"
)
"""A value field astropy can parse: a quoted string, a logical or a number, then an optional ``/`` comment,
printable ASCII only."""


def _read_header(  # type: ignore[no-untyped-def]
    handle, first: bytes | None = None, images: dict[str, str] | None = None
) -> dict[str, object] | None:
    """Parse header cards until ``END``; values are int, str, float or bool (None if not one).

    ``images``, when given, receives each keyword's card as read (80 characters, undecodable bytes as U+FFFD).
    """
    cards: dict[str, object] = {}
    for n in range(MAX_HEADER_BLOCKS):
        block = first if (n == 0 and first is not None) else handle.read(BLOCK)
        if len(block) != BLOCK:
            return None
        for i in range(0, BLOCK, CARD):
            card = block[i : i + CARD].decode("ascii", errors="replace")
            key = card[:8].strip()
            if key == "END":
                return cards
            if card[8:10] == "= " and key:
                cards[key] = _value(card[10:])
                if images is not None:
                    images.setdefault(key, card)
    return None


def _value(text: str) -> object:
    """Value of a card's value field (strings unquoted, trailing comment removed)."""
    text = text.strip()
    if text.startswith("'"):
        end = text.find("'", 1)
        while end != -1 and text[end + 1 : end + 2] == "'":  # doubled quote inside a string
            end = text.find("'", end + 2)
        return text[1:end].replace("''", "'").rstrip() if end != -1 else None
    text = text.split("/", 1)[0].strip()
    if text in ("T", "F"):
        return text == "T"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text.replace("D", "E"))
    except ValueError:
        return None


def _data_bytes(header: dict[str, object]) -> int | None:
    """Size of the data unit following ``header``, padded to whole blocks."""
    try:
        naxis = int(header.get("NAXIS", 0))  # type: ignore[arg-type]
        if naxis == 0:
            return 0
        size = abs(int(header["BITPIX"])) // 8  # type: ignore[arg-type]
        for axis in range(1, naxis + 1):
            size *= int(header[f"NAXIS{axis}"])  # type: ignore[arg-type]
        size = (size + int(header.get("PCOUNT", 0))) * int(header.get("GCOUNT", 1))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return None
    return -(-size // BLOCK) * BLOCK


def peek_header(path: str | Path, hdu: int = 1) -> dict[str, object] | None:
    """Return the cards of extension ``hdu`` of a FITS or gzip-compressed FITS file, or None.

    Never raises: a missing file, a folder, junk bytes, a truncated or corrupt gzip stream, a file with
    fewer extensions all give None.

    Parameters
    ----------
    path : str or Path
        File to look at; compression is recognised from its first bytes, not its name.
    hdu : int
        0 for the primary header, 1 for the first extension, ...

    Returns
    -------
    dict or None
        Keyword → value (int, float, bool, str; None where the value cannot be parsed).
    """
    try:
        path = Path(path)
        if not path.is_file():
            return None
        with open(path, "rb") as raw:
            magic = raw.read(2)
        opener = gzip.open if magic == GZIP_MAGIC else open
        with opener(path, "rb") as handle:
            first = handle.read(BLOCK)
            if not first.startswith(FITS_MAGIC):
                return None
            header = _read_header(handle, first)
            skipped = 0
            for _ in range(hdu):
                if header is None:
                    return None
                size = _data_bytes(header)
                if size is None or skipped + size > MAX_SKIP_BYTES:
                    return None
                while size > 0:
                    chunk = handle.read(min(size, 1 << 20))
                    if not chunk:
                        return None
                    size -= len(chunk)
                    skipped += len(chunk)
                header = _read_header(handle)
            return header
    except Exception:  # identification must never raise (OSError, EOFError, zlib.error, ...)
        return None


def column_names(header: dict[str, object]) -> list[str]:
    """``TTYPEn`` values of a binary-table header, in column order (none when TFIELDS is not 0-999)."""
    try:
        count = int(header.get("TFIELDS", 0))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []
    if not 0 <= count <= MAX_AXES:  # a corrupt TFIELDS (2**31) must not make identify loop for minutes
        return []
    return [str(header.get(f"TTYPE{i}", "")).strip() for i in range(1, count + 1)]


def fits_structure_problem(source: str | Path | bytes) -> str | None:
    """Describe the first header of a FITS file that would make a FITS reader hang or allocate absurdly.

    Walks every HDU of a FITS file (plain or gzip-compressed, a path or the file's bytes) and checks what
    astropy trusts: the structural cards (``SIMPLE``, ``XTENSION``, ``BITPIX``, ``NAXISn``, ``PCOUNT``,
    ``GCOUNT``, ``GROUPS``, ``TFIELDS``, ...) parseable, ``SIMPLE = T``, ``NAXIS`` and ``TFIELDS`` within
    0-999, ``NAXISn`` and ``PCOUNT`` integers ≥ 0, ``GCOUNT`` an integer ≥ 1, ``BITPIX`` an integer, and that
    each data unit fits in what follows its header (so a corrupt dimension is caught before anything of its
    size is allocated). Only headers are parsed; data units are skipped (decompressed, for gzip, without
    being kept).

    Never raises. Returns None for a sound file and also for anything that does not start as FITS, or
    whose primary header has no END card: the FITS reader reports those itself. A corrupt or truncated
    gzip stream is a problem (astropy would take the garbage for HDUs, block by block).

    Parameters
    ----------
    source : str, Path or bytes
        The file, or its content.

    Returns
    -------
    str or None
        E.g. ``"HDU1 declares 5570000000000 bytes of data (BITPIX = 8, NAXIS1 = 2800, NAXIS2 = 2147483648)
        but only 116640 bytes follow its header: the file is truncated or a dimension keyword is corrupt"``.
    """
    try:
        if isinstance(source, bytes | bytearray):
            raw: BinaryIO = io.BytesIO(source)
        else:
            path = Path(source)
            if not path.is_file():
                return None
            raw = open(path, "rb")  # closed by the with block below
        with raw:
            compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            if not compressed:
                return _walk(raw, _size(raw))
            try:
                with gzip.GzipFile(fileobj=raw, mode="rb") as handle:
                    return _walk(handle, None)
            except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
                # astropy would read on through the damage, taking garbage for HDUs block by block
                return f"the gzip stream is corrupt or truncated ({type(error).__name__}: {error})"
    except Exception:  # unreadable file, ...: astropy will say what is wrong
        return None


def _size(handle: BinaryIO) -> int:
    """Bytes in a plain file or buffer."""
    if isinstance(handle, io.BytesIO):
        return len(handle.getbuffer())
    return os.fstat(handle.fileno()).st_size


def _walk(handle: BinaryIO, total: int | None) -> str | None:
    """Check every header of ``handle`` (``total``: its size, None when only reading can tell)."""
    first = handle.read(BLOCK)
    if not first.startswith(FITS_MAGIC):
        return None
    number = 0
    block: bytes | None = first
    while True:
        images: dict[str, str] = {}
        header = _read_header(handle, block, images)
        if header is None:  # no END card before the end of the file (or 200 blocks)
            return None if number == 0 else f"HDU{number} header has no END card: the file is truncated or corrupt"
        # With one of these cards unparsable, or SIMPLE = F, astropy takes the HDU as corrupt or non-standard
        # and hunts for the next header block by block, which rewinds and re-inflates a gzip stream each
        # time (minutes for a few MB).
        for key, image in images.items():
            if _STRUCTURAL_KEY.match(key) and not _FIXED_VALUE.match(image[10:]):
                return f"HDU{number} card {key} cannot be parsed ({image.rstrip()!r}): the header is corrupt"
        first_key = "SIMPLE" if number == 0 else "XTENSION"
        if not isinstance(header.get(first_key), bool if number == 0 else str):
            return f"HDU{number} has no {first_key} card: the header is corrupt"
        if header.get(first_key) is False:
            return "HDU0 SIMPLE = F: the file says it does not conform to the FITS standard"
        problem, size = _header_problem(header)
        if problem is not None:
            return f"HDU{number} {problem}"
        available = _skip(handle, size, total)
        if available < size:
            return (
                f"HDU{number} declares {size} bytes of data ({_dimensions(header)}) but only {available} bytes "
                "follow its header: the file is truncated or a dimension keyword is corrupt"
            )
        handle.read(-size % BLOCK)  # padding (may be missing at the very end)
        block = handle.read(BLOCK)
        if len(block) < BLOCK or not block.startswith(b"XTENSION"):
            return None  # end of file, or trailing bytes astropy ignores or reports
        number += 1


def _integer(header: dict[str, object], key: str, default: int | None = None) -> int | None:
    value = header.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _header_problem(header: dict[str, object]) -> tuple[str | None, int]:
    """What is wrong with one header's structural keywords, and the size in bytes of its data unit."""
    naxis = _integer(header, "NAXIS")
    if naxis is None or not 0 <= naxis <= MAX_AXES:
        return f"NAXIS = {header.get('NAXIS')!r}: the FITS standard allows an integer from 0 to {MAX_AXES}", 0
    if "TFIELDS" in header:
        fields = _integer(header, "TFIELDS")
        if fields is None or not 0 <= fields <= MAX_AXES:
            return f"TFIELDS = {header.get('TFIELDS')!r}: the FITS standard allows an integer from 0 to {MAX_AXES}", 0
    bitpix = _integer(header, "BITPIX")
    if bitpix is None:
        return f"BITPIX = {header.get('BITPIX')!r} is not an integer", 0
    axes = []
    for axis in range(1, naxis + 1):
        length = _integer(header, f"NAXIS{axis}")
        if length is None or length < 0:
            return f"NAXIS{axis} = {header.get(f'NAXIS{axis}')!r}: an axis length must be an integer >= 0", 0
        axes.append(length)
    pcount, gcount = _integer(header, "PCOUNT", 0), _integer(header, "GCOUNT", 1)
    if pcount is None or pcount < 0:
        return f"PCOUNT = {header.get('PCOUNT')!r}: must be an integer >= 0", 0
    if gcount is None or gcount < 1:
        return f"GCOUNT = {header.get('GCOUNT')!r}: must be an integer >= 1", 0
    if naxis == 0:
        return None, 0
    if header.get("GROUPS") is True and axes[0] == 0:
        axes = axes[1:]  # random groups: NAXIS1 = 0 does not count
    elements = 1
    for length in axes:
        elements *= length
    return None, abs(bitpix) // 8 * gcount * (pcount + elements)


def _skip(handle: BinaryIO, size: int, total: int | None) -> int:
    """Skip up to ``size`` bytes; return how many there were."""
    if size == 0:
        return 0
    if total is not None:
        start = handle.tell()
        available = max(0, min(size, total - start))
        handle.seek(start + available)
        return available
    skipped = 0
    while skipped < size:
        chunk = handle.read(min(size - skipped, 1 << 20))
        if not chunk:
            break
        skipped += len(chunk)
    return skipped


def _dimensions(header: dict[str, object]) -> str:
    """``BITPIX = 8, NAXIS1 = 2800, NAXIS2 = 2147483648`` (and PCOUNT/GCOUNT when not 0/1)."""
    keys = ["BITPIX"] + [f"NAXIS{axis}" for axis in range(1, int(header.get("NAXIS", 0)) + 1)]  # type: ignore[call-overload]
    keys += [key for key, usual in (("PCOUNT", 0), ("GCOUNT", 1)) if header.get(key, usual) != usual]
    return ", ".join(f"{key} = {header.get(key)}" for key in keys)


def parsed_header(header: Any, number: int, path: Path, layout: str) -> Any:
    """A copy of ``header`` with every card's value parsed now.

    astropy parses card values lazily, so a corrupt card would otherwise raise ``VerifyError`` later,
    wherever a keyword happens to be looked up.

    Raises
    ------
    starlabel.errors.DataFileError
        A card cannot be parsed; the message ends with ``layout`` (what the reader expects).
    """
    copy = header.copy()
    for card in copy.cards:
        try:
            card.value  # noqa: B018 - parsing is the point
        except Exception as error:  # astropy's VerifyError, ValueError from a malformed number
            raise DataFileError(
                str(path),
                f"HDU{number} card {card.keyword!r} cannot be parsed ({error}): the header is corrupt. {layout}",
            ) from None
    return copy
