"""Reading an ESO SDP one-dimensional spectrum file with astropy; every failure is a :class:`DataFileError`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.errors import DataFileError
from starlabel.fitspeek import fits_structure_problem, parsed_header

LAYOUT = (
    "Expected layout (ESO SDP 1D spectrum): HDU0 header only with PRODCATG = 'SCIENCE.SPECTRUM', "
    "WAVELMIN/WAVELMAX (nm), SNR and the star's name (CNAME or OBJECT); HDU1 a BINTABLE with ONE row whose "
    "array columns WAVE, FLUX, ERR (or FLUX_REDUCED, ERR_REDUCED) hold NELEM values each, TUNITn giving "
    "the wavelength unit"
)


@dataclass
class SdpColumn:
    """One array cell of the single row: values (float64), and the column's TUNIT and TUCD."""

    name: str
    values: np.ndarray
    unit: str
    ucd: str


@dataclass
class SdpContent:
    """Primary and table headers, and every array column of the single row, by upper-case name."""

    path: Path
    header0: Any
    header1: Any
    columns: dict[str, SdpColumn]

    def column(self, candidates: tuple[str, ...], what: str, hint: str = "") -> SdpColumn:
        """The first column present among ``candidates`` (case-insensitive), else a DataFileError."""
        for name in candidates:
            if name.upper() in self.columns:
                return self.columns[name.upper()]
        found = ", ".join(c.name for c in self.columns.values()) or "(none)"
        raise DataFileError(
            str(self.path),
            f"HDU1 has no {what} column ({' or '.join(candidates)}); columns: {found}."
            + (f" {hint}" if hint else "")
            + f" {LAYOUT}",
        )


def read_sdp(path: Path) -> SdpContent:
    """Read HDU0's header and HDU1's single row.

    Raises
    ------
    DataFileError
        Missing, unreadable, truncated or non-FITS file; HDU1 absent or not a binary table; not exactly
        one row; array cells of different lengths; a structural keyword astropy cannot be trusted with
        (``NAXIS`` > 999, a data unit larger than the file); a header card that cannot be parsed.
    """
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise DataFileError(str(path), "no such file")
    problem = fits_structure_problem(path)  # before astropy: it would hang or allocate the declared sizes
    if problem is not None:
        raise DataFileError(str(path), f"cannot read as FITS: {problem}. {LAYOUT}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", fits.verify.VerifyWarning)
            warnings.filterwarnings("error", message="File may have been truncated")
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                if len(hdul) < 2:
                    raise DataFileError(str(path), f"has {len(hdul)} HDU(s), no HDU1 table. {LAYOUT}")
                hdu = hdul[1]
                if not isinstance(hdu, fits.BinTableHDU):
                    raise DataFileError(str(path), f"HDU1 is a {type(hdu).__name__}, not a BINTABLE. {LAYOUT}")
                header0, header1 = (
                    parsed_header(hdul[0].header, 0, path, LAYOUT),
                    parsed_header(hdu.header, 1, path, LAYOUT),
                )
                data = hdu.data
                rows = 0 if data is None else len(data)
                if rows != 1:
                    raise DataFileError(str(path), f"HDU1 has {rows} rows, an SDP spectrum has exactly 1. {LAYOUT}")
                columns = _columns(path, hdu, data)
    except DataFileError:
        raise
    except Exception as error:  # OSError, TypeError/ValueError from a truncated data unit, VerifyWarning, ...
        raise DataFileError(str(path), f"cannot read as FITS: {type(error).__name__}: {error}. {LAYOUT}") from None
    return SdpContent(path, header0, header1, columns)


def _columns(path: Path, hdu: Any, data: Any) -> dict[str, SdpColumn]:
    out: dict[str, SdpColumn] = {}
    for index, col in enumerate(hdu.columns, start=1):
        cell = np.asarray(data[col.name][0])
        if cell.dtype.kind not in "iuf" or cell.ndim != 1:
            continue  # strings, scalars, bit columns: not spectral arrays
        unit = str(hdu.header.get(f"TUNIT{index}", "") or "").strip()
        ucd = str(hdu.header.get(f"TUCD{index}", "") or "").strip()
        out[col.name.upper()] = SdpColumn(col.name, cell.astype(np.float64), unit, ucd)
    lengths = {c.name: c.values.size for c in out.values()}
    if len(set(lengths.values())) > 1:
        listing = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise DataFileError(str(path), f"HDU1 array columns differ in length ({listing}). {LAYOUT}")
    return out
