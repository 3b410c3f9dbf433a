"""``apogee_apvisit``: APOGEE apVisit single-visit spectra (verified on r13/DR16 files).

========  =====================================================================================
HDU       content
========  =====================================================================================
0         header: ``OBJID`` (APOGEE_ID), ``SNR``, ``VRAD`` (= VREL), ``BC``, ``VHELIO``
1, 2      flux and error, (3, 4096): one row per chip, 10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹
3         APOGEE_PIXMASK bitmask (int16), same shape
4         wavelength (Å, vacuum, observed frame), same shape
5-10      sky, telluric, wavelength and LSF coefficients (not read)
11        one-row table: APOGEE_ID, SNR, VREL, VHELIO, BC, …
========  =====================================================================================

In the r13 files the rows are red, green, blue chips and wavelength decreases along each row; the
reader reverses each decreasing row and orders the chips by wavelength, so the output is one spectrum
of 3 × 4096 pixels with increasing wavelength.

Velocities (km/s): ``vrel`` is the Doppler shift measured in the observed (topocentric) frame of the
HDU4 wavelengths, ``bc`` the barycentric correction, ``vhelio = vrel + bc`` the barycentric radial
velocity (checked on both sample files to 1e-4 km/s). To move these wavelengths to the rest frame use
``rest_frame: {source: meta, key: vrel}``; ``vhelio`` would be wrong by ``bc`` (up to ±30 km/s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from starlabel.components import InstrumentReader
from starlabel.containers import Spectra
from starlabel.errors import DataFileError
from starlabel_apogee.citations import APOGEE_CITATION
from starlabel_apogee.fitsfile import FitsContent, read_hdus
from starlabel_apogee.identify import apogee_kind
from starlabel_apogee.ids import star_id
from starlabel_apogee.quality import PixmaskOptions, flux_quality, header_float

LAYOUT = (
    "Expected layout (APOGEE apVisit): HDU1 flux, HDU2 error, HDU3 APOGEE_PIXMASK bitmask and HDU4 wavelength "
    "(Angstrom), each an image of (3 chips, 4096) pixels; HDU11 a one-row table with APOGEE_ID, SNR, VREL, VHELIO, BC"
)
TABLE_HDU = 11
META_KEYS: dict[str, tuple[str, str]] = {
    "snr": ("SNR", "SNR"),
    "vrel": ("VREL", "VRAD"),
    "vhelio": ("VHELIO", "VHELIO"),
    "bc": ("BC", "BC"),
}
"""meta key → (HDU11 column, HDU0 keyword used when the table lacks it)."""


class ApVisitOptions(PixmaskOptions):
    """Options of ``apogee_apvisit`` (the APOGEE_PIXMASK bits and the error limit)."""


class ApogeeApVisit(InstrumentReader):
    """APOGEE apVisit spectra: 3 chips × 4096 px concatenated in increasing wavelength, observed frame."""

    name = "apogee_apvisit"
    Options = ApVisitOptions
    line_list = "lines_apogee.csv"
    citation = APOGEE_CITATION
    data_model_url = (
        "https://data.sdss.org/datamodel/files/APOGEE_REDUX/APRED_VERS/visit/TELESCOPE/PLATE_ID/MJD5/apVisit.html"
    )
    status = "experimental"
    priority = 20

    @classmethod
    def identify(cls, path: Path) -> bool:
        """True for a (3, N) image in HDU1 with a wavelength image of that shape in HDU4 (never raises)."""
        return apogee_kind(path) == "apvisit"

    def read(self, path: Path) -> Spectra:
        """Read one apVisit file.

        Returns
        -------
        Spectra
            One spectrum of 3 × 4096 pixels, wavelength (P,) increasing, Å, vacuum, observed frame;
            ``meta``: ``snr``, ``vrel``, ``vhelio``, ``bc`` (km/s, NaN when absent).

        Raises
        ------
        DataFileError
            Not the apVisit layout, wavelengths not monotonic within a chip or overlapping between chips,
            unreadable or truncated file.
        """
        path = Path(path)
        content = read_hdus(path, (1, 2, 3, 4), LAYOUT, optional=(TABLE_HDU,))
        arrays = [
            content.image(i, what, LAYOUT) for i, what in ((1, "flux"), (2, "error"), (3, "bitmask"), (4, "wavelength"))
        ]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].ndim != 2:
            raise DataFileError(
                str(path), f"HDU1-4 shapes {[a.shape for a in arrays]} must be one 2-D (chips, pixels) shape. {LAYOUT}"
            )
        if arrays[2].dtype.kind not in "iu":
            raise DataFileError(
                str(path), f"HDU3 holds {arrays[2].dtype} values, expected an integer bitmask. {LAYOUT}"
            )
        flux, sigma, bitmask, wave = _increasing(path, *arrays)
        flux, ivar, mask = flux_quality(flux, sigma, bitmask, self.options.bad_value, self.options.max_error)
        table = _table_row(content)
        headers = [content.headers[0]]
        meta = {
            key: np.array([_value(table, column, headers[0], keyword)]) for key, (column, keyword) in META_KEYS.items()
        }
        table_id = table.get("APOGEE_ID")  # a corrupt TFORM can make it a number
        ids = [{"APOGEE_ID": table_id if isinstance(table_id, str) else ""}, *headers] if table else headers
        return Spectra(
            source_id=np.array([star_id(ids, path)]),
            wavelength=wave,
            flux=flux[None, :],
            ivar=ivar[None, :],
            mask=mask[None, :],
            unit="Angstrom",
            medium="vacuum",
            meta=meta,
        )


def _increasing(path: Path, *arrays: np.ndarray) -> list[np.ndarray]:
    """Reverse decreasing chip rows, order chips by wavelength, concatenate; the last array is the wavelength."""
    wave = np.asarray(arrays[-1], dtype=np.float64)
    flip = wave[:, 0] > wave[:, -1]
    rows = [[a[i, ::-1] if flip[i] else a[i] for i in range(wave.shape[0])] for a in arrays]
    order = np.argsort([row[0] for row in rows[-1]])
    out = [np.concatenate([rows_a[i] for i in order]) for rows_a in rows]
    out[-1] = out[-1].astype(np.float64)
    if not np.all(np.diff(out[-1]) > 0):
        raise DataFileError(
            str(path), "HDU4 wavelengths are not monotonic within each chip, or the chips overlap. " + LAYOUT
        )
    return out


def _table_row(content: FitsContent) -> dict[str, Any]:
    """Scalar columns of the one-row HDU11 table (upper-case names), or {} when absent or not a table.

    Array cells are left out (a corrupt ``TFORM`` such as ``342E`` turns APOGEE_ID into 342 numbers).
    """
    data = content.data.get(TABLE_HDU)
    if data is None or data.dtype.names is None or len(data) == 0:
        return {}
    row = data[0]
    out: dict[str, Any] = {}
    for name in data.dtype.names:
        value = row[name]
        if np.ndim(value) != 0:
            continue
        out[name.upper()] = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    return out


def _value(table: dict[str, Any], column: str, header: Any, keyword: str) -> float:
    """Float from the table column, else the header keyword, else NaN."""
    if column in table:
        try:
            value = float(table[column])
        except (TypeError, ValueError):
            value = float("nan")
        if np.isfinite(value):
            return value
    return header_float(header, keyword)
