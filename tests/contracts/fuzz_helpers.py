"""Mutations, checks and bookkeeping for the reader fuzz tests (``test_fuzz_readers.py``).

A :class:`Mutation` is a label (what was done, shown by hypothesis when an example fails) and the mutated
bytes. :func:`mutations` returns the hypothesis strategy of mutations that fit a file's content:

========  ==========================================================================================
content   mutations (besides the raw ones every file gets: truncation, flipped bytes, overwritten ranges)
========  ==========================================================================================
FITS      header cards set to absurd or wrong values (NAXISn = 10**12, BITPIX, TFORMn, units 'furlong'),
          cards removed or added, END removed, HDUs dropped, repeated or swapped, data values set to
          NaN/inf/huge/negative (through astropy), a whole HDU's data truncated away
CSV/ECSV  a column deleted or renamed, values set to NaN/inf/''/junk, array cells with elements
          dropped, added or replaced, a huge repeated field, stray quotes, lines deleted, repeated,
          swapped or blanked, ECSV header lines edited, CRLF/BOM/NUL bytes
VOTable   attributes changed, tags deleted, cell values replaced (and the text mutations)
zip       central directory truncated, members renamed, dropped, repeated or added, a member's
          content mutated (by its own content's mutations), directory sizes and offsets corrupted,
          another compression method
gzip      the decompressed content mutated and compressed again, the trailer (CRC, size) corrupted, junk
          or a second member appended, or the raw mutations on the gzip bytes
========  ==========================================================================================

Everything random inside one mutation comes from a seed drawn by hypothesis (``numpy`` generator), so
an example is replayed exactly from what hypothesis prints.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import signal
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

BLOCK = 2880
CARD = 80
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
FITS_MAGIC = b"SIMPLE  ="
SEEDS = st.integers(0, 2**32 - 1)
"""Seeds of the numpy generators that place the random parts of a mutation."""


# --------------------------------------------------------------------------------------------- data model
class Seed:
    """A file the fuzzer starts from (a plain class: hypothesis prints its label, not its bytes).

    Attributes
    ----------
    reader : str
        Name of the reader that owns the file.
    label : str
        ``generated:<name>`` or ``real:<folder/name>``, for the summary and messages.
    name : str
        File name the mutated copies get (readers look at suffixes and DataLink names).
    content : bytes
        The file's bytes.
    """

    def __init__(self, reader: str, label: str, name: str, content: bytes) -> None:
        self.reader, self.label, self.name, self.content = reader, label, name, content

    def __repr__(self) -> str:
        return self.label


class Mutation:
    """What was done to a seed (``label``), the resulting bytes (``data``) and the kind of mutation
    (``family``: ``truncate``, ``fits-card``, ``zip>text-values`` for a zip member's values, ...)."""

    def __init__(self, label: str, data: bytes, family: str = "") -> None:
        self.label, self.data, self.family = label, data, family

    def __repr__(self) -> str:
        return self.label


def tagged(strategy: st.SearchStrategy[Mutation], family: str) -> st.SearchStrategy[Mutation]:
    """``strategy`` with ``family`` set on the mutations that have none yet."""
    return strategy.map(lambda m: m if m.family else Mutation(m.label, m.data, family))


def content_kind(data: bytes) -> str:
    """``gzip``, ``zip``, ``fits``, ``xml`` or ``text``, from the first bytes."""
    if data[:2] == GZIP_MAGIC:
        return "gzip"
    if data[:4] == ZIP_MAGIC:
        return "zip"
    if data.startswith(FITS_MAGIC):
        return "fits"
    if data.lstrip()[:1] == b"<":
        return "xml"
    return "text"


def mutations(content: bytes, nested: bool = False) -> st.SearchStrategy[Mutation]:
    """Every mutation that fits ``content`` (raw ones for all; structured ones by kind).

    ``nested`` is True for the content of a zip member or a gzip stream (no zip inside a zip).
    """
    kind = content_kind(content)
    raw = raw_mutations(content)
    if kind == "gzip":
        return st.one_of(raw, tagged(gzip_mutations(content), "gzip"))
    structured = {
        "zip": None if nested else zip_mutations(content),
        "fits": fits_mutations(content),
        "xml": st.one_of(tagged(xml_mutations(content), "xml"), text_mutations(content)),
        "text": text_mutations(content),
    }[kind]
    if structured is None:
        return raw
    return st.one_of(raw, tagged(structured, "zip") if kind == "zip" else structured)


# ----------------------------------------------------------------------------------------------- raw bytes
def raw_mutations(content: bytes) -> st.SearchStrategy[Mutation]:
    """Truncation at an offset, k flipped bytes, a range overwritten with 0x00, 0xFF, blanks or noise."""
    return st.one_of(
        tagged(truncations(content), "truncate"),
        tagged(flips(content), "flip"),
        tagged(overwrites(content), "overwrite"),
    )


def _interesting_offsets(content: bytes) -> list[int]:
    n = len(content)
    offsets = {0, 1, 2, 4, 9, 80, n // 2, n - 1, n - 2, n - 8, n - 22, n - 46}
    if content_kind(content) == "fits":
        offsets |= {k * BLOCK + d for k in range(1, n // BLOCK + 1) for d in (-1, 0, 1)}
    return sorted(o for o in offsets if 0 <= o < n)


@st.composite
def truncations(draw: Any, content: bytes) -> Mutation:
    """The file cut at a random or interesting offset."""
    n = len(content)
    offset = draw(st.one_of(st.integers(0, max(n - 1, 0)), st.sampled_from(_interesting_offsets(content) or [0])))
    return Mutation(f"truncated to {offset} of {n} bytes", content[:offset])


@st.composite
def flips(draw: Any, content: bytes) -> Mutation:
    """1-32 bytes XOR-ed with random non-zero values."""
    k = draw(st.integers(1, 32))
    rng = np.random.default_rng(draw(SEEDS))
    data = bytearray(content)
    where = np.sort(rng.integers(0, len(data), k))
    for position, value in zip(where.tolist(), rng.integers(1, 256, k).tolist(), strict=True):
        data[position] ^= value
    shown = ", ".join(str(p) for p in where[:6]) + (", ..." if k > 6 else "")
    return Mutation(f"{k} bytes flipped at {shown}", bytes(data))


@st.composite
def overwrites(draw: Any, content: bytes) -> Mutation:
    """A range of 1-8192 bytes overwritten with 0x00, 0xFF, blanks or random bytes."""
    n = len(content)
    start = draw(st.integers(0, max(n - 1, 0)))
    length = draw(st.integers(1, 8192))
    fill = draw(st.sampled_from(["0x00", "0xFF", "blanks", "random"]))
    length = max(0, min(length, n - start))
    noise = np.random.default_rng(draw(SEEDS)).bytes(length)
    patch = {"0x00": b"\x00" * length, "0xFF": b"\xff" * length, "blanks": b" " * length, "random": noise}[fill]
    return Mutation(
        f"bytes {start}-{start + length} overwritten with {fill}", content[:start] + patch + content[start + length :]
    )


# ---------------------------------------------------------------------------------------------------- FITS
@dataclass(frozen=True)
class Hdu:
    """Where one HDU lies in a FITS file: its cards (80 characters each, END excluded) and its data unit."""

    start: int
    header_end: int
    data_end: int
    cards: tuple[str, ...]

    def keys(self) -> list[str]:
        return [card[:8].strip() for card in self.cards]

    def value(self, key: str) -> str | None:
        for card in self.cards:
            if card[:8].strip() == key and card[8:10] == "= ":
                return card[10:].split("/", 1)[0].strip().strip("'").strip()
        return None


@lru_cache(maxsize=64)
def fits_layout(content: bytes) -> tuple[Hdu, ...]:
    """The HDUs of a well-formed FITS file (stops at the first thing it cannot follow)."""
    hdus = []
    offset = 0
    while offset + BLOCK <= len(content):
        cards: list[str] = []
        position, end_found = offset, False
        while position + BLOCK <= len(content) and not end_found:
            block = content[position : position + BLOCK].decode("ascii", errors="replace")
            position += BLOCK
            for i in range(0, BLOCK, CARD):
                card = block[i : i + CARD]
                if card[:8].strip() == "END":
                    end_found = True
                    break
                cards.append(card)
        if not end_found:
            break
        hdu = Hdu(offset, position, position, tuple(card for card in cards if card.strip()))
        size = _data_size(hdu)
        if size is None:
            break
        hdus.append(Hdu(offset, position, position + size, hdu.cards))
        offset = position + size
    return tuple(hdus)


def _data_size(hdu: Hdu) -> int | None:
    try:
        naxis = int(hdu.value("NAXIS") or 0)
        if naxis == 0:
            return 0
        size = abs(int(hdu.value("BITPIX") or 0)) // 8
        for axis in range(1, naxis + 1):
            size *= int(hdu.value(f"NAXIS{axis}") or 0)
        size = (size + int(hdu.value("PCOUNT") or 0)) * int(hdu.value("GCOUNT") or 1)
    except ValueError:
        return None
    return -(-size // BLOCK) * BLOCK


def _header_bytes(cards: list[str], with_end: bool = True) -> bytes:
    text = "".join(card.ljust(CARD)[:CARD] for card in cards) + ("END".ljust(CARD) if with_end else "")
    padded = -(-len(text) // BLOCK) * BLOCK
    return text.ljust(max(padded, BLOCK)).encode("ascii", errors="replace")


def _replace_header(content: bytes, hdu: Hdu, cards: list[str], with_end: bool = True) -> bytes:
    return content[: hdu.start] + _header_bytes(cards, with_end) + content[hdu.header_end :]


def _card(key: str, value: str) -> str:
    """A card ``KEY     = value`` (value text as given: quoted strings, numbers, junk)."""
    if len(key) > 8:
        return f"HIERARCH {key} = {value}"
    return f"{key:<8}= {value:>20}"


INT_VALUES = [0, 1, 2, 3, -1, 7, 999, 2**31 - 1, 2**31, 10**9, 10**12, 2**63 - 1, 10**18, 10**30]
ABSURD_DIMENSIONS = [10**6, 10**8, 10**9, 2**31, 10**12, 2**63 - 1, 10**18, 10**30, -1, -(10**12)]
BITPIX_VALUES = [8, 16, 32, 64, -32, -64, 0, 7, -16, 24, 128]
TFORM_VALUES = [
    "1E", "342E", "344E", "343D", "2400E", "2401E", "2402D", "1D", "10A", "0E", "100000000E",
    "1000000000000E", "PE(343)", "QD(10)", "PE(1000000000000)", "X", "E343", "", "1J", "8X", "1K", "ZZ", "-1E",
]  # fmt: skip
UNIT_VALUES = [
    "furlong", "m", "km", "km/s", "Jy", "adu", "", "nm", "Angstrom", "um", "erg", "log(nm)", "???", "10**-17 erg/s",
]  # fmt: skip
FLOAT_VALUES = ["0", "-1", "1E300", "-1E300", "1E-300", "NaN", "'nan'", "4179000.0", "1E10", "-9999", "inf", "'x'"]
STRING_VALUES = ["''", "'   '", "'4MOST-HRS'", "'SCIENCE.IMAGE'", "'" + "x" * 66 + "'", "'unterminated", "1", "T"]
XTENSION_VALUES = ["'IMAGE   '", "'BINTABLE'", "'TABLE   '", "'A3DTABLE'", "'FOO'", "''", "1"]
NAME_VALUES = ["''", "'flux'", "'FLUX'", "'wave'", "'WAVE'", "'source_id'", "'flux_error'", "'x'", "'flux '", "'ERR'"]
TDIM_VALUES = ["'(343)'", "'(7,49)'", "'(1000000000000)'", "'()'", "'(0)'", "'(2401,2)'", "'(-1)'"]
INT_KEYS = re.compile(r"^(NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|THEAP|NWAVE|NELEM|NVISITS|TNULL\d+|BLANK|EXTEND)$")
FLOAT_KEYS = re.compile(r"^(CRVAL\d|CDELT\d|CRPIX\d|CD\d_\d|WAVELMIN|WAVELMAX|SPEC_BIN|SNR\w*|VHELIO\d*|VRAD|BSCALE|BZERO|TSCAL\d+|TZERO\d+|MJD-OBS|RA|DEC)$")  # fmt: skip


def _values_for(key: str, hdu: Hdu) -> st.SearchStrategy[str]:
    """Replacement value texts for card ``key``."""
    if key == "BITPIX":
        return st.sampled_from([str(v) for v in BITPIX_VALUES])
    if re.fullmatch(r"NAXIS\d+", key):
        return st.sampled_from([str(v) for v in ABSURD_DIMENSIONS + INT_VALUES] + ["'abc'", "1.5", ""])
    if INT_KEYS.match(key):
        return st.sampled_from([str(v) for v in INT_VALUES] + ["'abc'", "1.5", "", "T"])
    if key.startswith("TFORM"):
        original = hdu.value(key) or "E"
        derived = [re.sub(r"\d+", lambda m, d=d: str(int(m.group()) + d), original) for d in (-1, 1)]
        return st.sampled_from([f"'{v}'" for v in TFORM_VALUES + derived])
    if key.startswith(("TUNIT", "CUNIT", "BUNIT")):
        return st.sampled_from([f"'{v}'" for v in UNIT_VALUES])
    if key.startswith("TTYPE"):
        return st.sampled_from(NAME_VALUES)
    if key.startswith("TDIM"):
        return st.sampled_from(TDIM_VALUES)
    if key.startswith("CTYPE"):
        return st.sampled_from(["'LINEAR'", "'WAVE'", "'LOG-LINEAR'", "''", "'AWAV-LOG'", "1"])
    if key == "XTENSION":
        return st.sampled_from(XTENSION_VALUES)
    if key == "SIMPLE":
        return st.sampled_from(["F", "T", "1", "''"])
    if FLOAT_KEYS.match(key):
        return st.sampled_from(FLOAT_VALUES)
    return st.sampled_from(STRING_VALUES + FLOAT_VALUES[:4] + ["'abc'"])


STRUCTURAL = re.compile(r"^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|TFORM\d+|TTYPE\d+|TDIM\d+|TUNIT\d+|BUNIT|CRVAL1|CDELT1)$")  # fmt: skip


@st.composite
def _hdu(draw: Any, content: bytes) -> tuple[int, Hdu]:
    layout = fits_layout(content)
    index = draw(st.integers(0, len(layout) - 1))
    return index, layout[index]


@st.composite
def fits_set_card(draw: Any, content: bytes) -> Mutation:
    """One header card of one HDU set to an absurd, wrong-type or wrong-unit value."""
    index, hdu = draw(_hdu(content))
    keys = [k for k in hdu.keys() if k and k not in ("COMMENT", "HISTORY", "")]
    structural = [k for k in keys if STRUCTURAL.match(k)]
    key = draw(st.sampled_from(structural or keys)) if draw(st.booleans()) or not keys else draw(st.sampled_from(keys))
    value = draw(_values_for(key, hdu))
    cards = [(_card(key, value) if c[:8].strip() == key and c[8:10] == "= " else c) for c in hdu.cards]
    return Mutation(f"HDU{index} {key} = {value}", _replace_header(content, hdu, cards))


@st.composite
def fits_absurd_dimension(draw: Any, content: bytes) -> Mutation:
    """NAXISn, PCOUNT or GCOUNT of an HDU with data set to a dimension no file can hold."""
    layout = fits_layout(content)
    candidates = [(i, h) for i, h in enumerate(layout) if h.data_end > h.header_end]
    index, hdu = draw(st.sampled_from(candidates))
    keys = [k for k in hdu.keys() if re.fullmatch(r"NAXIS\d+|PCOUNT|GCOUNT", k)]
    key = draw(st.sampled_from(keys))
    value = draw(st.sampled_from(ABSURD_DIMENSIONS))
    cards = [(_card(key, str(value)) if c[:8].strip() == key else c) for c in hdu.cards]
    return Mutation(f"HDU{index} {key} = {value} (absurd dimension)", _replace_header(content, hdu, cards))


ADDED_CARDS: list[tuple[str, list[str]]] = [
    ("CUNIT1", ["'furlong'", "'m'", "'nm'"]),
    ("BUNIT", ["'furlong'", "'m'"]),
    ("TUNIT1", ["'furlong'", "'m'", "'Angstrom'"]),
    ("BSCALE", ["0", "1E300", "'x'"]),
    ("BZERO", ["1E300", "32768", "'x'"]),
    ("TSCAL1", ["0", "1E300"]),
    ("TZERO1", ["1E300", "9223372036854775808"]),
    ("TNULL1", ["0", "999999"]),
    ("TDIM1", TDIM_VALUES),
    ("THEAP", ["0", "1000000000000", "-1"]),
    ("BLANK", ["0", "-1"]),
    ("CTYPE1", ["'WAVE'", "'LINEAR'"]),
    ("CRVAL1", ["1E300", "'x'"]),
    ("NWAVE", ["1", "10000"]),
    ("ZIMAGE", ["T"]),
    ("PRODCATG", ["'SCIENCE.SPECTRUM'"]),
    ("INSTRUME", ["'4MOST'", "'4MOST-HRS'"]),
]


@st.composite
def fits_add_card(draw: Any, content: bytes) -> Mutation:
    """A card added before END (unit, scaling, null, dimension keywords; maybe a duplicate)."""
    index, hdu = draw(_hdu(content))
    key, values = draw(st.sampled_from(ADDED_CARDS))
    value = draw(st.sampled_from(values))
    cards = list(hdu.cards) + [_card(key, value)]
    return Mutation(f"HDU{index} card added: {key} = {value}", _replace_header(content, hdu, cards))


@st.composite
def fits_remove_card(draw: Any, content: bytes) -> Mutation:
    """A card removed (a required structural keyword half the time), or the END card removed."""
    index, hdu = draw(_hdu(content))
    if draw(st.integers(0, 5)) == 0:
        return Mutation(f"HDU{index} END removed", _replace_header(content, hdu, list(hdu.cards), with_end=False))
    keys = hdu.keys()
    structural = [k for k in keys if STRUCTURAL.match(k)]
    key = draw(st.sampled_from(structural)) if structural and draw(st.booleans()) else draw(st.sampled_from(keys))
    cards = [c for c in hdu.cards if c[:8].strip() != key]
    return Mutation(f"HDU{index} {key} removed", _replace_header(content, hdu, cards))


@st.composite
def fits_hdus(draw: Any, content: bytes) -> Mutation:
    """An HDU dropped, repeated, swapped with the next, or its data unit cut away."""
    layout = fits_layout(content)
    index = draw(st.integers(0, len(layout) - 1))
    hdu = layout[index]
    action = draw(st.sampled_from(["drop", "repeat", "swap", "no data"]))
    part = content[hdu.start : hdu.data_end]
    if action == "drop":
        data = content[: hdu.start] + content[hdu.data_end :]
    elif action == "repeat":
        data = content[: hdu.data_end] + part + content[hdu.data_end :]
    elif action == "swap" and index + 1 < len(layout):
        after = layout[index + 1]
        data = content[: hdu.start] + content[after.start : after.data_end] + part + content[after.data_end :]
    else:
        action = "no data" if action == "no data" else action
        data = content[: hdu.header_end] + content[hdu.data_end :]
    return Mutation(f"HDU{index} {action}", data)


DATA_VALUES = [np.nan, np.inf, -np.inf, 1e38, -1e38, 0.0, -1.0, 1e-45, 3.4e38]
INT_DATA_VALUES = [-1, 0, 1, 2**15 - 1, -(2**15), 2**31 - 1]


@st.composite
def fits_data_values(draw: Any, content: bytes) -> Mutation:
    """Elements of an image HDU or of a numeric table column set to NaN, inf, huge, 0 or negative values."""
    from astropy.io import fits

    seed = draw(SEEDS)
    value_index = draw(st.integers(0, len(DATA_VALUES) - 1))
    how_many = draw(st.sampled_from(["1", "10", "1000", "all"]))
    pick = draw(st.integers(0, 10**6))
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(io.BytesIO(content), memmap=False) as hdul:
            targets = []
            for number, hdu in enumerate(hdul):
                if hdu.data is None:
                    continue
                if isinstance(hdu, fits.BinTableHDU):
                    for name in hdu.columns.names:
                        if np.asarray(hdu.data[name]).dtype.kind in "iuf" and hdu.data[name].size:
                            targets.append((number, name))
                elif isinstance(hdu, fits.ImageHDU | fits.PrimaryHDU) and hdu.data.size:
                    targets.append((number, None))
            if not targets:
                return Mutation("no data values to change", content)
            number, column = targets[pick % len(targets)]
            hdu = hdul[number]
            array = np.asarray(hdu.data[column] if column is not None else hdu.data)
            values = array.copy().reshape(-1)
            count = values.size if how_many == "all" else min(int(how_many), values.size)
            where = rng.choice(values.size, count, replace=False)
            if values.dtype.kind == "f":
                value: Any = DATA_VALUES[value_index]
            else:
                value = INT_DATA_VALUES[value_index % len(INT_DATA_VALUES)]
                info = np.iinfo(values.dtype)
                value = int(np.clip(value, info.min, info.max))
            with np.errstate(all="ignore"):
                values[where] = value
            if column is not None:
                hdu.data[column] = values.reshape(array.shape)
            else:
                hdu.data = values.reshape(array.shape)
            out = io.BytesIO()
            hdul.writeto(out, output_verify="silentfix")
    what = f"column {column!r}" if column is not None else "image"
    return Mutation(f"HDU{number} {what}: {count} values set to {value}", out.getvalue())


def fits_mutations(content: bytes) -> st.SearchStrategy[Mutation]:
    """Structured FITS mutations (header cards, HDUs, data values)."""
    if not fits_layout(content):
        return raw_mutations(content)
    options = [
        tagged(fits_set_card(content), "fits-card"),
        tagged(fits_remove_card(content), "fits-remove-card"),
        tagged(fits_add_card(content), "fits-add-card"),
        tagged(fits_hdus(content), "fits-hdu"),
    ]
    if any(h.data_end > h.header_end for h in fits_layout(content)):
        options += [tagged(fits_absurd_dimension(content), "fits-absurd-dimension")]
        options += [tagged(fits_data_values(content), "fits-nan-inf-data")]
    return st.one_of(options)


# ----------------------------------------------------------------------------------------------- CSV, ECSV
VALUE_TEXTS = [
    "nan", "NaN", "inf", "-inf", "Infinity", "-Infinity", "", "null", "1e400", "-1e400", "0", "-0", "1e-400",
    "abc", "--", "None", "1.0.0", "0x10", "\u0663", "[]", "[nan]", "1e5", "-1", "99999999999999999999999",
    "-9223372036854775809", " 1 ", "1,5",
]  # fmt: skip
ELEMENT_TEXTS = ["nan", "NaN", "null", "inf", "-inf", "Infinity", "", "1e400", "abc", "1.5E-4", "9.99999999999999999999", "-", ".", "1..2", "00000000000000001.5", "1e99999", "True"]  # fmt: skip


@dataclass
class TextFile:
    """A CSV/ECSV text split into lines: ``#`` header lines, the column line, the data lines."""

    lines: list[str]
    column_line: int | None
    delimiter: str

    @property
    def data_lines(self) -> list[int]:
        start = (self.column_line or 0) + 1
        return [i for i in range(start, len(self.lines)) if self.lines[i].strip() and not self.lines[i].startswith("#")]

    def text(self) -> bytes:
        return "".join(self.lines).encode("utf-8", errors="surrogateescape")


def parse_text(content: bytes) -> TextFile:
    """Lines (with their endings), the position of the column line and the delimiter."""
    text = content.decode("utf-8", errors="surrogateescape")
    lines = text.splitlines(keepends=True)
    column_line = next((i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), None)
    match = re.search(r"^#\s*delimiter:\s*'(.)'", text, re.MULTILINE)
    return TextFile(lines, column_line, match.group(1) if match else ",")


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return line.rstrip("\r\n").split(delimiter)


def _join(fields: list[str], delimiter: str, ending: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="", quoting=csv.QUOTE_MINIMAL).writerow(fields)
    return out.getvalue() + ending


def _ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :]


def _rows(draw: Any, text: TextFile, rng: np.random.Generator) -> list[int]:
    """Some data lines: one, a few, or all of them."""
    data = text.data_lines
    if not data:
        return []
    how = draw(st.sampled_from(["one", "few", "all"]))
    if how == "all":
        return data
    count = 1 if how == "one" else min(len(data), 8)
    return sorted(rng.choice(data, count, replace=False).tolist())


@st.composite
def text_column(draw: Any, content: bytes) -> Mutation:
    """A column deleted or renamed (header line only, or everywhere)."""
    text = parse_text(content)
    if text.column_line is None:
        return Mutation("no column line", content)
    header = _split(text.lines[text.column_line], text.delimiter)
    j = draw(st.integers(0, max(len(header) - 1, 0)))
    action = draw(st.sampled_from(["delete", "delete from header only", "rename"]))
    lines = list(text.lines)
    if action == "rename":
        new = draw(st.sampled_from(["", "FLUX", "x", "flux ", "wavelength", "source_id", "flux_error", "\u00e9"]))
        fields = header.copy()
        if j < len(fields):
            fields[j] = new
        lines[text.column_line] = _join(fields, text.delimiter, _ending(lines[text.column_line]))
        name = header[j] if j < len(header) else "?"
        return Mutation(f"column {name!r} renamed to {new!r}", "".join(lines).encode("utf-8", "surrogateescape"))
    targets = [text.column_line] + ([] if action.endswith("only") else text.data_lines)
    for i in targets:
        fields = _split(lines[i], text.delimiter)
        if j < len(fields):
            del fields[j]
        lines[i] = _join(fields, text.delimiter, _ending(lines[i]))
    name = header[j] if j < len(header) else "?"
    return Mutation(f"column {name!r}: {action}", "".join(lines).encode("utf-8", "surrogateescape"))


@st.composite
def text_values(draw: Any, content: bytes) -> Mutation:
    """Values of one column, in one, a few or all data lines, set to NaN, inf, '', junk or a huge number."""
    text = parse_text(content)
    rng = np.random.default_rng(draw(SEEDS))
    rows = _rows(draw, text, rng)
    if not rows:
        return Mutation("no data lines", content)
    width = len(_split(text.lines[rows[0]], text.delimiter))
    j = draw(st.integers(0, max(width - 1, 0)))
    value = draw(st.sampled_from(VALUE_TEXTS))
    lines = list(text.lines)
    for i in rows:
        fields = _split(lines[i], text.delimiter)
        if j < len(fields):
            fields[j] = value
        lines[i] = _join(fields, text.delimiter, _ending(lines[i]))
    return Mutation(
        f"field {j} of {len(rows)} data lines set to {value!r}", "".join(lines).encode("utf-8", "surrogateescape")
    )


@st.composite
def text_arrays(draw: Any, content: bytes) -> Mutation:
    """Elements of array cells (``"[a,b,...]"``) dropped, added or replaced by NaN/inf/''/junk."""
    text = parse_text(content)
    rng = np.random.default_rng(draw(SEEDS))
    rows = _rows(draw, text, rng)
    action = draw(st.sampled_from(["drop", "add", "replace", "empty", "unclosed"]))
    k = draw(st.sampled_from([1, 2, 100]))
    element = draw(st.sampled_from(ELEMENT_TEXTS))
    lines = list(text.lines)
    changed = 0
    for i in rows:
        fields = _split(lines[i], text.delimiter)
        arrays = [n for n, f in enumerate(fields) if len(f) >= 2 and f[0] in "[(" and f[-1] in "])"]
        if not arrays:
            continue
        n = arrays[int(rng.integers(len(arrays)))]
        opening, closing = fields[n][0], fields[n][-1]
        items = fields[n][1:-1].split(",")
        if action == "drop":
            items = items[k:]
        elif action == "add":
            items = items + [element or "1.0"] * k
        elif action == "replace":
            for position in rng.choice(len(items), min(k, len(items)), replace=False).tolist():
                items[position] = element
        elif action == "empty":
            items = []
        fields[n] = opening + ",".join(items) + ("" if action == "unclosed" else closing)
        lines[i] = _join(fields, text.delimiter, _ending(lines[i]))
        changed += 1
    label = f"array cells of {changed} lines: {action}" + (
        f" {k} x {element!r}" if action in ("add", "replace") else f" {k}" if action == "drop" else ""
    )
    return Mutation(label, "".join(lines).encode("utf-8", "surrogateescape"))


@st.composite
def text_huge_field(draw: Any, content: bytes) -> Mutation:
    """One field replaced by a huge repeated text (up to 4 MB)."""
    text = parse_text(content)
    candidates = text.data_lines or list(range(len(text.lines)))
    if not candidates:
        return Mutation("empty text", content)
    i = draw(st.sampled_from(candidates))
    unit = draw(st.sampled_from(["9", "x", "1.5,", " ", "[", "nan,", "\u00e9"]))
    size = draw(st.sampled_from([1000, 100_000, 1_000_000, 4_000_000]))
    fields = _split(text.lines[i], text.delimiter)
    j = draw(st.integers(0, max(len(fields) - 1, 0)))
    huge = unit * (size // len(unit))
    if j < len(fields):
        fields[j] = huge
    lines = list(text.lines)
    lines[i] = _join(fields, text.delimiter, _ending(lines[i]))
    return Mutation(
        f"line {i} field {j}: {unit!r} x {size // len(unit)}", "".join(lines).encode("utf-8", "surrogateescape")
    )


@st.composite
def text_lines(draw: Any, content: bytes) -> Mutation:
    """Lines deleted, repeated, swapped, blanked, cut, or a stray quote inserted."""
    text = parse_text(content)
    if not text.lines:
        return Mutation("empty text", content)
    rng = np.random.default_rng(draw(SEEDS))
    lines = list(text.lines)
    action = draw(
        st.sampled_from(
            [
                "delete",
                "repeat",
                "swap",
                "blank",
                "cut",
                "quote",
                "delete column line",
                "delete data",
                "delete # lines",
                "shuffle",
            ]
        )
    )
    i = int(rng.integers(len(lines)))
    j = int(rng.integers(len(lines)))
    if action == "delete":
        del lines[i]
    elif action == "repeat":
        lines.insert(i, lines[i])
    elif action == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif action == "blank":
        lines[i] = "\n"
    elif action == "cut":
        lines[i] = lines[i][: int(rng.integers(len(lines[i]) + 1))] + "\n"
    elif action == "quote":
        position = int(rng.integers(len(lines[i]) + 1))
        lines[i] = lines[i][:position] + '"' + lines[i][position:]
    elif action == "delete column line" and text.column_line is not None:
        del lines[text.column_line]
    elif action == "delete data":
        lines = [line for n, line in enumerate(lines) if n not in set(text.data_lines)]
    elif action == "delete # lines":
        lines = [line for line in lines if not line.startswith("#")]
    elif action == "shuffle":
        data = text.data_lines
        order = rng.permutation(data).tolist()
        original = list(lines)
        for target, source in zip(data, order, strict=True):
            lines[target] = original[source]
    return Mutation(f"lines: {action} (line {i}, {j})", "".join(lines).encode("utf-8", "surrogateescape"))


@st.composite
def text_ecsv_header(draw: Any, content: bytes) -> Mutation:
    """An ECSV header line deleted or its value replaced (datatype, subtype, delimiter, YAML junk)."""
    text = parse_text(content)
    header = [i for i, line in enumerate(text.lines) if line.startswith("#")]
    if not header:
        return Mutation("no # lines", content)
    i = draw(st.sampled_from(header))
    lines = list(text.lines)
    if draw(st.booleans()):
        del lines[i]
        return Mutation(f"# line {i} deleted", "".join(lines).encode("utf-8", "surrogateescape"))
    value = draw(
        st.sampled_from(
            [
                "",
                "float32",
                "string",
                "int64",
                "'float32[2401]'",
                "'float32[1000000000000]'",
                "furlong",
                "m",
                "Angstrom",
                "[",
                "{",
                "'",
                "\t",
                "' '",
                "';'",
                "!!binary x",
                "&a *a",
            ]
        )
    )
    line = lines[i]
    if ":" in line:
        line = line[: line.index(":") + 1] + " " + value + _ending(line)
    else:
        line = line.rstrip("\r\n") + value + _ending(line)
    lines[i] = line
    return Mutation(f"# line {i} value set to {value!r}", "".join(lines).encode("utf-8", "surrogateescape"))


@st.composite
def text_encoding(draw: Any, content: bytes) -> Mutation:
    """CRLF or CR line ends, a BOM, NUL bytes or latin-1 bytes in the text."""
    action = draw(st.sampled_from(["crlf", "cr", "bom", "nul", "latin-1", "no final newline"]))
    rng = np.random.default_rng(draw(SEEDS))
    if action == "crlf":
        data = content.replace(b"\n", b"\r\n")
    elif action == "cr":
        data = content.replace(b"\n", b"\r")
    elif action == "bom":
        data = b"\xef\xbb\xbf" + content
    elif action == "nul" and content:
        where = int(rng.integers(len(content)))
        data = content[:where] + b"\x00" * 16 + content[where:]
    elif action == "latin-1" and content:
        where = int(rng.integers(len(content)))
        data = content[:where] + b"\xe9\xff" + content[where:]
    else:
        data = content.rstrip(b"\n")
    return Mutation(f"encoding: {action}", data)


def text_mutations(content: bytes) -> st.SearchStrategy[Mutation]:
    """Structured CSV/ECSV mutations."""
    return st.one_of(
        tagged(text_column(content), "text-column"),
        tagged(text_values(content), "text-values"),
        tagged(text_arrays(content), "text-arrays"),
        tagged(text_huge_field(content), "text-huge-field"),
        tagged(text_lines(content), "text-lines"),
        tagged(text_ecsv_header(content), "ecsv-header"),
        tagged(text_encoding(content), "text-encoding"),
    )


# ------------------------------------------------------------------------------------------------- VOTable
_ATTRIBUTE = re.compile(rb'(\w+)="([^"]*)"')
_TAG = re.compile(rb"<[^<>]*>")
_TD = re.compile(rb"<TD>([^<]*)</TD>")


@st.composite
def xml_mutations(draw: Any, content: bytes) -> Mutation:
    """An attribute value changed, a tag deleted, or a ``<TD>`` value replaced."""
    action = draw(st.sampled_from(["attribute", "tag", "cell"]))
    pattern = {"attribute": _ATTRIBUTE, "tag": _TAG, "cell": _TD}[action]
    matches = list(pattern.finditer(content[:2_000_000]))
    if not matches:
        return Mutation(f"no {action} to change", content)
    match = matches[draw(st.integers(0, len(matches) - 1))]
    if action == "tag":
        return Mutation(f"tag {match.group()[:40]!r} deleted", content[: match.start()] + content[match.end() :])
    value = draw(
        st.sampled_from(
            [
                "",
                "2400",
                "*",
                "1000000000000",
                "double",
                "char",
                "unicodeChar",
                "furlong",
                "x",
                "nan",
                "inf",
                "-1",
                "1e400",
            ]
        )
    ).encode()
    start, end = match.span(2 if action == "attribute" else 1)
    label = f"{action} {match.group()[:40]!r} value set to {value!r}"
    return Mutation(label, content[:start] + value + content[end:])


# ----------------------------------------------------------------------------------------------------- zip
def _zip_members(content: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        return [(info, bundle.read(info)) for info in bundle.infolist()]


def _zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are intended
        with zipfile.ZipFile(out, "w") as bundle:
            for name, payload in members:
                info = zipfile.ZipInfo(name, date_time=(2024, 5, 28, 23, 59, 0))
                info.compress_type = method
                bundle.writestr(info, payload)
    return out.getvalue()


MEMBER_NAMES = [
    "", "dir/", "RVS-Gaia DR3 abc.csv", "RVS-Gaia DR3 99999999999999999999999.csv", "RVS-Gaia DR3 1.fits",
    "XP_SAMPLED-Gaia DR3 1.csv", "XP_SAMPLED-Gaia DR3 5937083312263887616.fits", "RVS-Gaia DR3 1.zip", "notes.txt",
]  # fmt: skip


@st.composite
def zip_mutations(draw: Any, content: bytes) -> Mutation:
    """Central directory truncated or corrupted; members renamed, dropped, repeated, added or mutated."""
    members = _zip_members(content)
    pairs = [(info.filename, data) for info, data in members]
    action = draw(
        st.sampled_from(
            ["truncate directory", "rename", "drop", "repeat", "add", "member", "member", "method", "directory field"]
        )
    )
    if action == "truncate directory":
        end = content.rfind(b"PK\x05\x06")
        start = struct.unpack("<I", content[end + 16 : end + 20])[0] if end >= 0 else 0
        offset = draw(st.integers(min(start, len(content) - 1), len(content) - 1))
        return Mutation(f"zip truncated to {offset} (central directory at {start}-{len(content)})", content[:offset])
    if action == "directory field":
        end = content.rfind(b"PK\x05\x06")
        start = struct.unpack("<I", content[end + 16 : end + 20])[0]
        entries = [m.start() for m in re.finditer(re.escape(b"PK\x01\x02"), content[start:])]
        entry = start + entries[draw(st.integers(0, len(entries) - 1))]
        name, offset = draw(
            st.sampled_from(
                [
                    ("flags", 8),
                    ("method", 10),
                    ("compressed size", 20),
                    ("size", 24),
                    ("name length", 28),
                    ("local header offset", 42),
                ]
            )
        )
        size = 2 if name in ("flags", "method", "name length") else 4
        value = draw(st.sampled_from([0, 1, 8, 12, 14, 99, 2**11, 2**16 - 1, 2**31, 2**32 - 1]))
        value = min(value, 2 ** (8 * size) - 1)
        patch = value.to_bytes(size, "little")
        return Mutation(
            f"zip directory entry {name} = {value}",
            content[: entry + offset] + patch + content[entry + offset + size :],
        )
    i = draw(st.integers(0, len(pairs) - 1))
    name, payload = pairs[i]
    if action == "rename":
        original = name.rsplit("/", 1)[-1]
        new = draw(
            st.sampled_from(
                MEMBER_NAMES
                + [
                    original.upper(),
                    original.replace("RVS-", "RVS_"),
                    original.replace("-", "_"),
                    "../" + original,
                    "a/" + original,
                ]
                + [re.sub(r"\.\w+$", suffix, original) for suffix in (".fits", ".csv", ".xml", ".ecsv", ".csv.gz")]
            )
        )
        pairs[i] = (new, payload)
        label = f"member {name!r} renamed to {new!r}"
    elif action == "drop":
        del pairs[i]
        label = f"member {name!r} dropped"
    elif action == "repeat":
        pairs.insert(i, (name, payload))
        label = f"member {name!r} repeated"
    elif action == "add":
        new = draw(st.sampled_from(MEMBER_NAMES[1:7]))
        junk = draw(st.sampled_from([b"", b"source_id,flux\n1,2\n", FITS_MAGIC + b" T", GZIP_MAGIC + b"\x08\x00"]))
        pairs.append((new, junk))
        label = f"member {new!r} added with {junk[:20]!r}"
    elif action == "member":
        inner = draw(mutations(payload, nested=True))
        pairs[i] = (name, inner.data)
        return Mutation(f"member {name!r}: {inner.label}", _zip(pairs), f"zip>{inner.family}")
    else:
        method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]))
        return Mutation(f"zip rewritten with compression {method}", _zip(pairs, method))
    return Mutation(label, _zip(pairs))


# ---------------------------------------------------------------------------------------------------- gzip
@st.composite
def gzip_mutations(draw: Any, content: bytes) -> Mutation:
    """The decompressed content mutated and compressed again; or the trailer corrupted; or junk appended."""
    inner = _gunzip(content)
    action = draw(st.sampled_from(["inner", "inner", "inner", "trailer", "junk after", "second member"]))
    if action == "trailer":
        noise = np.random.default_rng(draw(SEEDS)).bytes(8)
        return Mutation("gzip trailer (CRC, size) replaced", content[:-8] + noise)
    if action == "junk after":
        return Mutation(
            "junk after the gzip stream", content + draw(st.sampled_from([b"\x00" * 10, b"junk", GZIP_MAGIC]))
        )
    if action == "second member":
        return Mutation("gzip: a second member repeats the content", content + content)
    mutation = draw(mutations(inner, nested=True))
    data = gzip.compress(mutation.data, compresslevel=1, mtime=0)
    return Mutation(f"inside gzip: {mutation.label}", data, f"gzip>{mutation.family}")


@lru_cache(maxsize=8)
def _gunzip(content: bytes) -> bytes:
    return gzip.decompress(content)


# ---------------------------------------------------------------------------------------------- the checks
def check_spectra(spectra: Any) -> list[str]:
    """What is inconsistent in a reader's result (empty list: nothing).

    Shapes agree; the mask is boolean; ivar is finite and non-negative; every pixel that is good
    (unmasked with ivar > 0) has a finite flux and a finite wavelength; ids are not floats.
    """
    from starlabel.containers import Spectra

    if not isinstance(spectra, Spectra):
        return [f"read returned {type(spectra).__name__}, not Spectra"]
    problems = []
    flux, ivar, mask, wave = (np.asarray(a) for a in (spectra.flux, spectra.ivar, spectra.mask, spectra.wavelength))
    n = len(spectra.source_id)
    if flux.ndim != 2 or flux.shape[0] != n or ivar.shape != flux.shape or mask.shape != flux.shape:
        return [f"shapes: source_id ({n},), flux {flux.shape}, ivar {ivar.shape}, mask {mask.shape}"]
    if wave.shape not in ((flux.shape[1],), flux.shape):
        problems.append(f"wavelength shape {wave.shape} for flux {flux.shape}")
    if mask.dtype != bool:
        problems.append(f"mask dtype {mask.dtype}, expected bool")
    if spectra.source_id.dtype.kind == "f":
        problems.append("float source ids")
    with np.errstate(invalid="ignore"):
        if not np.all(np.isfinite(ivar)):
            problems.append(f"{np.count_nonzero(~np.isfinite(ivar))} ivar values are not finite")
        if np.any(ivar < 0):
            problems.append(f"{np.count_nonzero(ivar < 0)} ivar values are negative")
        good = ~mask.astype(bool) & (ivar > 0)
    if not np.all(np.isfinite(flux[good])):
        problems.append(
            f"{np.count_nonzero(~np.isfinite(flux[good]))} good pixels (unmasked, ivar > 0) have a non-finite flux"
        )
    if wave.shape in ((flux.shape[1],), flux.shape) and wave.dtype.kind in "iuf":
        full = np.broadcast_to(wave, flux.shape)
        if not np.all(np.isfinite(full[good])):
            problems.append("good pixels have a non-finite wavelength")
    return problems


# --------------------------------------------------------------------------------------- time and memory
class ReadTimedOut(BaseException):
    """Raised by the alarm when one example runs too long (a BaseException: no reader may swallow it)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`ReadTimedOut` in the main thread after ``seconds`` (SIGALRM; no-op where unavailable)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise ReadTimedOut(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class MemoryProbe:
    """How much one example raised this process's peak resident memory, in MiB.

    On Linux the kernel's high-water mark (``VmHWM``) is reset before each example (``/proc/self/clear_refs``),
    so every example is measured on its own. Elsewhere ``ru_maxrss`` is used: it never goes down, so only an
    example that raises the peak of the whole session is seen.
    """

    STATUS = Path("/proc/self/status")
    CLEAR = Path("/proc/self/clear_refs")

    def __init__(self) -> None:
        try:
            self.CLEAR.write_text("5")
            self.per_example = self._status("VmHWM") is not None
        except OSError:
            self.per_example = False
        self._start = 0.0

    def start(self) -> None:
        """Mark the start of an example."""
        if self.per_example:
            self.CLEAR.write_text("5")  # VmHWM := VmRSS
            self._start = self._status("VmRSS") or 0.0
        else:
            self._start = _maxrss_mib()

    def growth(self) -> float:
        """Peak memory above the start of the example (MiB)."""
        if self.per_example:
            return (self._status("VmHWM") or 0.0) - self._start
        return _maxrss_mib() - self._start

    def _status(self, key: str) -> float | None:
        for line in self.STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1]) / 1024  # kB
        return None


def _maxrss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# ------------------------------------------------------------------------------------------- bookkeeping
@dataclass
class ReaderStats:
    """Per reader: seed files used, inputs tried and what became of them."""

    seeds: set[str] = field(default_factory=set)
    tried: int = 0
    typed_errors: int = 0
    read_ok: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    """Distinct failures: signature (mutation family, what went wrong) → one example's details."""
    seconds: float = 0.0
    families: dict[str, list[int]] = field(default_factory=dict)
    """Mutation family → [inputs tried, typed errors, successful reads]."""

    def count(self, family: str, outcome: str) -> None:
        """Record one input of ``family``: ``outcome`` is ``typed``, ``ok`` or ``failed``."""
        self.tried += 1
        self.typed_errors += outcome == "typed"
        self.read_ok += outcome == "ok"
        tally = self.families.setdefault(family, [0, 0, 0])
        tally[0] += 1
        tally[1] += outcome == "typed"
        tally[2] += outcome == "ok"


def format_table(stats: dict[str, ReaderStats]) -> str:
    """The summary table: reader, seed files, inputs tried, typed errors, successful reads, failures."""
    header = ("reader", "seed files", "inputs tried", "typed errors", "successful reads", "failures", "seconds")
    rows = [
        (
            name,
            str(len(s.seeds)),
            str(s.tried),
            str(s.typed_errors),
            str(s.read_ok),
            str(len(s.failures)),
            f"{s.seconds:.1f}",
        )
        for name, s in sorted(stats.items())
    ]
    total = [
        "total",
        str(sum(len(s.seeds) for s in stats.values())),
        *(str(sum(getattr(s, key) for s in stats.values())) for key in ("tried", "typed_errors", "read_ok")),
        str(sum(len(s.failures) for s in stats.values())),
        f"{sum(s.seconds for s in stats.values()):.1f}",
    ]
    widths = [max(len(row[i]) for row in [header, *rows, total]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    render: Callable[[tuple[str, ...] | list[str]], str] = lambda row: "  ".join(  # noqa: E731
        cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
    )
    out = [render(header), line, *(render(row) for row in rows), line, render(total)]
    families: dict[str, list[int]] = {}
    for s in stats.values():
        for family, tally in s.families.items():
            families[family] = [a + b for a, b in zip(families.get(family, [0, 0, 0]), tally, strict=True)]
    if families:
        out.append(
            "inputs per mutation family (tried/typed errors/successful reads): "
            + ", ".join(f"{family} {t}/{e}/{k}" for family, (t, e, k) in sorted(families.items()))
        )
    for name, s in sorted(stats.items()):
        for detail in s.failures.values():
            out.append(f"FAILURE {name}: {detail}")
    return "\n".join(out)


def write_mutated(directory: Path, seed: Seed, mutation: Mutation) -> Path:
    """Write the mutated bytes under the seed's file name in ``directory`` and return the path."""
    path = directory / seed.name
    path.write_bytes(mutation.data)
    return path
