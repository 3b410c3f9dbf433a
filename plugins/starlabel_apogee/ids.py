"""APOGEE_ID of a spectrum file: from the header, else from the file name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlabel.errors import DataFileError

_STAR_FILE = re.compile(r"^(?:apStar|asStar|aspcapStar)-[^-]+-(?P<id>.+?)\.fits?(?:\.gz)?$", re.IGNORECASE)
"""``apStar-<release>-<APOGEE_ID>.fits`` (also asStar, aspcapStar; optionally gzip-compressed)."""


def star_id(headers: list[Any], path: Path, keys: tuple[str, ...] = ("APOGEE_ID", "OBJID")) -> str:
    """First non-empty ``keys`` value found in ``headers``, else the id in the file name.

    Raises
    ------
    DataFileError
        Neither the headers nor the file name give an id.
    """
    for header in headers:
        for key in keys:
            value = str(header.get(key, "") or "").strip()
            if value:
                return value
    match = _STAR_FILE.match(Path(path).name)
    if match:
        return match.group("id")
    raise DataFileError(
        str(path),
        f"no APOGEE id: no {' or '.join(keys)} keyword in HDU0 and the name is not apStar-<release>-<APOGEE_ID>.fits",
    )
