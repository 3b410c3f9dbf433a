"""Write tiny, seeded APOGEE files in the DR17 layouts: apStar, aspcapStar, apVisit and allStar.

* ``apStar-dr17-<id>.fits`` for three stars: 2M00000001+0000001 (3 visits → 5 rows), 2M00000002+0000002
  (1 visit → 2 rows, row 1 all zero, as in the real single-visit sample) and 2M00000003+0000003 (3 visits).
  Layout as the real DR17 samples: HDU0 header only (CRVAL1 = 4.179, CDELT1 = 6e-6, CRPIX1 = 1,
  CTYPE1 = 'LOG-LINEAR', DC-FLAG = 1, NWAVE = 8575, OBJID, SNR, NVISITS, VHELIO, SNRVISn, VHELIOn, …),
  HDU1-7 images of (nrow, 8575) (flux, error, APOGEE_PIXMASK, sky ± error, telluric ± error) with the
  WCS keywords, HDU8 empty, HDU9/10 small RV tables. Combined rows hold NaN in the chip gaps, visit rows 0;
  gap errors are 1e10. Seeded pixels carry BAD bits (0, 1, 4, 5, 7, 14) and warning bits (9, 12, 13);
  one pixel has error 2e5 (> 1e5), one error 0, one flux 0.
* ``aspcapStar-dr17-2M00000001+0000001.fits`` from the data model (no real sample): HDU1 normalised flux
  (8575,), HDU2 error, HDU3 model, HDU4 a one-row table with ``ASPCAPFLAG``; gaps hold flux 0.
* ``apVisit-dr17-9999-59000-101.fits`` as the real r13 samples: HDU1-8 (3, 4096) images, rows red, green,
  blue with decreasing wavelength (HDU4, float64), HDU9/10 coefficient images, HDU11 one-row table.
* ``allStar-dr17-synspec_rev1.fits``: 12 rows exercising every cut (see :data:`ALLSTAR_ROWS`).

Usage::

    python make_apogee.py OUTDIR      # writes the files and checks their md5

Tests call :func:`write` into a temporary folder; no generated file is committed.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20250117
NWAVE = 8575
CRVAL1, CDELT1 = 4.179, 6e-6
EXPECTED_MD5 = "f80b9762888041e295c0e8dddbd71c8c"
"""md5 of :func:`data_md5` for :func:`write`."""

STARS: dict[str, dict[str, Any]] = {
    "2M00000001+0000001": {"nvisits": 3, "snr": 150.0, "vhelio": 12.5},
    "2M00000002+0000002": {"nvisits": 1, "snr": 90.0, "vhelio": -40.25},
    "2M00000003+0000003": {"nvisits": 3, "snr": 60.0, "vhelio": 101.0},
}
BAD_BITS = (0, 1, 4, 5, 7, 14)
WARN_BITS = (9, 12, 13)
VISIT_ID = "2M00000004+0000004"
VISIT_FILE = "apVisit-dr17-9999-59000-101.fits"
VISIT_VREL, VISIT_BC = -44.5, 11.25
CHIP_RANGES = ((16473.0, 16955.0), (15857.0, 16435.0), (15143.0, 15810.0))
"""apVisit rows in file order: red, green, blue (Å)."""

G1, G2, G3 = 4_000_000_000_000_000_001, 4_000_000_000_000_000_002, 4_000_000_000_000_000_003
ALLSTAR_ROWS: tuple[tuple[Any, ...], ...] = (
    # APOGEE_ID, TELESCOPE, FIELD, SNR, STARFLAG, ASPCAPFLAG, EXTRATARG, GAIA id, TEFF, LOGG, MG_FE_FLAG, note
    ("2M00000001+0000001", "apo25m", "F1", 150.0, 0, 0, 0, G1, 4800.0, 2.5, 0, "good"),
    ("2M00000001+0000001", "apo25m", "F2", 40.0, 0, 0, 16, G1, 4810.0, 2.6, 0, "duplicate (EXTRATARG bit 4)"),
    ("2M00000002+0000002", "apo25m", "F1", 90.0, 0, 1 << 40, 0, G2, 5600.0, 4.3, 2, "PROBLEM_TARGET only; MG flag"),
    ("2M00000003+0000003", "lco25m", "F3", 60.0, 0, 1 << 23, 0, G3, 4200.0, 1.5, 0, "STAR_BAD"),
    ("2M00000005+0000005", "apo25m", "F1", 30.0, 0, 1 << 11, 0, 4_000_000_000_000_000_005, 5000.0, 3.0, 0, "low S/N"),
    ("2M00000006+0000006", "apo25m", "F1", 120.0, 0, 0, 0, 0, 5100.0, 3.1, 0, "no Gaia match (0)"),
    ("2M00000007+0000007", "apo25m", "F1", 110.0, 1, 0, 0, 4_000_000_000_000_000_007, 5200.0, 3.2, 0, "BAD_PIXELS"),
    ("2M00000008+0000008", "apo25m", "F1", 100.0, 0, 1 << 7, 0, 4_000_000_000_000_000_008, 5300.0, 3.3, 0, "NaN MG_FE"),
    ("2M00000009+0000009", "apo25m", "F1", 95.0, 0, 0, 0, 4_000_000_000_000_000_009, 8000.0, 4.0, 0, "hot"),
    ("2M00000010+0000010", "apo1m", "F1", 200.0, 1 << 2, 0, 8, 4_000_000_000_000_000_010, 4500.0, 2.0, 0, "APO1M"),
    (
        "2M00000011+0000011",
        "apo25m",
        "F1",
        80.0,
        0,
        1 << 23 | 1 << 40,
        0,
        4_000_000_000_000_000_011,
        4600.0,
        2.1,
        0,
        "bad",
    ),
    ("2M00000012+0000012", "apo25m", "F1", 85.0, 1 << 18, 0, 0, 4_000_000_000_000_000_012, 4700.0, 2.2, 0, "RV comb"),
)


def wavelength() -> np.ndarray:
    """apStar grid: 10**(4.179 + 6e-6 i) Å."""
    return 10.0 ** (CRVAL1 + CDELT1 * np.arange(NWAVE))


def gaps(wave: np.ndarray) -> np.ndarray:
    """True in the chip gaps and beyond the chip ends (no data)."""
    return (
        (wave < 15143.0)
        | ((wave > 15810.0) & (wave < 15857.0))
        | ((wave > 16435.0) & (wave < 16473.0))
        | (wave > 16954.0)
    )


def _spectrum(rng: np.random.Generator, wave: np.ndarray, level: float) -> np.ndarray:
    lines = rng.uniform(wave.min(), wave.max(), 40)
    depth = rng.uniform(0.05, 0.5, 40)
    profile = 1 - (depth[:, None] * np.exp(-0.5 * ((wave[None, :] - lines[:, None]) / 0.6) ** 2)).sum(axis=0)
    return level * np.clip(profile, 0.1, None)


def apstar_arrays(apogee_id: str) -> dict[str, np.ndarray]:
    """Flux, error, bitmask (nrow, 8575) of one star, as written (float32, float32, int16)."""
    star = STARS[apogee_id]
    rng = np.random.default_rng([SEED, int(apogee_id[2:10])])
    wave = wavelength()
    nrow = 2 + star["nvisits"] if star["nvisits"] > 1 else 2
    gap = gaps(wave)
    flux = np.zeros((nrow, NWAVE))
    sigma = np.zeros((nrow, NWAVE))
    bits = np.zeros((nrow, NWAVE), dtype=np.int64)
    base = _spectrum(rng, wave, 300.0)
    for row in range(nrow):
        if star["nvisits"] == 1 and row == 1:
            continue  # single-visit file: row 1 all zero
        noise = base / star["snr"]
        flux[row] = base + rng.normal(0, noise)
        sigma[row] = noise
        flux[row, gap] = np.nan if row < 2 else 0.0
        sigma[row, gap] = 1e10
        bits[row, gap] = 1  # BADPIX
        good = np.flatnonzero(~gap)
        for bit in (*BAD_BITS, *WARN_BITS):
            bits[row, rng.choice(good, 5, replace=False)] |= 1 << bit
    row0 = np.flatnonzero(~gap & (bits[0] == 0))
    sigma[0, row0[10]] = 2e5
    sigma[0, row0[20]] = 0.0
    flux[0, row0[30]] = 0.0
    return {
        "flux": flux.astype(np.float32),
        "sigma": sigma.astype(np.float32),
        "bitmask": bits.astype(np.int16),
    }


def _wcs(header: Any) -> None:
    header["CRVAL1"] = (CRVAL1, "Start log10(wavelength) in subsequent HDUs")
    header["CDELT1"] = (CDELT1, "Dispersion in log10(wave) in subsequent HDUs")
    header["CRPIX1"] = (1, "Pixel of starting wavelength in subsequent HDUs")
    header["CTYPE1"] = ("LOG-LINEAR", "Logarithmic wavelength scale in subsequent HDUs")


def write_apstar(folder: Path, apogee_id: str) -> Path:
    """One apStar file in the DR17 layout."""
    from astropy.io import fits

    star = STARS[apogee_id]
    arrays = apstar_arrays(apogee_id)
    primary = fits.PrimaryHDU()
    h = primary.header
    _wcs(h)
    h["DC-FLAG"] = (1, "Logarithmic wavelength scale in subsequent HDUs")
    h["NWAVE"] = (NWAVE, "Number of wavelengths in subsequent HDUs")
    h["FIELD"] = ("TEST", "APOGEE field name")
    h["OBJID"] = (apogee_id, "APOGEE object name")
    h["SNR"] = (star["snr"], "Median S/N per apStar pixel")
    h["NVISITS"] = (star["nvisits"], "Number of visit spectra combined flag")
    h["STARFLAG"] = (0, "bitwise OR of individual visit starflags")
    h["VHELIO"] = (star["vhelio"], "S/N weighted mean barycentric RV")
    for k in range(1, star["nvisits"] + 1):
        h[f"SFILE{k}"] = (f"apVisit-dr17-9999-5900{k}-001.fits", f"Visit #{k} spectrum file")
        h[f"VHELIO{k}"] = (star["vhelio"] + 0.1 * k, f"Barycentric velocity (km/s), visit {k}")
        h[f"SNRVIS{k}"] = (star["snr"] / 1.5 + k, f"Median S/N per apStar pixel,, visit {k}")
    for line in ("HDU0 : header", "HDU1 : flux", "HDU2 : flux uncertainty", "HDU3 : pixel bitmask"):
        h.add_history(line)
    hdus = [primary]
    units = (
        "Flux (10^-17 erg/s/cm^2/Ang)",
        "Err (10^-17 erg/s/cm^2/Ang)",
        "Pixel bitmask",
        "Sky",
        "Sky error",
        "Telluric",
        "Telluric error",
    )
    zeros = np.zeros_like(arrays["flux"])
    for data, unit in zip(
        (arrays["flux"], arrays["sigma"], arrays["bitmask"], zeros, zeros, zeros, zeros), units, strict=True
    ):
        hdu = fits.ImageHDU(data)
        _wcs(hdu.header)
        hdu.header["BUNIT"] = unit
        hdus.append(hdu)
    hdus.append(fits.ImageHDU())
    nvis = star["nvisits"]
    rv = fits.BinTableHDU.from_columns(
        [
            fits.Column("filename", "72A", array=[f"apVisit-{k}" for k in range(nvis)]),
            fits.Column("vhelio", "D", array=np.full(nvis, star["vhelio"])),
            fits.Column("vrel", "D", array=np.full(nvis, star["vhelio"] - 10.0)),
        ]
    )
    hdus += [rv, fits.BinTableHDU(rv.data[:1].copy())]
    path = folder / f"apStar-dr17-{apogee_id}.fits"
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def aspcap_arrays() -> dict[str, np.ndarray]:
    """Normalised flux and error of the aspcapStar file (float32); 0 in the gaps."""
    rng = np.random.default_rng([SEED, 7])
    wave = wavelength()
    flux = _spectrum(rng, wave, 1.0) + rng.normal(0, 0.01, NWAVE)
    sigma = np.full(NWAVE, 0.01)
    gap = gaps(wave)
    flux[gap] = 0.0
    sigma[gap] = 1e10
    flux[100 + np.flatnonzero(~gap[100:])[:3]] = np.nan  # three NaN pixels just after the blue edge
    return {"flux": flux.astype(np.float32), "sigma": sigma.astype(np.float32)}


def write_aspcapstar(folder: Path) -> Path:
    """One aspcapStar file from the DR17 data model."""
    from astropy.io import fits

    arrays = aspcap_arrays()
    primary = fits.PrimaryHDU()
    primary.header["OBJID"] = "2M00000001+0000001"
    primary.header["SNR"] = 150.0
    hdus = [primary]
    for data, unit in (
        (arrays["flux"], "normalized flux"),
        (arrays["sigma"], "normalized flux error"),
        (np.ones(NWAVE, np.float32), "model"),
    ):
        hdu = fits.ImageHDU(data)
        _wcs(hdu.header)
        hdu.header["BUNIT"] = unit
        hdus.append(hdu)
    hdus.append(
        fits.BinTableHDU.from_columns(
            [fits.Column("APOGEE_ID", "18A", array=["2M00000001+0000001"]), fits.Column("ASPCAPFLAG", "K", array=[0])]
        )
    )
    path = folder / "aspcapStar-dr17-2M00000001+0000001.fits"
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def apvisit_arrays() -> dict[str, np.ndarray]:
    """(3, 4096) flux, error, bitmask and wavelength as written: red, green, blue rows, decreasing."""
    rng = np.random.default_rng([SEED, 4])
    wave = np.stack([np.linspace(hi, lo, 4096) for lo, hi in CHIP_RANGES])
    flux = np.stack([_spectrum(rng, w, 200.0) for w in wave]) + rng.normal(0, 2.0, wave.shape)
    sigma = np.full(wave.shape, 2.0)
    bits = np.zeros(wave.shape, dtype=np.int64)
    for bit in (*BAD_BITS, *WARN_BITS):
        bits.ravel()[rng.choice(wave.size, 4, replace=False)] |= 1 << bit
    sigma[0, :5] = 1e10  # bad error at the red end
    return {
        "flux": flux.astype(np.float32),
        "sigma": sigma.astype(np.float32),
        "bitmask": bits.astype(np.int16),
        "wave": wave,
    }


def write_apvisit(folder: Path) -> Path:
    """One apVisit file in the r13/DR17 layout."""
    from astropy.io import fits

    arrays = apvisit_arrays()
    primary = fits.PrimaryHDU()
    h = primary.header
    for key, value in (
        ("PLATE", "9999"), ("TELESCOP", "apo25m"), ("MJD5", 59000), ("FIBERID", 101), ("OBJID", VISIT_ID),
        ("SNR", 75.0), ("SURVEY", "apogee"), ("BC", VISIT_BC), ("VTYPE", 2), ("VRAD", VISIT_VREL),
        ("VHELIO", VISIT_VREL + VISIT_BC),
    ):  # fmt: skip
        h[key] = value
    for line in ("AP1DVISIT: APOGEE Reduction Pipeline", "HDU1 - Flux", "HDU4 - Wavelength (Ang)"):
        h.add_history(line)
    hdus = [primary]
    units = (
        "Flux (10^-17 erg/s/cm^2/Ang)",
        "Flux Error (10^-17 erg/s/cm^2/Ang)",
        "Flag Mask (bitwise)",
        "Wavelength (Ang)",
    )
    zeros = np.zeros_like(arrays["flux"])
    for data, unit in zip(
        (arrays["flux"], arrays["sigma"], arrays["bitmask"], arrays["wave"], zeros, zeros, zeros, zeros),
        (*units, "Sky", "Sky Error", "Telluric", "Telluric Error"),
        strict=True,
    ):
        hdu = fits.ImageHDU(data)
        hdu.header["CTYPE1"], hdu.header["CTYPE2"], hdu.header["BUNIT"] = "Pixel", "Chip", unit
        hdus.append(hdu)
    hdus += [fits.ImageHDU(np.zeros((3, 14))), fits.ImageHDU(np.zeros((3, 26)))]
    hdus.append(
        fits.BinTableHDU.from_columns(
            [
                fits.Column("APOGEE_ID", "18A", array=[VISIT_ID]),
                fits.Column("TELESCOPE", "6A", array=["apo25m"]),
                fits.Column("SNR", "E", array=[75.0]),
                fits.Column("BC", "E", array=[VISIT_BC]),
                fits.Column("VREL", "E", array=[VISIT_VREL]),
                fits.Column("VHELIO", "E", array=[VISIT_VREL + VISIT_BC]),
            ]
        )
    )
    path = folder / VISIT_FILE
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def write_allstar(folder: Path) -> Path:
    """The allStar-layout table of :data:`ALLSTAR_ROWS`, with label, error and flag columns."""
    from astropy.io import fits

    rng = np.random.default_rng([SEED, 99])
    n = len(ALLSTAR_ROWS)
    col = list(zip(*ALLSTAR_ROWS, strict=True))
    mg_fe = rng.uniform(-0.1, 0.3, n)
    mg_fe[7] = np.nan
    columns = [
        fits.Column("APOGEE_ID", "30A", array=list(col[0])),
        fits.Column("TELESCOPE", "8A", array=list(col[1])),
        fits.Column("FIELD", "20A", array=list(col[2])),
        fits.Column("SNR", "E", array=np.array(col[3])),
        fits.Column("STARFLAG", "K", array=np.array(col[4], dtype=np.int64)),
        fits.Column("ASPCAPFLAG", "K", array=np.array(col[5], dtype=np.int64)),
        fits.Column("EXTRATARG", "J", array=np.array(col[6], dtype=np.int32)),
        fits.Column("GAIAEDR3_SOURCE_ID", "K", array=np.array(col[7], dtype=np.int64)),
        fits.Column("TEFF", "E", array=np.array(col[8])),
        fits.Column("TEFF_ERR", "E", array=np.full(n, 50.0)),
        fits.Column("LOGG", "E", array=np.array(col[9])),
        fits.Column("LOGG_ERR", "E", array=np.full(n, 0.05)),
        fits.Column("M_H", "E", array=rng.uniform(-1, 0.3, n)),
        fits.Column("M_H_ERR", "E", array=np.full(n, 0.01)),
        fits.Column("ALPHA_M", "E", array=rng.uniform(-0.05, 0.3, n)),
        fits.Column("ALPHA_M_ERR", "E", array=np.full(n, 0.02)),
        fits.Column("FE_H", "E", array=rng.uniform(-1, 0.3, n)),
        fits.Column("FE_H_ERR", "E", array=np.full(n, 0.01)),
        fits.Column("FE_H_FLAG", "J", array=np.zeros(n, dtype=np.int32)),
        fits.Column("MG_FE", "E", array=mg_fe),
        fits.Column("MG_FE_ERR", "E", array=np.full(n, 0.03)),
        fits.Column("MG_FE_FLAG", "J", array=np.array(col[10], dtype=np.int32)),
    ]
    path = folder / "allStar-dr17-synspec_rev1.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(path, overwrite=True)
    return path


def write(folder: str | Path) -> dict[str, Path]:
    """Write every file into ``folder``; returns name → path (``apstar:<id>``, ``aspcapstar``, ``apvisit``, ``allstar``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {f"apstar:{apogee_id}": write_apstar(folder, apogee_id) for apogee_id in STARS}
    paths["aspcapstar"] = write_aspcapstar(folder)
    paths["apvisit"] = write_apvisit(folder)
    paths["allstar"] = write_allstar(folder)
    return paths


def truth() -> dict[str, Any]:
    """What a reader must return: apStar rows, the aspcapStar and apVisit spectra, in float64."""
    wave = wavelength()
    bad_value = sum(1 << b for b in (0, 1, 2, 3, 4, 5, 6, 7, 14))
    out: dict[str, Any] = {"wavelength": wave, "apstar": {}}
    for apogee_id in STARS:
        a = apstar_arrays(apogee_id)
        flux, sigma = a["flux"].astype(np.float64), a["sigma"].astype(np.float64)
        with np.errstate(invalid="ignore"):
            mask = ~np.isfinite(flux) | (flux == 0) | ~(sigma > 0) | (sigma > 1e5) | ((a["bitmask"] & bad_value) != 0)
        out["apstar"][apogee_id] = {"flux": flux, "sigma": sigma, "bitmask": a["bitmask"], "mask": mask}
    a = aspcap_arrays()
    flux, sigma = a["flux"].astype(np.float64), a["sigma"].astype(np.float64)
    out["aspcapstar"] = {"flux": flux, "sigma": sigma, "mask": ~np.isfinite(flux) | (flux == 0) | (sigma > 1e5)}
    v = apvisit_arrays()
    order = [2, 1, 0]  # blue, green, red
    cat = {k: np.concatenate([v[k][i, ::-1] for i in order]) for k in ("flux", "sigma", "bitmask", "wave")}
    flux, sigma = cat["flux"].astype(np.float64), cat["sigma"].astype(np.float64)
    cat["mask"] = (flux == 0) | (sigma > 1e5) | ((cat["bitmask"] & bad_value) != 0)
    out["apvisit"] = cat
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
