"""``apogee_apstar``: APOGEE apStar / asStar combined spectra (DR17 layout).

========  =====================================================================================
HDU       content
========  =====================================================================================
0         header only: ``OBJID`` (APOGEE_ID), ``SNR``, ``NVISITS``, ``VHELIO``, per-visit ``SNRVISn``,
          ``VHELIOn``…, and the wavelength keywords ``CRVAL1``, ``CDELT1``, ``CRPIX1``, ``CTYPE1``
1, 2      flux and flux error (10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹), (nrow, 8575) or (8575,) when 1-D
3         APOGEE_PIXMASK bitmask, same shape
4-10      sky, telluric, LSF and RV tables (not read)
========  =====================================================================================

Rows: 0 combined with pixel-based weighting, 1 combined with global weighting, 2… the individual visits
(present when NVISITS > 1). Wavelengths: ``10**(CRVAL1 + CDELT1·(i + 1 − CRPIX1))`` Å, vacuum, rest frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from starlabel.components import InstrumentReader
from starlabel.containers import NativeGrid, Population, Spectra
from starlabel.errors import DataFileError
from starlabel_apogee.citations import APOGEE_CITATION
from starlabel_apogee.fitsfile import read_hdus
from starlabel_apogee.identify import apogee_kind
from starlabel_apogee.ids import star_id
from starlabel_apogee.quality import PixmaskOptions, flux_quality, header_float
from starlabel_apogee.wcs import loglinear_wavelength

LAYOUT = (
    "Expected layout (APOGEE DR17 apStar/asStar): HDU1 flux, HDU2 flux error, HDU3 APOGEE_PIXMASK bitmask, "
    "each an image of (nrow, NWAVE) or (NWAVE,) pixels on the log-linear grid of CRVAL1/CDELT1/CRPIX1 "
    "(HDU1 or HDU0), APOGEE_ID in the HDU0 keyword OBJID"
)


class ApStarOptions(PixmaskOptions):
    """Options of ``apogee_apstar``."""

    row: int = Field(
        0,
        ge=0,
        description="row of a 2-D file: 0 combined (pixel-based weighting), 1 combined (global weighting), "
        "2+k visit k+1; ignored for 1-D files only when 0",
    )


class ApogeeApStar(InstrumentReader):
    """APOGEE apStar/asStar combined spectra: 8575 log-linear pixels, 15100.8–16999.8 Å, vacuum, rest frame."""

    name = "apogee_apstar"
    Options = ApStarOptions
    line_list = "lines_apogee.csv"
    citation = APOGEE_CITATION
    data_model_url = "https://data.sdss.org/datamodel/files/APOGEE_REDUX/APRED_VERS/stars/TELESCOPE/FIELD/apStar.html"
    status = "experimental"
    priority = 20

    @classmethod
    def identify(cls, path: Path) -> bool:
        """True for an image file with a log-linear HDU1 and an integer bitmask in HDU3 (never raises)."""
        return apogee_kind(path) == "apstar"

    def read(self, path: Path) -> Spectra:
        """Read the chosen row of one apStar file.

        Returns
        -------
        Spectra
            One spectrum: ``source_id`` the APOGEE_ID (str), wavelength (8575,) in Å (vacuum), flux as
            stored, ``ivar = 1/error²`` on good pixels, mask from ``bad_bits`` and the value checks
            (non-finite or zero flux, error ≤ 0 or > ``max_error``); ``meta``: ``snr``, ``vhelio``
            (km/s; for a visit row the visit's ``SNRVISn``/``VHELIOn``), ``nvisits``.

        Raises
        ------
        DataFileError
            Not an apStar layout (missing HDUs, tables where images are expected, shapes that differ,
            no log-linear wavelength keywords), a row that does not exist, an unreadable or truncated file.
        """
        path = Path(path)
        content = read_hdus(path, (1, 2, 3), LAYOUT)
        flux = content.image(1, "flux", LAYOUT)
        sigma = content.image(2, "flux error", LAYOUT)
        bitmask = content.image(3, "APOGEE_PIXMASK bitmask", LAYOUT)
        if not (flux.shape == sigma.shape == bitmask.shape):
            raise DataFileError(
                str(path),
                f"HDU1 {flux.shape}, HDU2 {sigma.shape} and HDU3 {bitmask.shape} must have one shape. {LAYOUT}",
            )
        if bitmask.dtype.kind not in "iu":
            raise DataFileError(str(path), f"HDU3 holds {bitmask.dtype} values, expected an integer bitmask. {LAYOUT}")
        row = self.options.row
        h0, h1 = content.headers[0], content.headers[1]
        if flux.ndim == 2:
            if row >= flux.shape[0]:
                raise DataFileError(
                    str(path), f"option row={row} but HDU1 has {flux.shape[0]} rows (NVISITS={h0.get('NVISITS')})"
                )
            flux, sigma, bitmask = flux[row], sigma[row], bitmask[row]
        elif row != 0:
            raise DataFileError(str(path), f"option row={row} but HDU1 is 1-D (a single combined spectrum)")
        n_pixels = flux.shape[0]
        nwave = h0.get("NWAVE")
        if isinstance(nwave, int) and nwave != n_pixels:
            raise DataFileError(str(path), f"HDU0 NWAVE = {nwave} but HDU1 rows have {n_pixels} pixels. {LAYOUT}")
        wave = loglinear_wavelength([h1, h0], n_pixels, path, LAYOUT)
        flux, ivar, mask = flux_quality(flux, sigma, bitmask, self.options.bad_value, self.options.max_error)
        visit = row - 1 if row >= 2 else None
        snr = header_float(h0, f"SNRVIS{visit}" if visit else "SNR")
        vhelio = header_float(h0, f"VHELIO{visit}" if visit else "VHELIO")
        nvisits = h0.get("NVISITS", -1)
        return Spectra(
            source_id=np.array([star_id([h0], path)]),
            wavelength=wave,
            flux=flux[None, :],
            ivar=ivar[None, :],
            mask=mask[None, :],
            unit="Angstrom",
            medium="vacuum",
            meta={
                "snr": np.array([snr]),
                "vhelio": np.array([vhelio]),
                "nvisits": np.array([nvisits if isinstance(nvisits, int) else -1], dtype=np.int64),
            },
        )

    # -- simulation (``starlabel simulate``) ---------------------------------------------------------------
    def simulation_grid(self) -> NativeGrid:
        """The DR17 apStar grid: 10**(4.179 + 6e-6 i) Å, i = 0 … 8574, vacuum, rest frame.

        Fluxes are physical (``normalised=False``) in 10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹, as in apStar files.
        """
        from starlabel_apogee.apstar_write import apstar_grid

        return apstar_grid()

    def simulation_ids(self, population: Population) -> np.ndarray:
        """2MASS-style APOGEE_IDs ``2MHHMMSSss±DDMMSSs`` from the population's ra/dec (truncated, as 2MASS).

        Stars whose truncated coordinates coincide would share an id: the first keeps it, each later one
        has its right ascension stepped by +0.01 s, +0.02 s … until the id is unused (deterministic; see
        :func:`starlabel_apogee.designation.apogee_ids`).
        """
        from starlabel_apogee.designation import apogee_ids

        return apogee_ids(population.ra, population.dec)

    def write(self, spectra: Spectra, folder: Path) -> list[Path]:
        """Write one ``apStar-dr17-<APOGEE_ID>.fits`` per spectrum (row 0 = the spectrum, row 1 zero).

        ``meta["vrad"]`` goes to ``VHELIO``, ``meta["snr"]`` to ``SNR``; bad pixels get the BADPIX bit.
        See :mod:`starlabel_apogee.apstar_write` for the layout.

        Raises
        ------
        SimulationError
            Spectra not on :meth:`simulation_grid`, ids empty or repeated, a file that cannot be written.
        """
        from starlabel_apogee.apstar_write import write_apstar_files

        return write_apstar_files(spectra, Path(folder), self.name)
