"""The log-linear wavelength solution of apStar and aspcapStar files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from starlabel.errors import DataFileError

WCS_KEYS: tuple[str, ...] = ("CRVAL1", "CDELT1")


def loglinear_wavelength(headers: list[Any], n_pixels: int, path: Path, layout: str) -> np.ndarray:
    """Vacuum wavelengths in Å: ``10**(CRVAL1 + CDELT1 * (i + 1 - CRPIX1))``, i = 0 … n_pixels − 1.

    The keywords are taken from the first header in ``headers`` that has ``CRVAL1`` and ``CDELT1``
    (the data HDU first, then HDU0); ``CRPIX1`` defaults to 1.

    Raises
    ------
    DataFileError
        No header holds the keywords, ``CTYPE1`` is present but not log-linear, values are not finite, or the
        wavelengths they give overflow (not finite) or vanish (0).
    """
    for header in headers:
        if all(key in header for key in WCS_KEYS):
            break
    else:
        raise DataFileError(str(path), f"no CRVAL1/CDELT1 wavelength keywords in HDU1 or HDU0. {layout}")
    ctype = str(header.get("CTYPE1", "LOG-LINEAR")).strip().upper()
    if ctype not in ("LOG-LINEAR", "LOG", ""):
        raise DataFileError(str(path), f"CTYPE1 = {ctype!r}, expected 'LOG-LINEAR' (log10 wavelength). {layout}")
    try:
        crval, cdelt = float(header["CRVAL1"]), float(header["CDELT1"])
        crpix = float(header.get("CRPIX1", 1.0))
    except (TypeError, ValueError):
        raise DataFileError(str(path), f"CRVAL1/CDELT1/CRPIX1 are not numbers. {layout}") from None
    if not (np.isfinite(crval) and np.isfinite(cdelt) and np.isfinite(crpix) and cdelt > 0):
        raise DataFileError(str(path), f"bad wavelength keywords CRVAL1={crval}, CDELT1={cdelt}, CRPIX1={crpix}")
    index = np.arange(n_pixels, dtype=np.float64)
    with np.errstate(over="ignore"):
        wave = 10.0 ** (crval + cdelt * (index + 1.0 - crpix))
    if not (np.all(np.isfinite(wave)) and np.all(wave > 0)):
        raise DataFileError(
            str(path),
            f"wavelength keywords CRVAL1={crval}, CDELT1={cdelt}, CRPIX1={crpix} give wavelengths 10**(CRVAL1 + "
            f"CDELT1 * (i + 1 - CRPIX1)) that overflow or vanish (APOGEE: CRVAL1 = 4.179, CDELT1 = 6e-6). {layout}",
        )
    return wave
