"""Text helpers for Gaia archive CSV and ECSV files: quote-aware field splitting and ECSV headers.

Gaia ECSV files start with YAML lines prefixed ``# `` (``# %ECSV 1.0``, ``# ---``, ``# delimiter: ','``,
``# datatype:`` with one ``name``/``datatype``/``subtype`` entry per column, ``# meta:``), then a CSV
header line and CSV rows. Array cells are JSON arrays inside one double-quoted field: ``"[1.0,2.0]"``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_DELIMITER = re.compile(r"^#\s*delimiter:\s*['\"]?(.)['\"]?\s*$")
_NAME = re.compile(r"^#\s*(?:-\s*)?(?:\{\s*)?name:\s*([^,}\s]+)")
_KEY = re.compile(r"\b(datatype|subtype):\s*['\"]?([^'\"\s,}]+)")
_SUBTYPE_LENGTH = re.compile(r"\[(\d+)\]")


@dataclass
class EcsvHeader:
    """What the ``#`` lines of an ECSV file declare (parsed without YAML, for speed and tolerance).

    Attributes
    ----------
    is_ecsv : bool
        The first line is ``# %ECSV ...``.
    delimiter : str
        ``','`` unless the header says otherwise.
    datatypes : dict of str to str
        Column name (lower case) → declared ``datatype``.
    subtypes : dict of str to str
        Column name (lower case) → declared ``subtype`` (e.g. ``float32[null]``), where given.
    lines : list of str
        The header lines as read.
    """

    is_ecsv: bool = False
    delimiter: str = ","
    datatypes: dict[str, str] = field(default_factory=dict)
    subtypes: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def declared_length(self, column: str) -> int | None:
        """The fixed array length the subtype of ``column`` declares (``float32[2401]``), else None."""
        match = _SUBTYPE_LENGTH.search(self.subtypes.get(column, ""))
        return int(match.group(1)) if match else None

    def meta(self) -> dict[str, Any]:
        """The YAML ``meta:`` mapping (empty when absent or not plain YAML)."""
        import yaml

        text = "\n".join(line[2:] if line.startswith("# ") else line[1:] for line in self.lines[1:])
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            document = yaml.load(text, Loader=loader)  # a safe loader
        except Exception:  # an unusual header must not stop reading the table itself
            return {}
        meta = document.get("meta") if isinstance(document, dict) else None
        if isinstance(meta, list):  # !!omap comes back as a list of pairs
            meta = {k: v for item in meta if isinstance(item, dict) for k, v in item.items()}
        return meta if isinstance(meta, dict) else {}


def parse_ecsv_header(lines: Iterable[str]) -> EcsvHeader:
    """Parse the leading ``#`` lines of a CSV/ECSV text (other lines are ignored)."""
    header = EcsvHeader(lines=[line for line in lines if line.startswith("#")])
    if not header.lines:
        return header
    header.is_ecsv = header.lines[0].startswith("# %ECSV")
    current: str | None = None
    for line in header.lines:
        if line.startswith(("# meta:", "# schema:")):
            break  # the column declarations are over
        delimiter = _DELIMITER.match(line)
        if delimiter:
            header.delimiter = delimiter.group(1)
            continue
        name = _NAME.match(line)
        if name:
            current = name.group(1).strip("'\"").lower()
        for key, value in _KEY.findall(line):
            if current is not None:
                target = header.datatypes if key == "datatype" else header.subtypes
                target.setdefault(current, value)
    return header


def column_names(line: str, delimiter: str = ",") -> list[str]:
    """Lower-case column names of a CSV header line (quotes and spaces removed)."""
    return [name.strip().strip("'\"").strip().lower() for name in next(csv.reader([line], delimiter=delimiter))]


def split_fields(line: bytes, delimiter: bytes = b",") -> list[bytes] | None:
    """Split one CSV row into fields, keeping double-quoted fields (JSON arrays) whole.

    Returns None for a malformed row (unbalanced quotes, text glued to a quoted field). Doubled quotes
    inside a quoted field are handled by the :mod:`csv` module (slow path).
    """
    if b'"' not in line:
        return line.split(delimiter)
    parts = line.split(b'"')
    if len(parts) % 2 == 0:
        return None
    fields = parts[0].split(delimiter)
    for k in range(1, len(parts), 2):
        rest = parts[k + 1].split(delimiter)
        if fields[-1].strip() or rest[0].strip():
            if parts[k + 1] == b"" or parts[k] == b"":  # "" escapes: let the csv module decide
                return _split_csv(line, delimiter)
            return None
        fields[-1] = parts[k]
        fields.extend(rest[1:])
    return fields


def _split_csv(line: bytes, delimiter: bytes) -> list[bytes] | None:
    """Split with the :mod:`csv` module (quotes escaped by doubling)."""
    try:
        row = next(csv.reader([line.decode("latin-1")], delimiter=delimiter.decode("latin-1"), strict=True))
    except (csv.Error, StopIteration):
        return None
    return [value.encode("latin-1") for value in row]


def strip_array(field_text: bytes) -> bytes | None:
    """The inside of an array cell: ``[a,b]`` or ``(a, b)`` → ``a,b`` / ``a, b``; empty → b"".

    Returns None when the cell is neither empty nor bracketed.
    """
    text = field_text.strip()
    if not text:
        return b""
    if text[:1] in (b"[", b"(") and text[-1:] in (b"]", b")"):
        return text[1:-1]
    return None


def complete_lines(text: str) -> list[str]:
    """The newline-terminated lines of ``text`` (a trailing unterminated piece is left out)."""
    return [line.rstrip("\r") for line in text.split("\n")[:-1]]
