"""2MASS-style APOGEE_IDs built from coordinates, for simulated stars.

APOGEE names a star after its 2MASS designation: ``2M`` + ``HHMMSSss`` (right ascension, hours, minutes,
seconds to 0.01 s) + sign + ``DDMMSSs`` (declination, degrees, arcminutes, arcseconds to 0.1″), e.g.
``2M17335483-2753043``. 2MASS truncates (never rounds) each coordinate to the last digit shown; so does
:func:`apogee_ids`.
"""

from __future__ import annotations

import numpy as np

from starlabel.simwrite import coordinate_names


def apogee_ids(ra: np.ndarray, dec: np.ndarray, what: str = "population") -> np.ndarray:
    """2MASS-style APOGEE_IDs ``2MHHMMSSss±DDMMSSs`` of stars at ICRS ``ra``, ``dec`` (degrees), unique.

    See :func:`starlabel.simwrite.coordinate_names` for truncation and how coinciding names are resolved.

    Raises
    ------
    starlabel.errors.SimulationError
        A coordinate is not finite or the declination lies outside [−90°, 90°].
    """
    return coordinate_names(ra, dec, prefix="2M", kind="APOGEE_IDs", what=what)
