"""Building ESO Phase 3 SDP one-dimensional spectrum files (ESO-044286) from simulated spectra.

The layout is the one :mod:`starlabel_gaiaeso.sdpfile` reads: HDU0 header only (the cards given, plus
``PRODCATG = 'SCIENCE.SPECTRUM'``, ``WAVELMIN``/``WAVELMAX``/``SPEC_BIN`` in nm, ``NELEM``), HDU1 a
BINTABLE ``SPECTRUM`` with ONE row of four array columns, SDP v2 ``TUTYP``/``TUCD`` per column:

=====  ======  ============================================================================================
name   format  content
=====  ======  ============================================================================================
WAVE   ``D``   wavelengths, float64, in the given unit (``TUCD`` ``em.wl`` vacuum, ``em.wl;obs.atmos`` air)
FLUX   ``E``   flux, float32 (relative precision 6e-8); NaN where the input flux is not finite
ERR    ``E``   1σ error ``1/sqrt(ivar)``, float32; NaN where ``ivar`` is 0 or not finite
QUAL   ``J``   0 good, 1 bad (``mask`` True, ``ivar`` ≤ 0, or flux not finite)
=====  ======  ============================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from starlabel.fitswrite import Hdu, primary_hdu, table_hdu

WAVE_UCD = {"vacuum": "em.wl", "air": "em.wl;obs.atmos"}
"""SDP TUCD of the spectral axis per medium."""
TUTYP = {
    "WAVE": "spec:Data.SpectralAxis.Value",
    "FLUX": "spec:Data.FluxAxis.Value",
    "ERR": "spec:Data.FluxAxis.Accuracy.StatError",
    "QUAL": "spec:Data.FluxAxis.Accuracy.QualityStatus",
}
TUCD = {
    "FLUX": "phot.flux.density;em.wl;meta.main",
    "ERR": "stat.error;phot.flux.density;meta.main",
    "QUAL": "meta.code.qual;meta.main",
}


def error_and_quality(
    flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(flux, err, qual)`` as written: NaN flux where not finite, NaN err where ``ivar`` ≤ 0, qual 0/1."""
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(ivar) & (ivar > 0)
    err = np.full(flux.shape, np.nan)
    np.divide(1.0, np.sqrt(ivar, where=usable, out=np.ones_like(ivar)), out=err, where=usable)
    finite = np.isfinite(flux)
    qual = (np.asarray(mask, dtype=bool) | ~usable | ~finite).astype(np.int32)
    return np.where(finite, flux, np.nan), err, qual


def sdp_hdus(
    cards: Mapping[str, Any],
    wave: np.ndarray,
    wave_unit: str,
    medium: Literal["vacuum", "air"],
    flux: np.ndarray,
    ivar: np.ndarray,
    mask: np.ndarray,
    flux_unit: str,
    title: str,
) -> list[Hdu]:
    """The two HDUs of one SDP 1D spectrum, for :func:`starlabel.fitswrite.write_fits`.

    Parameters
    ----------
    cards : mapping
        HDU0 keywords in order: ``value`` or ``(value, comment)``; ``HIERARCH`` names allowed.
    wave : numpy.ndarray
        (P,) wavelengths in ``wave_unit`` (an astropy unit string) and ``medium``.
    flux, ivar, mask : numpy.ndarray
        (P,) flux, inverse variance and bad-pixel mask.
    flux_unit : str
        astropy unit string of the flux (written as the FITS ``TUNIT``).
    title : str
        HDU1 ``TITLE``.
    """
    import astropy.units as u

    wave = np.asarray(wave, dtype=np.float64)
    flux, err, qual = error_and_quality(flux, ivar, mask)
    unit = u.Unit(wave_unit)
    nm = (wave[[0, -1]] * unit).to_value(u.nm)
    step_nm = float(np.median(np.diff(wave))) * unit.to(u.nm) if wave.size > 1 else 0.0
    header_cards: dict[str, Any] = {"PRODCATG": ("SCIENCE.SPECTRUM", "Data product category"), **cards}
    header_cards.update(
        {
            "WAVELMIN": (float(nm[0]), "[nm] Minimum wavelength"),
            "WAVELMAX": (float(nm[1]), "[nm] Maximum wavelength"),
            "SPEC_BIN": (step_nm, "[nm] Median wavelength bin"),
            "NELEM": (wave.size, "Length of the data arrays"),
            "COMMENT": "Simulated spectrum written by starlabel simulate (not an observation)",
        }
    )
    flux_tunit = u.Unit(flux_unit).to_string("fits") if flux_unit else ""
    columns = [
        ("WAVE", wave.astype(np.float64)[None, :], unit.to_string("fits"), WAVE_UCD[medium]),
        ("FLUX", flux.astype(np.float32)[None, :], flux_tunit, TUCD["FLUX"]),
        ("ERR", err.astype(np.float32)[None, :], flux_tunit, TUCD["ERR"]),
        ("QUAL", qual.astype(np.int32)[None, :], "", TUCD["QUAL"]),
    ]
    table_cards: dict[str, Any] = {}
    for index, (name, _, _, ucd) in enumerate(columns, start=1):
        table_cards[f"TUTYP{index}"] = TUTYP[name]
        table_cards[f"TUCD{index}"] = ucd
    table_cards.update(
        {
            "TDMIN1": float(wave[0]),
            "TDMAX1": float(wave[-1]),
            "NELEM": wave.size,
            "VOCLASS": "SPECTRUM v2.0",
            "VOPUB": "ESO/SAF",
            "TITLE": title,
        }
    )
    return [
        primary_hdu(header_cards),
        table_hdu([(name, values, tunit) for name, values, tunit, _ in columns], 1, table_cards, name="SPECTRUM"),
    ]
