"""Source ids: which entries count as null."""

from __future__ import annotations

import numpy as np


def null_ids(ids: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Return the mask of ids that identify no star.

    Parameters
    ----------
    ids : numpy.ndarray
        int64 or str ids, as returned by :func:`starlabel.tables.id_column`.
    missing : numpy.ndarray
        Mask of null entries (FITS ``TNULL``, masked, empty string) from the same function.

    Returns
    -------
    numpy.ndarray
        ``missing``, plus integer ids ≤ 0: Gaia source ids are positive, and SDSS tables write 0 for
        "no Gaia match" (``GAIAEDR3_SOURCE_ID`` in allStar DR17).
    """
    null = np.array(missing, dtype=bool, copy=True)
    if ids.dtype.kind in "iu":
        null |= ids <= 0
    return null
