"""Gaia-ESO CNAMEs built from coordinates, for simulated stars.

A CNAME is 16 characters, ``HHMMSSss±DDMMSSs``: right ascension in hours, minutes and seconds to 0.01 s,
then the signed declination in degrees, arcminutes and arcseconds to 0.1″ (e.g. ``14512312-4025107``),
each truncated to the last digit shown, as in 2MASS designations (the exact digit rule of the GES
archive is unconfirmed, FORMATS.md §5).
"""

from __future__ import annotations

import numpy as np

from starlabel.simwrite import coordinate_names


def cnames(ra: np.ndarray, dec: np.ndarray, what: str = "population") -> np.ndarray:
    """CNAMEs ``HHMMSSss±DDMMSSs`` of stars at ICRS ``ra``, ``dec`` (degrees), unique.

    See :func:`starlabel.simwrite.coordinate_names` for truncation and how coinciding names are resolved.

    Raises
    ------
    starlabel.errors.SimulationError
        A coordinate is not finite or the declination lies outside [−90°, 90°].
    """
    return coordinate_names(ra, dec, prefix="", kind="CNAMEs", what=what)
