"""Writing simulated spectra as Gaia-ESO ESO Phase 3 SDP 1D files (``starlabel simulate``).

Grid
    The setup's nominal range (:data:`~starlabel_gaiaeso.setups.SETUPS`) sampled linearly in **air**
    nm at the product sampling :data:`SAMPLING`: 0.005 nm for the GIRAFFE setups (the Gaia-ESO GIRAFFE
    products, e.g. HR15N 647.0–679.0 nm = 6401 pixels) and 0.0025 nm for UVES 520/580 (an assumption:
    about 4–5 pixels per resolution element at R = 47 000; the real GES UVES sampling is unconfirmed).
    Spectra are in the **observed** frame: ``starlabel simulate`` shifts each model by the star's radial
    velocity, which is written to the header (``VRAD``) for the descriptor's
    ``rest_frame: {source: meta, key: vrad}``.
Flux
    Physical (``normalised=False``) in 10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹ with ``FLUXCAL = 'ABSOLUTE'`` and
    ``CONTNORM = F``. Real GES default fluxes are thought to be continuum-normalised (README); the
    simulated files therefore differ from real ones there, and the ``gaia_eso_giraffe`` descriptor fits
    its own Chebyshev continuum either way.
File
    One file per star (:mod:`starlabel_gaiaeso.sdp_write` layout) named like an ESO archive product,
    ``ADP.<timestamp>.fits``. The timestamp is synthetic — 2100-01-01 plus a number of milliseconds
    taken from a hash of the setup and the CNAME — so names are deterministic and never collide across
    calls into one folder: when the name is taken by another star's file, the next millisecond is tried.
    HDU0 carries ``INSTRUME`` (GIRAFFE or UVES), ``OBJECT`` and the id keyword (``CNAME``) = the star's
    CNAME, ``RA``/``DEC`` (when the spectra's meta has them), ``SETUP``, ``SPEC_RES``, ``SNR``,
    ``SPECSYS = 'BARYCENT'`` and the velocity keyword (``VRAD``, km/s).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.containers import NativeGrid, Spectra
from starlabel.errors import SimulationError
from starlabel.fitswrite import write_fits
from starlabel.simwrite import meta_values, prepare_writing, star_snr
from starlabel_gaiaeso.sdp_write import sdp_hdus
from starlabel_gaiaeso.setups import SETUPS

SAMPLING: dict[str, float] = {"HR10": 0.005, "HR15N": 0.005, "HR21": 0.005, "U520": 0.0025, "U580": 0.0025}
"""Product sampling (nm) per setup: GIRAFFE 0.005 nm; UVES 0.0025 nm (assumed)."""
FLUX_UNIT = "1e-17 erg s-1 cm-2 Angstrom-1"
EPOCH = datetime(2100, 1, 1)
"""Start of the synthetic ADP timestamps (far from any real product)."""
SPAN_MS = 10 * 365 * 86_400_000
"""Synthetic timestamps fall within ten years of :data:`EPOCH`."""
MAX_TRIES = 1000


def ges_grid(setup: str, reader: str = "eso_sdp_1d") -> NativeGrid:
    """Air-nm grid of ``setup``: ``start + SAMPLING·i`` up to the nominal stop, observed frame, physical flux.

    Raises
    ------
    SimulationError
        ``setup`` is not one of :data:`SETUPS` (e.g. ``any``).
    """
    if setup not in SETUPS:
        raise SimulationError(
            f"reader {reader!r}: cannot simulate for setup {setup!r}; set the reader option setup to one of "
            f"{', '.join(SETUPS)} (the simulated files need one FLAMES setup's wavelength range)"
        )
    known, step = SETUPS[setup], SAMPLING[setup]
    count = int(round((known.stop - known.start) / step)) + 1
    wave = known.start + step * np.arange(count, dtype=np.float64)
    return NativeGrid(
        wavelength=wave, unit="nm", medium="air", normalised=False, observed_frame=True, flux_unit=FLUX_UNIT
    )


def adp_name(setup: str, star: str, attempt: int = 0) -> str:
    """Synthetic ESO archive name ``ADP.YYYY-MM-DDThh:mm:ss.sss.fits`` of ``star`` in ``setup``."""
    digest = hashlib.sha256(f"{setup}:{star}".encode()).digest()
    ms = (int.from_bytes(digest[:8], "big") + attempt) % SPAN_MS
    stamp = EPOCH + timedelta(milliseconds=ms)
    return f"ADP.{stamp:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}.fits"


def write_ges_files(
    spectra: Spectra,
    folder: Path,
    *,
    setup: str,
    id_keyword: str = "CNAME",
    vrad_keyword: str = "VRAD",
    reader: str = "eso_sdp_1d",
) -> list[Path]:
    """Write one SDP 1D file per spectrum of ``spectra`` into ``folder``; return the paths, in row order.

    Raises
    ------
    SimulationError
        Unknown setup, spectra not on :func:`ges_grid`, ids empty or repeated, a file that cannot be
        written.
    """
    grid = ges_grid(setup, reader)
    folder = Path(folder)
    ids = prepare_writing(spectra, grid, folder, reader)
    vrad, snr = meta_values(spectra, "vrad"), star_snr(spectra)
    ra, dec = meta_values(spectra, "ra"), meta_values(spectra, "dec")
    instrument = "UVES" if setup.startswith("U") else "GIRAFFE"
    paths = []
    for i, star in enumerate(ids):
        cards: dict[str, Any] = {
            "ORIGIN": ("ESO", "European Southern Observatory"),
            "TELESCOP": ("ESO-VLT-U2", "ESO telescope designation"),
            "INSTRUME": (instrument, "Instrument name"),
            "OBJECT": (star, "Target designation"),
            id_keyword: (star, "Gaia-ESO CNAME (from the coordinates)"),
        }
        if np.isfinite(ra[i]) and np.isfinite(dec[i]):
            cards["RA"] = (float(ra[i]), "[deg] Spectroscopic target position (J2000.0)")
            cards["DEC"] = (float(dec[i]), "[deg] Spectroscopic target position (J2000.0)")
            cards["RADESYS"] = ("ICRS", "Coordinate reference frame")
        cards.update(
            {
                "SETUP": (setup, "FLAMES setup"),
                "SPECSYS": ("BARYCENT", "Reference frame for spectral coordinates"),
                "FLUXCAL": ("ABSOLUTE", "Certifies the validity of PHOTZP"),
                "CONTNORM": (False, "Spectrum is not continuum-normalised"),
                "SPEC_RES": (SETUPS[setup].resolution, "Reference spectral resolving power"),
                "SNR": (float(snr[i]) if np.isfinite(snr[i]) else 0.0, "Median signal to noise ratio per pixel"),
                "PROCSOFT": ("starlabel simulate", "Simulated: not an observation"),
            }
        )
        if np.isfinite(vrad[i]):
            cards[vrad_keyword] = (float(vrad[i]), "[km/s] Radial velocity (simulated, barycentric)")
        hdus = sdp_hdus(
            cards,
            grid.wavelength,
            grid.unit,
            grid.medium,
            spectra.flux[i],
            spectra.ivar[i],
            spectra.mask[i],
            FLUX_UNIT,
            title=f"{star} {setup} (simulated)",
        )
        path = _free_path(folder, setup, star, id_keyword)
        try:
            write_fits(path, hdus)
        except OSError as error:
            raise SimulationError(f"{path}: cannot write the simulated SDP spectrum ({error})") from None
        paths.append(path)
    return paths


def _free_path(folder: Path, setup: str, star: str, id_keyword: str) -> Path:
    """The first ``adp_name`` not taken by another star's file (a file of the same star and setup is reused)."""
    from starlabel.fitspeek import peek_header

    for attempt in range(MAX_TRIES):
        path = folder / adp_name(setup, star, attempt)
        if not path.exists():
            return path
        header = peek_header(path, 0) or {}
        if str(header.get(id_keyword, "")).strip() == star and str(header.get("SETUP", "")).strip() == setup:
            return path
    raise SimulationError(
        f"{folder}: no free file name for {star} ({setup}) after {MAX_TRIES} tries; write into an empty folder"
    )
