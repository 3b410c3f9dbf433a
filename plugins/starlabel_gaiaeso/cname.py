"""Gaia-ESO CNAMEs built from coordinates, for simulated stars.

A CNAME is 16 characters, ``HHMMSSss±DDMMSSs``: right ascension in hours, minutes and seconds to 0.01 s,
then the signed declination in degrees, arcminutes and arcseconds to 0.1″ (e.g. ``14512312-4025107``),
each truncated to the last digit shown, as in 2MASS designations (the exact digit rule of the GES
archive is unconfirmed, FORMATS.md §5).
"""

from __future__ import annotations

import numpy as np

from starlabel.errors import SimulationError

RA_UNITS = 24 * 3600 * 100
"""Right-ascension steps of 0.01 s in 24 h."""
DEC_UNITS_MAX = 90 * 3600 * 10
"""Declination steps of 0.1″ in 90°."""
_EPS = 1e-6
"""Added before truncating, so that 0.1° (stored as 0.09999…) gives 00002400 and not 00002399."""


def _cname(ra_units: int, dec_units: int, negative: bool) -> str:
    hours, rest = divmod(ra_units, 360_000)
    minutes, cs = divmod(rest, 6_000)
    degrees, rest = divmod(dec_units, 36_000)
    arcmin, ds = divmod(rest, 600)
    return f"{hours:02d}{minutes:02d}{cs:04d}{'-' if negative else '+'}{degrees:02d}{arcmin:02d}{ds:03d}"


def cnames(ra: np.ndarray, dec: np.ndarray, what: str = "population") -> np.ndarray:
    """CNAMEs ``HHMMSSss±DDMMSSs`` of stars at ICRS ``ra``, ``dec`` (degrees).

    Uniqueness: stars whose truncated coordinates coincide would share a CNAME. The first star (in input
    order) keeps it; each later one has its right ascension stepped by +0.01 s, +0.02 s, … (wrapping at
    24 h) until the CNAME is unused. Deterministic: the result depends only on the coordinates and their
    order.

    Raises
    ------
    SimulationError
        A coordinate is not finite or the declination lies outside [−90°, 90°].
    """
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    bad = ~np.isfinite(ra) | ~np.isfinite(dec) | (np.abs(dec) > 90.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SimulationError(
            f"{what}: star {i} has ra = {ra[i]}, dec = {dec[i]}; CNAMEs are built from finite ICRS coordinates "
            "with -90 <= dec <= 90 degrees"
        )
    ra_units = np.floor(np.mod(ra, 360.0) * (RA_UNITS / 360.0) + _EPS).astype(np.int64) % RA_UNITS
    dec_units = np.minimum(np.floor(np.abs(dec) * 36_000.0 + _EPS).astype(np.int64), DEC_UNITS_MAX)
    names: list[str] = []
    seen: set[str] = set()
    for r, d, negative in zip(ra_units.tolist(), dec_units.tolist(), (dec < 0).tolist(), strict=True):
        name, step = _cname(r, d, negative), 0
        while name in seen:
            step += 1
            name = _cname((r + step) % RA_UNITS, d, negative)
        seen.add(name)
        names.append(name)
    return np.array(names, dtype=str)
