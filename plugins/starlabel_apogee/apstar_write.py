"""Writing simulated spectra as APOGEE DR17 apStar files (``starlabel simulate``).

One ``apStar-dr17-<APOGEE_ID>.fits`` per star, in the layout of the SAS originals (FORMATS.md §4) that
:class:`~starlabel_apogee.apstar.ApogeeApStar` reads:

======  ==========================================================================================
HDU     content written
======  ==========================================================================================
0       header only: ``CRVAL1 = 4.179``, ``CDELT1 = 6e-6``, ``CRPIX1 = 1``, ``CTYPE1 = 'LOG-LINEAR'``,
        ``DC-FLAG = 1``, ``NWAVE = 8575``, ``OBJID`` (the APOGEE_ID), ``RA``/``DEC`` (when the spectra's
        meta has them), ``SNR``, ``NVISITS = 1``, ``STARFLAG = ANDFLAG = 0``, ``VHELIO`` and
        ``VSCATTER = 0``, the visit-1 cards ``SFILE1``/``VHELIO1``/``SNRVIS1``/``FLAG1``, ``HISTORY``
1, 2    flux and error, float32 images of (2, 8575) in 10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹, with the WCS keywords
3       APOGEE_PIXMASK, int16 image of (2, 8575)
4-7     sky, sky error, telluric, telluric error: **empty** image HDUs (kept so that HDU numbers match
        the archive; the sky and telluric spectra are not simulated, and zero-filled arrays would
        triple the file size)
8       LSF table: empty image HDU, as in the DR17 samples
9, 10   RV tables (one visit; the combined spectrum): ``filename``, ``jd``, ``snr``, ``vhelio``,
        ``vrel``, ``bc``, ``teff``, ``logg``, ``feh`` (the last three NaN: no Doppler fit was run)
======  ==========================================================================================

Rows: a simulated star is a single visit, so, as in the real single-visit sample, row 0 holds the
combined spectrum and row 1 (global weighting) is all zero. Bad pixels — ``mask`` True, ``ivar`` ≤ 0 or
not finite, flux not finite — get the BADPIX bit (0) in HDU3; where ``ivar`` is 0 the error is the
pipeline's fill value 1e10. Flux and error are stored in float32 (relative precision 6e-8), as in the
SAS files; the grid is the DR17 apStar grid, so the written wavelengths are exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from starlabel.containers import NativeGrid, Spectra
from starlabel.errors import SimulationError
from starlabel.fitswrite import Hdu, image_hdu, primary_hdu, table_hdu, write_fits
from starlabel.simwrite import meta_values, prepare_writing, star_snr
from starlabel_apogee.bits import APOGEE_PIXMASK

CRVAL1, CDELT1, NWAVE = 4.179, 6e-6, 8575
FLUX_UNIT = "1e-17 erg s-1 cm-2 Angstrom-1"
BAD_ERROR = 1.0e10
"""Error written where ``ivar`` is 0 (the pipeline's fill value for bad pixels; the reader masks > 1e5)."""
BADPIX = 1 << APOGEE_PIXMASK["BADPIX"]
RELEASE = "dr17"
FIELD = "SIMULATED"


def apstar_grid() -> NativeGrid:
    """The DR17 apStar grid: 10**(4.179 + 6e-6 i) Å, i = 0 … 8574, vacuum, rest frame, physical flux."""
    wave = 10.0 ** (CRVAL1 + CDELT1 * np.arange(NWAVE, dtype=np.float64))
    return NativeGrid(
        wavelength=wave, unit="Angstrom", medium="vacuum", normalised=False, observed_frame=False, flux_unit=FLUX_UNIT
    )


def write_apstar_files(spectra: Spectra, folder: Path, reader: str = "apogee_apstar") -> list[Path]:
    """Write one apStar file per spectrum of ``spectra`` into ``folder``; return the paths, in row order.

    Raises
    ------
    SimulationError
        The spectra are not on the apStar grid (unit Å, vacuum, 8575 pixels at 10**(4.179 + 6e-6 i)), an
        id is empty, repeated or not a valid file name, or a file cannot be written.
    """
    folder = Path(folder)
    ids = prepare_writing(spectra, apstar_grid(), folder, reader)
    vrad, snr = meta_values(spectra, "vrad"), star_snr(spectra)
    ra, dec = meta_values(spectra, "ra"), meta_values(spectra, "dec")
    paths = []
    for i, apogee_id in enumerate(ids):
        hdus = apstar_hdus(
            apogee_id,
            spectra.flux[i],
            spectra.ivar[i],
            spectra.mask[i],
            snr=snr[i],
            vhelio=vrad[i],
            ra=ra[i],
            dec=dec[i],
        )
        path = folder / f"apStar-{RELEASE}-{apogee_id}.fits"
        try:
            write_fits(path, hdus)
        except OSError as error:
            raise SimulationError(f"{path}: cannot write the simulated apStar file ({error})") from None
        paths.append(path)
    return paths


def apstar_hdus(
    apogee_id: str,
    flux: np.ndarray,
    ivar: np.ndarray,
    mask: np.ndarray,
    *,
    snr: float,
    vhelio: float,
    ra: float = float("nan"),
    dec: float = float("nan"),
) -> list[Hdu]:
    """The eleven HDUs of one star (layout in the module docstring), for :func:`starlabel.fitswrite.write_fits`."""
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(ivar) & (ivar > 0)
    bad = np.asarray(mask, dtype=bool) | ~usable | ~np.isfinite(flux)
    sigma = np.full(flux.shape, BAD_ERROR)
    np.divide(1.0, np.sqrt(ivar, where=usable, out=np.ones_like(ivar)), out=sigma, where=usable)
    rows = np.zeros((3, 2, flux.size))
    rows[0, 0], rows[1, 0] = np.where(np.isfinite(flux), flux, np.nan), sigma
    rows[2, 0] = np.where(bad, BADPIX, 0)

    cards: dict[str, Any] = {
        **WCS_CARDS,
        "DC-FLAG": (1, "Logarithmic wavelength scale in subsequent HDUs"),
        "NWAVE": (NWAVE, "Number of wavelengths in subsequent HDUs"),
        "FIELD": (FIELD, "APOGEE field name"),
        "OBJID": (apogee_id, "APOGEE object name"),
        "SNR": (_card(snr), "Median S/N per apStar pixel"),
    }
    if np.isfinite(ra) and np.isfinite(dec):
        cards["RA"] = (float(ra), "right ascension, deg, J2000")
        cards["DEC"] = (float(dec), "declination, deg, J2000")
    cards.update(
        {
            "NVISITS": (1, "Number of visit spectra combined flag"),
            "STARFLAG": (0, "bitwise OR of individual visit starflags"),
            "ANDFLAG": (0, "bitwise AND of individual visit starflags"),
            "VHELIO": (_card(vhelio), "S/N weighted mean barycentric RV"),
            "VSCATTER": (0.0, "standard deviation of visit RVs"),
            "SFILE1": ("simulated", "Visit #1 spectrum file"),
            "VHELIO1": (_card(vhelio), "Barycentric velocity (km/s), visit 1"),
            "SNRVIS1": (_card(snr), "Median S/N per apStar pixel, visit 1"),
            "FLAG1": (0, "STARFLAG for visit 1"),
        }
    )
    primary = primary_hdu(cards)
    for line in HISTORY:
        primary[0].add_history(line)
    hdus = [primary]
    for data, unit in (
        (rows[0].astype(np.float32), "Flux (10^-17 erg/s/cm^2/Ang)"),
        (rows[1].astype(np.float32), "Err (10^-17 erg/s/cm^2/Ang)"),
        (rows[2].astype(np.int16), "Pixel bitmask"),
    ):
        hdus.append(image_hdu(data, {**WCS_CARDS, "BUNIT": unit}))
    for unit in ("Sky", "Sky error", "Telluric", "Telluric error"):
        hdus.append(image_hdu(None, {"BUNIT": f"{unit} (not simulated)"}))
    hdus.append(image_hdu(None))  # LSF table, empty as in the DR17 samples
    rv_columns = [
        ("filename", np.array([b"simulated"], dtype="S72"), ""),
        ("jd", np.array([np.nan]), ""),
        ("snr", np.array([float(snr)]), ""),
        ("vhelio", np.array([float(vhelio)]), ""),
        ("vrel", np.array([float(vhelio)]), ""),
        ("bc", np.array([0.0]), ""),
        ("teff", np.array([np.nan]), ""),
        ("logg", np.array([np.nan]), ""),
        ("feh", np.array([np.nan]), ""),
    ]
    hdus += [table_hdu(rv_columns, 1), table_hdu(rv_columns, 1)]
    return hdus


WCS_CARDS: dict[str, Any] = {
    "CRVAL1": (CRVAL1, "Start log10(wavelength) in subsequent HDUs"),
    "CDELT1": (CDELT1, "Dispersion in log10(wave) in subsequent HDUs"),
    "CRPIX1": (1, "Pixel of starting wavelength in subsequent HDUs"),
    "CTYPE1": ("LOG-LINEAR", "Logarithmic wavelength scale in subsequent HDUs"),
}
HISTORY: tuple[str, ...] = (
    "Simulated spectrum written by starlabel simulate (not an APOGEE observation)",
    "HDU0 : header",
    "HDU1 : flux",
    "HDU2 : flux uncertainty",
    "HDU3 : pixel bitmask",
    "HDU4 : sky (empty: not simulated)",
    "HDU5 : sky uncertainty (empty: not simulated)",
    "HDU6 : telluric (empty: not simulated)",
    "HDU7 : telluric uncertainty (empty: not simulated)",
    "HDU8 : LSF table",
    "HDU9 : RV table",
    "HDU10 : RV table for combined spectrum",
)


def _card(value: float) -> float:
    """A header value: FITS cards cannot hold NaN, so an unknown value becomes the archive's -9999."""
    return float(value) if np.isfinite(value) else -9999.0
