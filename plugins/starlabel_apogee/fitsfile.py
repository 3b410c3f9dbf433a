"""Reading APOGEE FITS files with astropy, turning every failure into a :class:`DataFileError`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.errors import DataFileError
from starlabel.fitspeek import fits_structure_problem, parsed_header


@dataclass
class FitsContent:
    """Headers (HDU0 and the HDUs asked for) and data of the HDUs asked for (None: no data)."""

    path: Path
    headers: dict[int, Any]
    data: dict[int, np.ndarray | None]

    def image(self, hdu: int, what: str, layout: str) -> np.ndarray:
        """The array of image HDU ``hdu``; refuses tables, empty HDUs and arrays of more than 2 axes."""
        array = self.data.get(hdu)
        if array is None or array.dtype.names is not None or array.ndim not in (1, 2):
            found = "no data" if array is None else ("a table" if array.dtype.names else f"shape {array.shape}")
            raise DataFileError(
                str(self.path), f"HDU{hdu} should hold the {what} as a 1-D or 2-D image, found {found}. {layout}"
            )
        return array


def read_hdus(path: Path, wanted: tuple[int, ...], layout: str, optional: tuple[int, ...] = ()) -> FitsContent:
    """Read HDU0's header and the headers and data of ``wanted`` (required) and ``optional`` HDUs.

    Parameters
    ----------
    path : Path
        FITS file.
    wanted : tuple of int
        HDU numbers that must exist.
    layout : str
        Description of the expected layout, appended to error messages.
    optional : tuple of int
        HDU numbers read when present.

    Raises
    ------
    DataFileError
        Missing, unreadable, truncated or non-FITS file, fewer HDUs than needed, a structural keyword
        astropy cannot be trusted with (``NAXIS`` > 999, a data unit larger than the file), or a header
        card that cannot be parsed.
    """
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise DataFileError(str(path), "no such file")
    problem = fits_structure_problem(path)  # before astropy: it would hang or allocate the declared sizes
    if problem is not None:
        raise DataFileError(str(path), f"cannot read as FITS: {problem}. {layout}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", fits.verify.VerifyWarning)  # a truncated file must not pass silently
            warnings.filterwarnings("error", message="File may have been truncated")
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                if len(hdul) <= max(wanted):
                    raise DataFileError(str(path), f"has {len(hdul)} HDU(s), HDU{max(wanted)} is needed. {layout}")
                numbers = [i for i in (*wanted, *optional) if i < len(hdul)]
                headers = {i: parsed_header(hdul[i].header, i, path, layout) for i in (0, *numbers)}
                data = {i: (None if hdul[i].data is None else np.array(hdul[i].data)) for i in numbers}
    except DataFileError:
        raise
    except Exception as error:  # OSError, TypeError from a truncated data unit, VerifyWarning, ...
        raise DataFileError(str(path), f"cannot read as FITS: {type(error).__name__}: {error}. {layout}") from None
    return FitsContent(path, headers, data)
