"""Write tiny, seeded 4MOST-LRS-like L1 spectra (assumed ESO SDP 1D layout) and a label table.

No real 4MOST spectrum exists yet: the layout is the one ``fourmost_lr_l1`` assumes (HDU0 header only with
``PRODCATG = 'SCIENCE.SPECTRUM'`` and ``INSTRUME = '4MOST'``; HDU1 a one-row BINTABLE of WAVE (Å, vacuum),
FLUX, ERR). Spectra are written on any given wavelength array — the tests use the real 4GP LRS raster
(16,385 pixels) when it is available, else :func:`default_wavelength`.

* ``L1_A.fits`` star A: ``OBJ_NAME``, ``INSTRUME = '4MOST'``, flux NaN at pixel 10, ERR 0 at pixel 20;
* ``L1_B.fits`` star B: no OBJ_NAME (the name is in OBJECT), ``INSTRUME = '4MOST-LRS'``, WAVE without
  TUNIT (Å by default);
* ``L1_C.fits`` star C: a ``QUAL`` column with pixels 30–34 bad;
* ``HRS_A.fits`` star A seen by the HRS (``INSTRUME = '4MOST-HRS'``, 3926–4355 Å): not an LRS file;
* ``labels.csv``: ``source_id, teff, logg, feh`` of A, B, C and a star without spectrum.

Usage::

    python make_fourmost.py OUTDIR [RASTER]   # RASTER: text file, wavelengths (Å) in column 1

Tests call :func:`write` into a temporary folder; no generated file is committed.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20260201
EXPECTED_MD5 = "f4c61e15a04d26686827728a53f914bd"
"""md5 of :func:`data_md5` for ``write(folder)`` on :func:`default_wavelength`."""

LINES_VACUUM_A: tuple[tuple[float, float, float], ...] = (
    # centre (vacuum, Å), depth, Gaussian sigma added to the instrumental one (Å)
    (3934.78, 0.7, 1.5),  # Ca II K
    (4862.68, 0.5, 3.0),  # H beta
    (5185.05, 0.4, 0.0),  # Mg b
    (6564.61, 0.6, 3.0),  # H alpha
    (8544.44, 0.5, 0.8),  # Ca II triplet
    (8664.52, 0.45, 0.8),  # Ca II triplet
)
STARS: dict[str, dict[str, Any]] = {
    "A": {"name": "4MOST_J145123.1-402510", "snr": 80.0, "teff": 4750.0, "logg": 2.45, "feh": -0.31},
    "B": {"name": "4MOST_J145124.0-402601", "snr": 50.0, "teff": 5820.0, "logg": 4.21, "feh": 0.05},
    "C": {"name": "4MOST_J145130.5-402446", "snr": 30.0, "teff": 6100.0, "logg": 4.05, "feh": -0.85},
}
EXTRA_LABEL = ("4MOST_J145200.0-403000", 5100.0, 3.5, 0.0)
"""A label row without a spectrum."""
RESOLUTION = 6500.0
HRS_RANGE = (3926.0, 4355.0, 0.05, 20000.0)
WAVE_UCD, FLUX_UCD, ERR_UCD = "em.wl", "phot.flux.density;em.wl;meta.main", "stat.error;meta.main"


def default_wavelength() -> np.ndarray:
    """A 2,001-pixel log-spaced stand-in for the LRS raster (3676.2–9521.6 Å)."""
    return np.geomspace(3676.2, 9521.6, 2001)


def model_flux(wave: np.ndarray, resolution: float) -> np.ndarray:
    """Un-normalised model: a sloped continuum times Gaussian lines at ``resolution``."""
    flux = 1.0 + 0.4 * (wave - 6500.0) / 3000.0
    for centre, depth, extra in LINES_VACUUM_A:
        sigma = np.hypot(centre / resolution / 2.3548, extra)
        flux *= 1 - depth * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)
    return flux


def spectrum_arrays(key: str, wave: np.ndarray, resolution: float = RESOLUTION) -> dict[str, np.ndarray]:
    """Flux, ERR and QUAL of star ``key`` on ``wave`` (float64, seeded)."""
    star = STARS[key]
    rng = np.random.default_rng([SEED, ord(key), wave.size])
    clean = model_flux(wave, resolution)
    sigma = clean / star["snr"]
    flux = clean + rng.normal(0.0, sigma)
    qual = np.zeros(wave.size, dtype=np.int32)
    if key == "A" and resolution == RESOLUTION:
        flux[10] = np.nan
        sigma[20] = 0.0
    if key == "C":
        qual[30:35] = 1
    return {"wave": wave, "flux": flux, "err": sigma, "qual": qual}


def _write_file(path: Path, cards: dict[str, Any], columns: list[tuple[str, np.ndarray, str, str]]) -> Path:
    from astropy.io import fits

    primary = fits.PrimaryHDU()
    for key, value in cards.items():
        primary.header[key] = value
    n = columns[0][1].size
    fmt = {"f": "D", "i": "J"}
    cols = [
        fits.Column(name=name, format=f"{n}{fmt[values.dtype.kind]}", unit=unit or None, array=values[None, :])
        for name, values, unit, _ in columns
    ]
    table = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    for i, (_, _, _, ucd) in enumerate(columns, start=1):
        table.header[f"TUCD{i}"] = ucd
    table.header["NELEM"] = n
    table.header["VOCLASS"] = "SPECTRUM v2.0"
    fits.HDUList([primary, table]).writeto(path, overwrite=True)
    return path


def _cards(key: str, wave: np.ndarray, instrument: str, resolution: float) -> dict[str, Any]:
    star = STARS[key]
    cards: dict[str, Any] = {
        "TELESCOP": "VISTA",
        "INSTRUME": instrument,
        "PRODCATG": "SCIENCE.SPECTRUM",
        "OBJECT": star["name"] if key == "B" else f"target_{key}",
        "RA": 222.8463,
        "DEC": -40.4196,
        "MJD-OBS": 61234.25,
        "SPECSYS": "BARYCENT",
        "WAVELMIN": float(wave[0]) / 10.0,
        "WAVELMAX": float(wave[-1]) / 10.0,
        "SPEC_RES": resolution,
        "SNR": star["snr"],
    }
    if key != "B":
        cards["OBJ_NAME"] = star["name"]
    return cards


def write_lrs(folder: Path, key: str, wave: np.ndarray) -> Path:
    """One LRS L1 file of star ``key`` on ``wave`` (Å, vacuum); variants in the module docstring."""
    a = spectrum_arrays(key, wave)
    instrument = "4MOST-LRS" if key == "B" else "4MOST"
    columns = [
        ("WAVE", a["wave"], "" if key == "B" else "Angstrom", WAVE_UCD),
        ("FLUX", a["flux"], "", FLUX_UCD),
        ("ERR", a["err"], "", ERR_UCD),
    ]
    if key == "C":
        columns.append(("QUAL", a["qual"], "", "meta.code.qual;meta.main"))
    return _write_file(folder / f"L1_{key}.fits", _cards(key, wave, instrument, RESOLUTION), columns)


def write_hrs(folder: Path) -> Path:
    """Star A seen by the HRS: an SDP 1D 4MOST file that ``fourmost_lr_l1`` must not claim."""
    start, stop, step, resolution = HRS_RANGE
    wave = start + step * np.arange(int(round((stop - start) / step)) + 1)
    a = spectrum_arrays("A", wave, resolution)
    columns = [("WAVE", wave, "Angstrom", WAVE_UCD), ("FLUX", a["flux"], "", FLUX_UCD), ("ERR", a["err"], "", ERR_UCD)]
    return _write_file(folder / "HRS_A.fits", _cards("A", wave, "4MOST-HRS", resolution), columns)


def write_labels(folder: Path) -> Path:
    """``labels.csv``: source_id, teff, logg, feh."""
    rows = [(s["name"], s["teff"], s["logg"], s["feh"]) for s in STARS.values()] + [EXTRA_LABEL]
    path = folder / "labels.csv"
    path.write_text("source_id,teff,logg,feh\n" + "".join(f"{n},{t:g},{g:g},{f:g}\n" for n, t, g, f in rows))
    return path


def write(folder: str | Path, wavelength: np.ndarray | None = None) -> dict[str, Path]:
    """Write every file into ``folder``; returns ``lrs:A``…``lrs:C``, ``hrs``, ``labels`` → path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wave = default_wavelength() if wavelength is None else np.asarray(wavelength, dtype=np.float64)
    paths = {f"lrs:{key}": write_lrs(folder, key, wave) for key in STARS}
    paths["hrs"] = write_hrs(folder)
    paths["labels"] = write_labels(folder)
    return paths


def truth(wavelength: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """What ``fourmost_lr_l1`` must return per LRS file: wave (Å), flux, sigma, mask, id."""
    wave = default_wavelength() if wavelength is None else np.asarray(wavelength, dtype=np.float64)
    out = {}
    for key, star in STARS.items():
        a = spectrum_arrays(key, wave)
        mask = ~np.isfinite(a["flux"]) | ~(a["err"] > 0) | (a["qual"] != 0)
        out[f"lrs:{key}"] = {"wave": wave, "flux": a["flux"], "sigma": a["err"], "mask": mask, "id": star["name"]}
    return out


def data_md5(paths: dict[str, Path]) -> str:
    """md5 over the bytes of every written file, in name order."""
    digest = hashlib.md5()
    for name in sorted(paths):
        digest.update(paths[name].read_bytes())
    return digest.hexdigest()


if __name__ == "__main__":
    raster = np.loadtxt(sys.argv[2], comments="#", ndmin=2)[:, 0] if len(sys.argv) > 2 else None
    written = write(sys.argv[1] if len(sys.argv) > 1 else ".", raster)
    md5 = data_md5(written)
    print("\n".join(str(p) for p in written.values()))
    if raster is None and md5 != EXPECTED_MD5:
        sys.exit(f"md5 {md5} differs from the expected {EXPECTED_MD5}")
