"""FLAMES setups observed by Gaia-ESO and how a spectrum's setup is read from its header.

Ranges and resolving powers are the nominal ones (docs/FORMATS.md §5; HR15N and UVES ranges unconfirmed).
Gaia-ESO files are not available to check which keyword names the setup, so several are tried in order:
:data:`SETUP_KEYWORDS`; values such as ``'HR15N'``, ``'HR15n'``, ``'GIRAFFE HR15N'``, ``'U580'``,
``'UVES 580'`` or ``'RED580'`` are understood. When no keyword names a known setup, the setup whose
nominal range best matches ``WAVELMIN``/``WAVELMAX`` (nm, mandatory in SDP files) is used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setup:
    """One FLAMES setup: nominal range (nm, air) and resolving power."""

    name: str
    start: float
    stop: float
    resolution: float


SETUPS: dict[str, Setup] = {
    "HR10": Setup("HR10", 533.9, 561.9, 19800.0),
    "HR15N": Setup("HR15N", 647.0, 679.0, 17000.0),
    "HR21": Setup("HR21", 848.4, 900.1, 16200.0),
    "U520": Setup("U520", 414.0, 621.0, 47000.0),
    "U580": Setup("U580", 476.0, 684.0, 47000.0),
}
"""Gaia-ESO setups by name."""

SETUP_KEYWORDS: tuple[str, ...] = ("SETUP", "ESO INS EXP MODE", "ESO INS FILT NAME", "ESO INS GRAT2 WLEN")
"""Header keywords tried in order (astropy names; ``ESO …`` are HIERARCH cards)."""

_GIRAFFE = re.compile(r"HR(\d+)(N?)")
_UVES = re.compile(r"^(?:U|UVES|RED|FLAMESUVES|UVESRED)?(520|580)(?:0)?$")


def parse_setup(value: Any) -> str | None:
    """Known setup named by a header value, or None (``'HR15n'`` → ``'HR15N'``, ``580.0`` → ``'U580'``)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = f"{value:g}"
    text = re.sub(r"[^A-Z0-9]", "", str(value).upper())
    match = _GIRAFFE.search(text)
    if match:
        name = f"HR{int(match.group(1))}{match.group(2)}"
        return name if name in SETUPS else None
    match = _UVES.match(text)
    return f"U{match.group(1)}" if match else None


def setup_from_range(wmin: Any, wmax: Any) -> str | None:
    """Setup covering ≥ 80 % of [wmin, wmax] (nm) and ≥ 40 % of its own range, closest centre first; or None."""
    try:
        low, high = float(wmin), float(wmax)
    except (TypeError, ValueError):
        return None
    if not high > low:
        return None
    best, distance = None, float("inf")
    for setup in SETUPS.values():
        overlap = min(high, setup.stop) - max(low, setup.start)
        centre = abs((low + high) / 2 - (setup.start + setup.stop) / 2)
        covers = overlap >= 0.8 * (high - low) and overlap >= 0.4 * (setup.stop - setup.start)
        if covers and centre < distance:
            best, distance = setup.name, centre
    return best


def header_setup(header: Mapping[str, Any]) -> tuple[str | None, str]:
    """The setup of a primary header and where it came from (``"SETUP = 'HR15N'"``), or (None, why not)."""
    for keyword in SETUP_KEYWORDS:
        if keyword in header:
            setup = parse_setup(header[keyword])
            if setup is not None:
                return setup, f"{keyword} = {header[keyword]!r}"
    wmin, wmax = header.get("WAVELMIN"), header.get("WAVELMAX")
    setup = setup_from_range(wmin, wmax)
    if setup is not None:
        return setup, f"WAVELMIN/WAVELMAX = {wmin}/{wmax} nm"
    return None, (
        f"no keyword among {', '.join(SETUP_KEYWORDS)} names a known setup and WAVELMIN/WAVELMAX = "
        f"{wmin}/{wmax} nm match no nominal range"
    )
