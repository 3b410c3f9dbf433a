"""Writing simulated spectra as (stub) 4MOST LRS L1 files (``starlabel simulate``).

Grid
    The real 4GP LRS raster is not shipped with starlabel, so simulated spectra use a log-linear
    **vacuum** grid over 3700–9500 Å sampling the nominal resolving power R = 6500 with 2.5 pixels per
    resolution element: ``λ_i = 3700 Å · exp(i / (2.5 · 6500))``, i = 0 … 15 323 (last pixel 9499.95 Å,
    15 324 pixels, 0.23–0.58 Å per pixel). The ``fourmost_lr`` descriptor resamples it onto its own grid.
Frame
    **Rest frame** (``observed_frame=False``): the stub layout (README) has no radial-velocity keyword —
    velocities are an L2 product — and the ``fourmost_lr`` descriptor has no ``rest_frame`` section, so
    the files carry no velocity and ``SPECSYS = 'SOURCE'``. (If a velocity keyword is added to the
    layout, switch to the observed frame and add ``rest_frame: {source: meta, key: vrad}``.)
Flux
    Physical (``normalised=False``) in 10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹, ``FLUXCAL = 'ABSOLUTE'``.
File
    One ``L1_<id>.fits`` per star in the stub's assumed ESO SDP 1D layout
    (:mod:`starlabel_gaiaeso.sdp_write`: WAVE in Å float64, FLUX/ERR float32, QUAL), HDU0 with
    ``INSTRUME = '4MOST-LRS'``, ``TELESCOP = 'ESO-VISTA'``, ``OBJECT`` and the id keyword (``OBJ_NAME``)
    = the id, ``RA``/``DEC`` (when the spectra's meta has them), ``SPEC_RES = 6500``, ``SNR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from starlabel.containers import NativeGrid, Spectra
from starlabel.errors import SimulationError
from starlabel.fitswrite import write_fits
from starlabel.simwrite import meta_values, prepare_writing, star_snr
from starlabel_gaiaeso.sdp_write import sdp_hdus

START, STOP = 3700.0, 9500.0
"""Grid limits (Å, vacuum)."""
RESOLUTION = 6500.0
"""Nominal LRS resolving power (assumed, as the ``fourmost_lr`` descriptor)."""
PIXELS_PER_RESOLUTION = 2.5
FLUX_UNIT = "1e-17 erg s-1 cm-2 Angstrom-1"


def lrs_grid() -> NativeGrid:
    """Log-linear vacuum grid 3700–9500 Å, Δln λ = 1/(2.5·6500); rest frame, physical flux."""
    step = 1.0 / (PIXELS_PER_RESOLUTION * RESOLUTION)
    count = int(np.floor(np.log(STOP / START) / step)) + 1
    wave = START * np.exp(step * np.arange(count, dtype=np.float64))
    return NativeGrid(
        wavelength=wave, unit="Angstrom", medium="vacuum", normalised=False, observed_frame=False, flux_unit=FLUX_UNIT
    )


def write_l1_files(
    spectra: Spectra, folder: Path, *, id_keyword: str = "OBJ_NAME", reader: str = "fourmost_lr_l1"
) -> list[Path]:
    """Write one ``L1_<id>.fits`` per spectrum of ``spectra`` into ``folder``; return the paths, in row order.

    Raises
    ------
    SimulationError
        Spectra not on :func:`lrs_grid`, ids empty, repeated or path-like, a file that cannot be written.
    """
    grid = lrs_grid()
    folder = Path(folder)
    ids = prepare_writing(spectra, grid, folder, reader)
    snr = star_snr(spectra)
    ra, dec = meta_values(spectra, "ra"), meta_values(spectra, "dec")
    paths = []
    for i, star in enumerate(ids):
        cards: dict[str, Any] = {
            "TELESCOP": ("ESO-VISTA", "ESO telescope designation"),
            "INSTRUME": ("4MOST-LRS", "Instrument name (assumed stub value)"),
            "OBJECT": (star, "Target designation"),
            id_keyword: (star, "Source id (simulated)"),
        }
        if np.isfinite(ra[i]) and np.isfinite(dec[i]):
            cards["RA"] = (float(ra[i]), "[deg] Target position (ICRS)")
            cards["DEC"] = (float(dec[i]), "[deg] Target position (ICRS)")
            cards["RADESYS"] = ("ICRS", "Coordinate reference frame")
        cards.update(
            {
                "SPECSYS": ("SOURCE", "Rest frame of the star (simulated)"),
                "FLUXCAL": ("ABSOLUTE", "Flux calibration"),
                "CONTNORM": (False, "Spectrum is not continuum-normalised"),
                "SPEC_RES": (RESOLUTION, "Reference spectral resolving power (assumed)"),
                "SNR": (float(snr[i]) if np.isfinite(snr[i]) else 0.0, "Median signal to noise ratio per pixel"),
                "PROCSOFT": ("starlabel simulate", "Simulated: not an observation"),
            }
        )
        hdus = sdp_hdus(
            cards,
            grid.wavelength,
            grid.unit,
            grid.medium,
            spectra.flux[i],
            spectra.ivar[i],
            spectra.mask[i],
            FLUX_UNIT,
            title=f"{star} 4MOST LRS (simulated)",
        )
        path = folder / f"L1_{star}.fits"
        try:
            write_fits(path, hdus)
        except OSError as error:
            raise SimulationError(f"{path}: cannot write the simulated L1 spectrum ({error})") from None
        paths.append(path)
    return paths
