"""2MASS-style APOGEE_IDs built from coordinates, for simulated stars.

APOGEE names a star after its 2MASS designation: ``2M`` + ``HHMMSSss`` (right ascension, hours, minutes,
seconds to 0.01 s) + sign + ``DDMMSSs`` (declination, degrees, arcminutes, arcseconds to 0.1″), e.g.
``2M17335483-2753043``. 2MASS truncates (never rounds) each coordinate to the last digit shown; so does
:func:`apogee_ids`.
"""

from __future__ import annotations

import numpy as np

from starlabel.errors import SimulationError

RA_UNITS = 24 * 3600 * 100
"""Right-ascension steps of 0.01 s in 24 h."""
DEC_UNITS_MAX = 90 * 3600 * 10
"""Declination steps of 0.1″ in 90°."""
_EPS = 1e-6
"""Added before truncating, so that 0.1° (stored as 0.09999…) gives 00h00m24.00s and not 23.99s."""


def designation(ra_units: int, dec_units: int, negative: bool) -> str:
    """``HHMMSSss±DDMMSSs`` from right ascension in 0.01 s and |declination| in 0.1″."""
    hours, rest = divmod(ra_units, 360_000)
    minutes, cs = divmod(rest, 6_000)
    degrees, rest = divmod(dec_units, 36_000)
    arcmin, ds = divmod(rest, 600)
    sign = "-" if negative else "+"
    return f"{hours:02d}{minutes:02d}{cs:04d}{sign}{degrees:02d}{arcmin:02d}{ds:03d}"


def apogee_ids(ra: np.ndarray, dec: np.ndarray, what: str = "population") -> np.ndarray:
    """2MASS-style APOGEE_IDs ``2MHHMMSSss±DDMMSSs`` of stars at ICRS ``ra``, ``dec`` (degrees).

    Uniqueness: stars whose truncated coordinates coincide would share a name. The first star (in input
    order) keeps its name; each later one has its right ascension stepped by +0.01 s, +0.02 s, … (the
    last digit of ``HHMMSSss``, wrapping at 24 h) until the name is unused. The result depends only on
    the coordinates and their order, so it is deterministic.

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
            f"{what}: star {i} has ra = {ra[i]}, dec = {dec[i]}; APOGEE_IDs are built from finite ICRS coordinates "
            "with -90 <= dec <= 90 degrees"
        )
    ra_units = np.floor(np.mod(ra, 360.0) * (RA_UNITS / 360.0) + _EPS).astype(np.int64) % RA_UNITS
    dec_units = np.minimum(np.floor(np.abs(dec) * 36_000.0 + _EPS).astype(np.int64), DEC_UNITS_MAX)
    names: list[str] = []
    seen: set[str] = set()
    for r, d, negative in zip(ra_units.tolist(), dec_units.tolist(), (dec < 0).tolist(), strict=True):
        name = "2M" + designation(r, d, negative)
        step = 0
        while name in seen:
            step += 1
            name = "2M" + designation((r + step) % RA_UNITS, d, negative)
        seen.add(name)
        names.append(name)
    return np.array(names, dtype=str)
