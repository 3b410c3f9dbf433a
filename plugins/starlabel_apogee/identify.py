"""Cheap recognition of APOGEE spectrum files from their first header blocks (never raises).

The content decides; the file-name prefix is used only when the headers leave the choice open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from starlabel.fitspeek import peek_header

Kind = Literal["apstar", "aspcapstar", "apvisit"]

NAME_HINTS: dict[str, Kind] = {
    "apstar-": "apstar",
    "asstar-": "apstar",
    "aspcapstar-": "aspcapstar",
    "apvisit-": "apvisit",
}


def _int(header: dict[str, object], key: str) -> int:
    value = header.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _image(header: dict[str, object] | None) -> bool:
    return header is not None and str(header.get("XTENSION", "")).strip() == "IMAGE"


def name_hint(path: Path) -> Kind | None:
    """The kind the file name suggests (``apStar-``, ``asStar-``, ``aspcapStar-``, ``apVisit-``), or None."""
    name = path.name.lower()
    return next((kind for prefix, kind in NAME_HINTS.items() if name.startswith(prefix)), None)


def apogee_kind(path: str | Path) -> Kind | None:
    """Which APOGEE spectrum layout ``path`` has, or None.

    * apVisit: HDU1 an image of 3 rows (chips) without a log-linear WCS, HDU4 an image of the same
      shape holding wavelengths (``BUNIT`` 'Wavelength…' or 64-bit floats).
    * apStar / asStar: HDU1 an image with ``CRVAL1``/``CDELT1`` (log-linear), HDU3 an integer image
      (the APOGEE_PIXMASK bitmask).
    * aspcapStar: HDU1 a 1-D image with ``CRVAL1``/``CDELT1``, HDU3 a floating-point image (the best-fit model).
    """
    try:
        path = Path(path)
        if peek_header(path, 0) is None:
            return None
        h1 = peek_header(path, 1)
        if not _image(h1):
            return None
        assert h1 is not None
        naxis, n1, n2 = _int(h1, "NAXIS"), _int(h1, "NAXIS1"), _int(h1, "NAXIS2")
        loglinear = "CRVAL1" in h1 and "CDELT1" in h1
        if naxis == 2 and n2 == 3 and not loglinear:
            h4 = peek_header(path, 4)
            if not _image(h4) or h4 is None:
                return None
            same = _int(h4, "NAXIS1") == n1 and _int(h4, "NAXIS2") == 3
            wave = str(h4.get("BUNIT", "")).lower().startswith("wavelen") or _int(h4, "BITPIX") == -64
            return "apvisit" if same and wave else None
        if not loglinear or naxis not in (1, 2) or n1 < 100:
            return None
        h3 = peek_header(path, 3)
        if _image(h3) and h3 is not None and _int(h3, "NAXIS1") == n1:
            if _int(h3, "BITPIX") > 0:
                return "apstar"
            if naxis == 1:
                return "aspcapstar"
            return None
        hint = name_hint(path)
        return hint if hint in ("apstar", "aspcapstar") else None
    except Exception:  # identification never raises
        return None
