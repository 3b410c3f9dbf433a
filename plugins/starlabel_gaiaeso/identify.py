"""Cheap recognition of ESO SDP one-dimensional spectra from their first header blocks (never raises)."""

from __future__ import annotations

from pathlib import Path

from starlabel.fitspeek import column_names, peek_header

CATEGORY_KEYWORDS = ("PRODCATG", "PROD_CATG")
"""The SDP standard's keyword is PRODCATG; PROD_CATG is accepted too."""
FLUX_NAMES = ("FLUX", "FLUX_REDUCED")


def is_sdp_spectrum(path: str | Path) -> bool:
    """True when HDU0 has ``PRODCATG`` starting with ``SCIENCE.SPECTRUM`` and HDU1 is a one-row BINTABLE
    with a ``WAVE`` and a ``FLUX`` or ``FLUX_REDUCED`` column (names case-insensitive)."""
    try:
        h0 = peek_header(path, 0)
        if h0 is None:
            return False
        category = next((h0[k] for k in CATEGORY_KEYWORDS if k in h0), None)
        if not isinstance(category, str) or not category.strip().upper().startswith("SCIENCE.SPECTRUM"):
            return False
        h1 = peek_header(path, 1)
        if h1 is None or str(h1.get("XTENSION", "")).strip() != "BINTABLE" or h1.get("NAXIS2") != 1:
            return False
        names = {name.upper() for name in column_names(h1)}
        return "WAVE" in names and any(flux in names for flux in FLUX_NAMES)
    except Exception:  # identification never raises
        return False
