"""Write tiny, seeded Gaia-ESO-like ESO SDP 1D spectra and a recommended-parameter catalogue.

No real Gaia-ESO file was available: the layout follows the ESO Science Data Products standard
(ESO-044286: HDU0 header only with ``PRODCATG = 'SCIENCE.SPECTRUM'``; HDU1 a one-row BINTABLE of
array columns) and the GES catalogue schema (docs/FORMATS.md §5).

* ``spectra/ADP.2020-06-19T09:43:06.00N.fits``, four GIRAFFE HR15N spectra (647–679 nm, 0.005 nm pixels,
  R = 17000, air wavelengths, observed frame, continuum-normalised flux with Hα, Li 670.78 nm, Fe I and
  Ca I lines):

  - ``A`` CNAME keyword, ``SETUP = 'HR15N'``, ``VRAD``, WAVE in nm, float32 (``6401E``); flux NaN at
    pixel 100, ERR 0 at pixel 200;
  - ``B`` no CNAME (the CNAME is in OBJECT), ``HIERARCH ESO INS EXP MODE = 'HR15n'``, velocity in ``VEL``,
    lower-case column names, WAVE in Angstrom, float64 (``6401D``);
  - ``C`` no setup keyword (setup from WAVELMIN/WAVELMAX), a ``QUAL`` column with pixels 300–304 bad;
  - ``D`` a star whose catalogue row carries a TECH flag.

* ``ADP.2020-06-19T09:43:07.001.fits``: HR10 (533.9–561.9 nm, ``SETUP = 'HR10'``) of star A.
* ``ADP.2020-06-19T09:43:08.001.fits``: UVES 580 (476–684 nm, 0.01 nm, R = 47000, WAVE in Angstrom),
  ``FLUX_REDUCED``/``ERR_REDUCED`` (counts) before ``FLUX``/``ERR`` (normalised), of star B.
* ``GES_DR5.1_recommended.fits``: 9 catalogue rows exercising every cut (see :data:`CATALOGUE_ROWS`).

Usage::

    python make_gaiaeso.py OUTDIR      # writes the files and checks their md5

Tests call :func:`write` into a temporary folder; no generated file is committed.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20260112
C_KMS = 299_792.458
EXPECTED_MD5 = "00fb823d784cd5ea07302847f448bb7a"
"""md5 of :func:`data_md5` for :func:`write`."""

LINES_AIR_NM: tuple[tuple[float, float, float], ...] = (
    # centre (air, nm), depth, extra Gaussian sigma (nm)
    (649.499, 0.45, 0.0),  # Fe I
    (649.378, 0.35, 0.0),  # Ca I
    (656.280, 0.70, 0.08),  # H alpha
    (659.380, 0.40, 0.0),  # Fe I
    (660.902, 0.30, 0.0),  # Fe I
    (663.346, 0.35, 0.0),  # Fe I
    (667.800, 0.50, 0.0),  # Fe I
    (670.78, 0.30, 0.0),  # Li I doublet (blended)
    (671.768, 0.35, 0.0),  # Ca I
)
LI_AIR_NM = 670.78

STARS: dict[str, dict[str, Any]] = {
    "A": {"cname": "14512312-4025107", "vrad": 25.3, "snr": 85.0},
    "B": {"cname": "14512398-4026011", "vrad": -40.0, "snr": 60.0},
    "C": {"cname": "14513055-4024459", "vrad": 5.0, "snr": 40.0},
    "D": {"cname": "14513301-4027300", "vrad": 60.0, "snr": 70.0},
}
HR15N = (647.0, 679.0, 0.005, 17000.0)
HR10 = (533.9, 561.9, 0.005, 19800.0)
U580 = (476.0, 684.0, 0.01, 47000.0)
CATALOGUE = "GES_DR5.1_recommended.fits"
HR10_FILE = "ADP.2020-06-19T09:43:07.001.fits"
UVES_FILE = "ADP.2020-06-19T09:43:08.001.fits"

G = [4_100_000_000_000_000_000 + i for i in range(10)]
CATALOGUE_ROWS: tuple[tuple[Any, ...], ...] = (
    # CNAME, SETUP, SNR, TEFF, E_TEFF, LOGG, E_LOGG, FEH, E_FEH, ALPHA_FE, E_ALPHA_FE, PECULI, REMARK, TECH, GAIA
    ("14512312-4025107", "HR10|HR15N", 85.0, 4750, 60, 2.45, 0.12, -0.31, 0.08, 0.12, 0.05, "", "", "", G[1]),
    ("14512312-4025107", "HR15N", 30.0, 4800, 90, 2.60, 0.20, -0.25, 0.10, 0.10, 0.06, "", "", "", G[1]),
    ("14512398-4026011", "HR15N|U580", 60.0, 5820, 90, 4.21, 0.15, 0.05, 0.09, np.nan, np.nan, "", "", "", G[2]),
    ("14513055-4024459", "HR15N", 40.0, 6100, 110, 4.05, 0.20, -0.85, 0.12, 0.30, 0.07, "", "", "", G[3]),
    (
        "14513301-4027300",
        "HR15N",
        70.0,
        5000,
        80,
        3.00,
        0.15,
        -0.10,
        0.09,
        0.05,
        0.05,
        "",
        "",
        "10005-11-00-00-A",
        G[4],
    ),
    ("14514000-4030000", "HR15N", 90.0, 5100, 70, 3.50, 0.12, 0.00, 0.07, 0.02, 0.04, "2010-11-00-00-A", "", "", G[5]),
    ("14515000-4031000", "HR21", 120.0, 4400, 50, 1.90, 0.10, -1.20, 0.06, 0.35, 0.05, "", "3000-11-00-00-A", "", 0),
    ("14516000-4032000", "HR15N", 50.0, -9999, -9999, 4.40, 0.10, 0.10, 0.08, 0.00, 0.04, "", "", "", G[7]),
    ("", "HR15N", 100.0, 5300, 60, 4.00, 0.10, 0.20, 0.05, -0.02, 0.03, "", "", "", G[8]),
)
"""Rows: A (best) and a lower-S/N duplicate; B without [α/Fe]; C at S/N 40; D TECH-flagged; E PECULI-flagged
(a binary, code 2010); F HR21 with a REMARK and no Gaia match (0); H with TEFF = −9999; a row without CNAME."""


def grid(setup: tuple[float, float, float, float]) -> np.ndarray:
    """Air wavelengths (nm) of a setup: start + i·step."""
    start, stop, step, _ = setup
    return start + step * np.arange(int(round((stop - start) / step)) + 1)


def normalised_flux(wave_nm: np.ndarray, resolution: float, vrad: float) -> np.ndarray:
    """Continuum-normalised model: Gaussian lines at R, Doppler-shifted by ``vrad`` (km/s)."""
    flux = np.ones_like(wave_nm)
    for centre, depth, extra in LINES_AIR_NM:
        observed = centre * (1 + vrad / C_KMS)
        sigma = np.hypot(observed / resolution / 2.3548, extra)
        flux *= 1 - depth * np.exp(-0.5 * ((wave_nm - observed) / sigma) ** 2)
    return flux


def spectrum_arrays(key: str, setup: tuple[float, float, float, float] = HR15N) -> dict[str, np.ndarray]:
    """Wave (nm, air), flux, ERR and QUAL of star ``key`` in ``setup`` before writing (float64, seeded)."""
    star = STARS[key]
    rng = np.random.default_rng([SEED, ord(key), int(setup[0])])
    wave = grid(setup)
    sigma = np.full(wave.size, 1.0 / star["snr"])
    flux = normalised_flux(wave, setup[3], star["vrad"]) + rng.normal(0.0, sigma)
    qual = np.zeros(wave.size, dtype=np.int32)
    if key == "A" and setup == HR15N:
        flux[100] = np.nan
        sigma[200] = 0.0
    if key == "C":
        qual[300:305] = 1
    return {"wave": wave, "flux": flux, "err": sigma, "qual": qual}


def _primary(header_cards: dict[str, Any]) -> Any:
    from astropy.io import fits

    hdu = fits.PrimaryHDU()
    for key, value in header_cards.items():
        hdu.header[key] = value
    return hdu


def _sdp_header(star: dict[str, Any], setup: tuple[float, float, float, float], instrument: str) -> dict[str, Any]:
    return {
        "ORIGIN": "ESO",
        "TELESCOP": "ESO-VLT-U2",
        "INSTRUME": instrument,
        "PRODCATG": "SCIENCE.SPECTRUM",
        "RA": 222.8463,
        "DEC": -40.4196,
        "MJD-OBS": 56789.125,
        "TEXPTIME": 3000.0,
        "SPECSYS": "BARYCENT",
        "CONTNORM": True,
        "WAVELMIN": setup[0],
        "WAVELMAX": setup[1],
        "SPEC_BIN": setup[2],
        "SPEC_RES": setup[3],
        "SNR": star["snr"],
    }


def _table(columns: list[tuple[str, str, np.ndarray, str, str, str]]) -> Any:
    """One-row BINTABLE: (name, element format, values, TUNIT, TUCD, TUTYP) per column."""
    from astropy.io import fits

    n = columns[0][2].size
    cols = [
        fits.Column(name=name, format=f"{n}{fmt}", unit=unit or None, array=values[None, :])
        for name, fmt, values, unit, _, _ in columns
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    for i, (_, _, _, _, ucd, utype) in enumerate(columns, start=1):
        hdu.header[f"TUCD{i}"] = ucd
        hdu.header[f"TUTYP{i}"] = utype
    hdu.header["NELEM"] = n
    hdu.header["VOCLASS"] = "SPECTRUM v2.0"
    hdu.header["VOPUB"] = "ESO/SAF"
    return hdu


WAVE_UCD, FLUX_UCD, ERR_UCD = "em.wl;obs.atmos", "phot.flux.density;em.wl;arith.ratio;meta.main", "stat.error;meta.main"
WAVE_T, FLUX_T = "spec:Data.SpectralAxis.Value", "spec:Data.FluxAxis.Value"
ERR_T, QUAL_T = "spec:Data.FluxAxis.Accuracy.StatError", "spec:Data.FluxAxis.Accuracy.QualityStatus"


def write_hr15n(folder: Path, key: str) -> Path:
    """One HR15N spectrum of star ``key`` (layout variants in the module docstring)."""
    from astropy.io import fits

    star, a = STARS[key], spectrum_arrays(key)
    cards = _sdp_header(star, HR15N, "GIRAFFE")
    cards["OBJECT"] = star["cname"] if key == "B" else f"GES_MW_{key}"
    if key != "B":
        cards["CNAME"] = star["cname"]
    if key == "A":
        cards["SETUP"] = "HR15N"
    if key == "B":
        cards["HIERARCH ESO INS EXP MODE"] = "HR15n"
        cards["VEL"] = star["vrad"]
    else:
        cards["VRAD"] = star["vrad"]
    if key == "B":
        columns = [
            ("wave", "D", a["wave"] * 10.0, "Angstrom", WAVE_UCD, WAVE_T),
            ("flux", "D", a["flux"], "", FLUX_UCD, FLUX_T),
            ("err", "D", a["err"], "", ERR_UCD, ERR_T),
        ]
    else:
        columns = [
            ("WAVE", "E", a["wave"], "nm", WAVE_UCD, WAVE_T),
            ("FLUX", "E", a["flux"], "", FLUX_UCD, FLUX_T),
            ("ERR", "E", a["err"], "", ERR_UCD, ERR_T),
        ]
        if key == "C":
            columns.append(("QUAL", "J", a["qual"], "", "meta.code.qual;meta.main", QUAL_T))
    path = folder / "spectra" / f"ADP.2020-06-19T09:43:06.00{ord(key) - 64}.fits"
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([_primary(cards), _table(columns)]).writeto(path, overwrite=True)
    return path


def write_hr10(folder: Path) -> Path:
    """HR10 spectrum of star A (``SETUP = 'HR10'``), WAVE in nm."""
    from astropy.io import fits

    star, a = STARS["A"], spectrum_arrays("A", HR10)
    cards = {**_sdp_header(star, HR10, "GIRAFFE"), "OBJECT": "GES_MW_A", "CNAME": star["cname"]}
    cards.update({"SETUP": "HR10", "VRAD": star["vrad"]})
    columns = [
        ("WAVE", "E", a["wave"], "nm", WAVE_UCD, WAVE_T),
        ("FLUX", "E", a["flux"], "", FLUX_UCD, FLUX_T),
        ("ERR", "E", a["err"], "", ERR_UCD, ERR_T),
    ]
    path = folder / HR10_FILE
    fits.HDUList([_primary(cards), _table(columns)]).writeto(path, overwrite=True)
    return path


def write_uves(folder: Path) -> Path:
    """UVES 580 spectrum of star B: FLUX_REDUCED/ERR_REDUCED (counts) then FLUX/ERR (normalised), Å."""
    from astropy.io import fits

    star, a = STARS["B"], spectrum_arrays("B", U580)
    cards = {**_sdp_header(star, U580, "UVES"), "OBJECT": "GES_MW_B", "CNAME": star["cname"]}
    cards.update({"HIERARCH ESO INS GRAT2 WLEN": 580.0, "VRAD": star["vrad"]})
    level = 1000.0
    columns = [
        ("WAVE", "E", a["wave"] * 10.0, "angstrom", WAVE_UCD, WAVE_T),
        (
            "FLUX_REDUCED",
            "E",
            a["flux"] * level,
            "adu",
            "phot.flux.density;em.wl;stat.uncalib",
            "eso:Data.FluxAxis.Value",
        ),
        ("ERR_REDUCED", "E", a["err"] * level, "adu", "stat.error", "eso:Data.FluxAxis.Accuracy.StatError"),
        ("FLUX", "E", a["flux"], "", FLUX_UCD, FLUX_T),
        ("ERR", "E", a["err"], "", ERR_UCD, ERR_T),
    ]
    path = folder / UVES_FILE
    fits.HDUList([_primary(cards), _table(columns)]).writeto(path, overwrite=True)
    return path


def write_catalogue(folder: Path) -> Path:
    """The recommended-parameter table (HDU1) of :data:`CATALOGUE_ROWS`."""
    from astropy.io import fits

    col = list(zip(*CATALOGUE_ROWS, strict=True))
    n = len(CATALOGUE_ROWS)
    floats = ("SNR", "TEFF", "E_TEFF", "LOGG", "E_LOGG", "FEH", "E_FEH", "ALPHA_FE", "E_ALPHA_FE")
    columns = [
        fits.Column("CNAME", "16A", array=np.array(col[0])),
        fits.Column("GES_FLD", "20A", array=np.array(["GES_MW_TEST"] * n)),
        fits.Column("SETUP", "20A", array=np.array(col[1])),
        *(fits.Column(name, "E", array=np.array(col[i + 2], dtype=np.float32)) for i, name in enumerate(floats)),
        fits.Column("PECULI", "40A", array=np.array(col[11])),
        fits.Column("REMARK", "40A", array=np.array(col[12])),
        fits.Column("TECH", "40A", array=np.array(col[13])),
        fits.Column("GAIAEDR3_SOURCE_ID", "K", array=np.array(col[14], dtype=np.int64)),
    ]
    path = folder / CATALOGUE
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(path, overwrite=True)
    return path


def write(folder: str | Path) -> dict[str, Path]:
    """Write every file into ``folder``; returns name → path (``hr15n:A``…``hr15n:D``, ``hr10``, ``uves``, ``catalogue``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {f"hr15n:{key}": write_hr15n(folder, key) for key in STARS}
    paths["hr10"] = write_hr10(folder)
    paths["uves"] = write_uves(folder)
    paths["catalogue"] = write_catalogue(folder)
    return paths


def truth() -> dict[str, Any]:
    """What ``eso_sdp_1d`` must return per file key: wave (in the file's unit), unit, flux, sigma, mask, id, meta."""
    out: dict[str, Any] = {}
    for key, star in STARS.items():
        a = spectrum_arrays(key)
        dtype = np.float64 if key == "B" else np.float32
        wave = (a["wave"] * 10.0 if key == "B" else a["wave"]).astype(dtype).astype(np.float64)
        flux, sigma = a["flux"].astype(dtype).astype(np.float64), a["err"].astype(dtype).astype(np.float64)
        mask = ~np.isfinite(flux) | ~(sigma > 0) | (a["qual"] != 0)
        out[f"hr15n:{key}"] = {
            "wave": wave,
            "unit": "Angstrom" if key == "B" else "nm",
            "flux": flux,
            "sigma": sigma,
            "mask": mask,
            "id": star["cname"],
            "vrad": star["vrad"],
            "snr": star["snr"],
        }
    a = spectrum_arrays("B", U580)
    out["uves"] = {
        "wave": (a["wave"] * 10.0).astype(np.float32).astype(np.float64),
        "flux": a["flux"].astype(np.float32).astype(np.float64),
        "flux_reduced": (a["flux"] * 1000.0).astype(np.float32).astype(np.float64),
        "id": STARS["B"]["cname"],
    }
    return out


def data_md5(paths: dict[str, Path]) -> str:
    """md5 over the bytes of every written file, in name order."""
    digest = hashlib.md5()
    for name in sorted(paths):
        digest.update(paths[name].read_bytes())
    return digest.hexdigest()


if __name__ == "__main__":
    written = write(sys.argv[1] if len(sys.argv) > 1 else ".")
    md5 = data_md5(written)
    print("\n".join(str(p) for p in written.values()))
    if md5 != EXPECTED_MD5:
        sys.exit(f"md5 {md5} differs from the expected {EXPECTED_MD5}")
