"""Write a seeded ``gaia_source``-like FITS table and an APOGEE ``allStar``-like label table for RVS sources.

- :func:`write_gaia_source`: ``gaia_source_rvs.fits``, HDU1 with ``source_id`` (K), G/BP/RP magnitudes and
  ``phot_g_mean_flux``, ``parallax``, ``parallax_error``, ``parallax_over_error``, ``ecl_lat``,
  ``astrometric_params_solved`` (B), ``nu_eff_used_in_astrometry``, ``pseudocolour`` (NaN where the solution
  type has none, as in the archive), and ``bp_coefficients``/``rp_coefficients`` as fixed ``55D`` arrays
  (NaN arrays where the band is missing). The first :data:`N_GAIA` ids of ``make_rvs.truth()`` plus two ids
  without spectra; rows :data:`SPECIAL` carry the edge cases named there.
- :func:`write_allstar`: ``allStar-dr17-synspec_rev1.fits``, HDU1 with ``APOGEE_ID``, ``GAIAEDR3_SOURCE_ID``,
  ``TEFF``, ``LOGG``, ``M_H``, ``ALPHA_M`` (+ ``_ERR``), ``SNR``, ``ASPCAPFLAG``, ``STARFLAG``, ``EXTRATARG``
  for the first :data:`N_LABELS` ids (row :data:`LOW_SNR_ROW` below the S/N cut of 70).

Both take the source ids (int64) as an argument so that the caller decides which stars exist.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 20240612
N_GAIA = 40
N_LABELS = 30
LOW_SNR_ROW = 5
GAIA_NAME = "gaia_source_rvs.fits"
ALLSTAR_NAME = "allStar-dr17-synspec_rev1.fits"
SPECIAL = {
    1: "6-parameter solution (pseudocolour 1.50)",
    2: "negative parallax (-0.3 mas): parallax kept, absolute magnitudes missing",
    3: "null parallax: parallax and absolute magnitudes missing",
    4: "2-parameter solution: no parallax, no zero point",
    5: "G = 21.5, outside the zero point's range: parallax missing",
    6: "BP missing: bp, bp_rp, abs_bp missing; no BP coefficients (all 110 missing after by_first_coefficient)",
    7: "RP coefficients missing: rp_0..rp_54 missing",
    8: "nu_eff_used_in_astrometry = 2.0, outside 1.1-1.9: parallax missing",
}


def gaia_columns(ids: np.ndarray, seed: int = SEED) -> dict[str, np.ndarray]:
    """Column arrays of the gaia_source-like table for ``ids`` (rows in the order given)."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    g = rng.uniform(9.0, 14.0, n).astype(np.float32)
    bp = (g + rng.uniform(0.3, 0.8, n)).astype(np.float32)
    rp = (g - rng.uniform(0.4, 1.0, n)).astype(np.float32)
    parallax = rng.uniform(0.5, 5.0, n)
    error = rng.uniform(0.01, 0.05, n).astype(np.float32)
    solved = np.full(n, 31, dtype=np.uint8)
    nu = rng.uniform(1.4, 1.6, n).astype(np.float32)
    pc = np.full(n, np.nan, dtype=np.float32)
    bp_coef = rng.uniform(100.0, 3000.0, (n, 55))
    rp_coef = rng.uniform(100.0, 3000.0, (n, 55))
    solved[1], pc[1], nu[1] = 95, 1.5, np.nan
    parallax[2] = -0.3
    parallax[3] = np.nan
    solved[4], parallax[4], error[4], nu[4] = 3, np.nan, np.nan, np.nan
    g[5] = 21.5
    bp[6] = np.nan
    bp_coef[6] = np.nan
    rp_coef[7] = np.nan
    nu[8] = 2.0
    over = (parallax / error).astype(np.float32)
    return {
        "source_id": np.asarray(ids, dtype=np.int64),
        "phot_g_mean_mag": g,
        "phot_bp_mean_mag": bp,
        "phot_rp_mean_mag": rp,
        "phot_g_mean_flux": 10 ** (-0.4 * (g.astype(np.float64) - 25.6874)),
        "parallax": parallax,
        "parallax_error": error,
        "parallax_over_error": over,
        "ecl_lat": rng.uniform(-80.0, 80.0, n),
        "astrometric_params_solved": solved,
        "nu_eff_used_in_astrometry": nu,
        "pseudocolour": pc,
        "bp_coefficients": bp_coef,
        "rp_coefficients": rp_coef,
    }


def write_gaia_source(directory: str | Path, ids: np.ndarray, seed: int = SEED) -> Path:
    """Write :data:`GAIA_NAME` into ``directory`` for ``ids``; return its path."""
    from astropy.table import Table

    path = Path(directory) / GAIA_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    Table(gaia_columns(ids, seed)).write(path, overwrite=True)
    return path


def allstar_columns(ids: np.ndarray, seed: int = SEED) -> dict[str, np.ndarray]:
    """Column arrays of the allStar-like table for ``ids``."""
    rng = np.random.default_rng(seed + 1)
    n = len(ids)
    snr = rng.uniform(80.0, 300.0, n).astype(np.float32)
    snr[LOW_SNR_ROW] = 50.0
    columns: dict[str, np.ndarray] = {
        "APOGEE_ID": np.array([f"2M{i:08d}+0000000" for i in range(n)]),
        "GAIAEDR3_SOURCE_ID": np.asarray(ids, dtype=np.int64),
        "SNR": snr,
        "ASPCAPFLAG": np.zeros(n, dtype=np.int64),
        "STARFLAG": np.zeros(n, dtype=np.int64),
        "EXTRATARG": np.zeros(n, dtype=np.int32),
    }
    for name, low, high, err in (
        ("TEFF", 4000, 6500, 50),
        ("LOGG", 1.0, 4.8, 0.05),
        ("M_H", -1.5, 0.4, 0.02),
        ("ALPHA_M", -0.1, 0.4, 0.02),
    ):
        columns[name] = rng.uniform(low, high, n).astype(np.float32)
        columns[f"{name}_ERR"] = np.full(n, err, dtype=np.float32)
    return columns


def write_allstar(directory: str | Path, ids: np.ndarray, seed: int = SEED) -> Path:
    """Write :data:`ALLSTAR_NAME` into ``directory`` for ``ids``; return its path."""
    from astropy.table import Table

    path = Path(directory) / ALLSTAR_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    Table(allstar_columns(ids, seed)).write(path, overwrite=True)
    return path
