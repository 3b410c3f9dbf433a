"""``apogee_aspcapstar``: APOGEE DR17 aspcapStar pseudo-continuum-normalised spectra.

========  =====================================================================================
HDU       content
========  =====================================================================================
0         header only (APOGEE_ID in ``OBJID`` or ``APOGEE_ID``; else taken from the file name)
1         pseudo-continuum-normalised flux, (8575,) on the apStar log-linear grid (CRVAL1/CDELT1/CRPIX1)
2         its error
3         best-fit ASPCAP (FERRE) model (not read)
4         table of ASPCAP results (not read)
========  =====================================================================================

No bitmask HDU: pixels with a non-finite or zero flux, or an error that is not finite, ≤ 0 or above
``max_error`` are bad. Layout from the SDSS data model; no real file was available to confirm it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from starlabel.components import ComponentOptions, InstrumentReader
from starlabel.containers import Spectra
from starlabel.errors import DataFileError
from starlabel_apogee.citations import ASPCAP_CITATION
from starlabel_apogee.fitsfile import read_hdus
from starlabel_apogee.identify import apogee_kind
from starlabel_apogee.ids import star_id
from starlabel_apogee.quality import MAX_ERROR, flux_quality, header_float
from starlabel_apogee.wcs import loglinear_wavelength

LAYOUT = (
    "Expected layout (APOGEE DR17 aspcapStar): HDU1 normalised flux and HDU2 its error, 1-D images of NWAVE "
    "(8575) pixels on the log-linear grid of CRVAL1/CDELT1/CRPIX1; HDU3 the ASPCAP model"
)


class AspcapStarOptions(ComponentOptions):
    """Options of ``apogee_aspcapstar``."""

    max_error: float = Field(MAX_ERROR, gt=0, description="errors above this mark the pixel bad")


class ApogeeAspcapStar(InstrumentReader):
    """APOGEE aspcapStar pseudo-continuum-normalised spectra (8575 px, log-linear, vacuum, rest frame)."""

    name = "apogee_aspcapstar"
    Options = AspcapStarOptions
    line_list = "lines_apogee.csv"
    citation = ASPCAP_CITATION
    data_model_url = (
        "https://data.sdss.org/datamodel/files/APOGEE_ASPCAP/APRED_VERS/ASPCAP_VERS/TELESCOPE/FIELD/aspcapStar.html"
    )
    status = "experimental"
    priority = 20

    @classmethod
    def identify(cls, path: Path) -> bool:
        """True for a 1-D log-linear HDU1 followed by a floating-point model image in HDU3 (never raises)."""
        return apogee_kind(path) == "aspcapstar"

    def read(self, path: Path) -> Spectra:
        """Read one aspcapStar file.

        Returns
        -------
        Spectra
            One spectrum: APOGEE_ID (str), wavelength (P,) in Å (vacuum), normalised flux, ``ivar`` and
            the value-based mask; ``meta["snr"]`` from the HDU0 ``SNR`` keyword (NaN when absent).

        Raises
        ------
        DataFileError
            Not the aspcapStar layout (2-D or mismatched images, no wavelength keywords), unreadable file.
        """
        path = Path(path)
        content = read_hdus(path, (1, 2), LAYOUT)
        flux = content.image(1, "normalised flux", LAYOUT)
        sigma = content.image(2, "flux error", LAYOUT)
        if flux.ndim != 1 or flux.shape != sigma.shape:
            raise DataFileError(
                str(path), f"HDU1 {flux.shape} and HDU2 {sigma.shape} must be 1-D images of one length. {LAYOUT}"
            )
        h0, h1 = content.headers[0], content.headers[1]
        nwave = h0.get("NWAVE")
        if isinstance(nwave, int) and nwave != flux.shape[0]:
            raise DataFileError(
                str(path),
                f"HDU0 NWAVE = {nwave} but HDU1 has {flux.shape[0]} pixels (pre-DR16 aspcapStar files without the "
                f"chip gaps are not log-linear and are not supported). {LAYOUT}",
            )
        wave = loglinear_wavelength([h1, h0], flux.shape[0], path, LAYOUT)
        flux, ivar, mask = flux_quality(flux, sigma, None, 0, self.options.max_error)
        return Spectra(
            source_id=np.array([star_id([h0, h1], path)]),
            wavelength=wave,
            flux=flux[None, :],
            ivar=ivar[None, :],
            mask=mask[None, :],
            unit="Angstrom",
            medium="vacuum",
            meta={"snr": np.array([header_float(h0, "SNR")])},
        )
