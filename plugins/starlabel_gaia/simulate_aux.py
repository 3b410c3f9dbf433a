"""Simulated ``gaia_source``-style columns for the Gaia auxiliary providers (``starlabel simulate``).

Photometry (:func:`photometry_columns`)
    G, BP and RP from the population's Johnson V and Cousins I magnitudes with the Gaia (E)DR3 relations
    of Riello et al. 2021 (A&A 649, A3, Table C.2; Gaia DR3 documentation §5.5.1, Table 5.9), with
    x = V − I_C clipped to their range −0.4 … 5:

    - G − V = −0.01597 − 0.02809 x − 0.2483 x² + 0.03656 x³ − 0.002939 x⁴
    - G_RP − V = 0.01868 − 0.9028 x − 0.005321 x² − 0.004186 x³
    - G_BP − G_RP = −0.03298 + 1.259 x − 0.1279 x² + 0.01631 x³

    (residual scatter 0.03–0.05 mag in the paper; here they are exact). G − RP and BP − RP grow
    monotonically with x, hence fall with Teff as V − I does; the Sun (V = 4.81, V − I = 0.70 at 10 pc)
    gets G = 4.67, BP − RP = 0.79. Noise: the DR3 median uncertainties of Gaia Collaboration, Brown et al.
    2021 (A&A 649, A1): G 0.3, 1, 6 mmag, BP 0.9, 12, 108 mmag, RP 0.6, 6, 52 mmag at G ≤ 13, 17, 20,
    interpolated in log σ and extrapolated beyond G = 20. Fluxes (e⁻ s⁻¹) use the EDR3 Vega zero
    points 25.6874 (G), 25.3385 (BP), 24.7479 (RP) (Riello et al. 2021, Table 3); ``flux_over_error =
    1.0857 / σ_mag``. No extinction, no missing BP/RP.

Astrometry (:func:`astrometry_columns`)
    Observed parallax = true parallax + Z + ε, with Z the Lindegren et al. 2021 (A&A 649, A4) zero point
    of :mod:`starlabel_gaia.parallax_zeropoint` for the star's written G, colour and ecliptic latitude,
    so that ``gaia_parallax`` with ``zero_point: lindegren2021`` gives back the true parallax + ε. ε is
    Gaussian with the DR3 parallax uncertainty (Lindegren et al. 2021, A&A 649, A2: 0.02 mas at G ≤ 13,
    0.025 at 15, 0.07 at 17, 0.5 at 20, 1.3 mas at 21; log-interpolated). Solutions: 5-parameter
    (``astrometric_params_solved = 31``) for G < 19 with ``nu_eff_used_in_astrometry = 1.76 − (1.61/π)
    atan(0.531 (BP − RP))`` clamped to 1.24 … 1.72 µm⁻¹ (Lindegren et al. 2021, A2, Eq. 3), else
    6-parameter (95) with ``pseudocolour`` = the same value (without its astrometric noise). Ecliptic
    latitude: ICRS rotated by the J2000 obliquity 84381.406″ (within 0.03″ of astropy's
    ``BarycentricMeanEcliptic``; frame bias and precession ignored).

XP coefficients (:func:`xp_coefficients`) — **XP-like**, not Gaia's basis
    The photon rate of the star's Planck continuum (Teff, radius, distance; 0.7 m² collecting area), over
    330–680 nm (BP) and 640–1050 nm (RP), each range mapped to u ∈ [−1, 1], projected on the 55
    orthonormal Legendre functions √((2k+1)/2) P_k(u) (128-point Gauss–Legendre quadrature). The first
    coefficient is √½ times the band's photon rate (e⁻ s⁻¹), positive, and the others a smooth,
    deterministic function of the SED; Gaia's Hermite basis, dispersion and instrument response are not
    modelled, and there is no noise.

Noise is drawn from a hash of each star's ``source_id`` (and a per-quantity salt), so a star gets the
same values whatever the batch it is simulated in; another population seed gives other ids, hence
other noise.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from starlabel.containers import Population
from starlabel.errors import SimulationError
from starlabel_gaia.parallax_zeropoint import FIVE_PARAMETER, SIX_PARAMETER, zero_point

ZERO_POINTS: dict[str, float] = {"g": 25.6874, "bp": 25.3385, "rp": 24.7479}
"""Gaia EDR3 Vega zero points (mag), Riello et al. 2021, Table 3."""
V_MINUS_I_RANGE = (-0.4, 5.0)
"""Where the Riello et al. 2021 V − I_C relations are valid."""
_G_MINUS_V = (-0.01597, -0.02809, -0.2483, 0.03656, -0.002939)
_RP_MINUS_V = (0.01868, -0.9028, -0.005321, -0.004186)
_BP_MINUS_RP = (-0.03298, 1.259, -0.1279, 0.01631)
_ERROR_NODES_G = np.array([13.0, 17.0, 20.0])
_MAG_ERRORS = {  # mag, at _ERROR_NODES_G (Gaia Collaboration, Brown et al. 2021, EDR3 summary)
    "g": np.array([0.0003, 0.001, 0.006]),
    "bp": np.array([0.0009, 0.012, 0.108]),
    "rp": np.array([0.0006, 0.006, 0.052]),
}
_PARALLAX_NODES_G = np.array([13.0, 15.0, 17.0, 20.0, 21.0])
_PARALLAX_ERRORS = np.array([0.02, 0.025, 0.07, 0.5, 1.3])  # mas (Lindegren et al. 2021, A2)
FIVE_PARAMETER_G_LIMIT = 19.0
"""Fainter stars get 6-parameter solutions (``pseudocolour``), brighter ones 5-parameter."""
OBLIQUITY_DEG = 84381.406 / 3600.0
"""J2000 obliquity of the ecliptic (IAU 2006)."""

BP_RANGE_NM = (330.0, 680.0)
RP_RANGE_NM = (640.0, 1050.0)
N_COEFFICIENTS = 55
COLLECTING_AREA_M2 = 0.7
"""Gaia's telescope pupil, 1.45 m × 0.5 m."""
_QUADRATURE = 128
_SALTS = {"g": 1, "bp": 2, "rp": 3, "parallax": 4}

# physical constants (SI), CODATA 2018 / IAU 2015
_H = 6.62607015e-34
_C = 2.99792458e8
_K = 1.380649e-23
_R_SUN = 6.957e8
_PARSEC = 3.0856775814913673e16


# ----------------------------------------------------------------------------------------------- noise
def unit_normals(source_id: np.ndarray, salt: int) -> np.ndarray:
    """One standard-normal number per star, a deterministic function of its id and ``salt``.

    splitmix64 of ``source_id`` (two salted streams) gives two uniforms, Box–Muller a normal.
    """
    ids = np.asarray(source_id).astype(np.int64).view(np.uint64)
    uniforms = []
    for stream in (2 * salt, 2 * salt + 1):
        z = ids + np.uint64((0x9E3779B97F4A7C15 * (stream + 1)) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        uniforms.append(((z >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53)
    return np.sqrt(-2.0 * np.log(uniforms[0])) * np.cos(2.0 * np.pi * uniforms[1])


# ------------------------------------------------------------------------------------------ photometry
def _band(population: Population, name: str, provider: str) -> np.ndarray:
    """``population.magnitudes[name]`` (case-insensitive)."""
    for key, values in population.magnitudes.items():
        if key.lower() == name.lower():
            return np.asarray(values, dtype=np.float64)
    have = ", ".join(sorted(population.magnitudes)) or "none"
    raise SimulationError(
        f"{provider}: the population has no {name} magnitude (it has: {have}); the Gaia G, BP and RP are "
        "derived from V and V - I_C (Riello et al. 2021), so the population needs magnitudes 'V' and 'I'"
    )


def true_magnitudes(population: Population, provider: str = "gaia_photometry") -> dict[str, np.ndarray]:
    """Noise-free G, BP, RP (keys ``g``, ``bp``, ``rp``) from the population's V and I (see the module text).

    Raises
    ------
    SimulationError
        The population has no V or no I magnitude.
    """
    v = _band(population, "V", provider)
    x = np.clip(v - _band(population, "I", provider), *V_MINUS_I_RANGE)
    rp = v + np.polynomial.polynomial.polyval(x, _RP_MINUS_V)
    return {
        "g": v + np.polynomial.polynomial.polyval(x, _G_MINUS_V),
        "bp": rp + np.polynomial.polynomial.polyval(x, _BP_MINUS_RP),
        "rp": rp,
    }


def magnitude_errors(g: np.ndarray) -> dict[str, np.ndarray]:
    """DR3 median uncertainties (mag) of G, BP and RP at G magnitude ``g``."""
    out = {}
    for band, errors in _MAG_ERRORS.items():
        out[band] = _log_interp(g, _ERROR_NODES_G, errors)
    return out


def _log_interp(x: np.ndarray, nodes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Interpolate log(values) in x; constant below the first node, linear in log beyond the last."""
    logs = np.log(values)
    slope = (logs[-1] - logs[-2]) / (nodes[-1] - nodes[-2])
    inside = np.interp(x, nodes, logs)
    beyond = logs[-1] + slope * (np.asarray(x) - nodes[-1])
    return np.exp(np.where(np.asarray(x) > nodes[-1], beyond, inside))


def photometry_columns(population: Population, provider: str = "gaia_photometry") -> dict[str, np.ndarray]:
    """``phot_{g,bp,rp}_mean_mag`` (float32) and ``_mean_flux`` (float64, e⁻ s⁻¹), ``_mean_flux_error``,
    ``_mean_flux_over_error`` (float32), with noise; the same values for a star whichever provider asks.

    Raises
    ------
    SimulationError
        The population has no V or no I magnitude.
    """
    true = true_magnitudes(population, provider)
    errors = magnitude_errors(true["g"])
    out: dict[str, np.ndarray] = {}
    for band in ("g", "bp", "rp"):
        observed = true[band] + errors[band] * unit_normals(population.source_id, _SALTS[band])
        flux = 10.0 ** (-0.4 * (observed - ZERO_POINTS[band]))
        over_error = 2.5 / np.log(10.0) / errors[band]
        out[f"phot_{band}_mean_mag"] = observed.astype(np.float32)
        out[f"phot_{band}_mean_flux"] = flux
        out[f"phot_{band}_mean_flux_error"] = (flux / over_error).astype(np.float32)
        out[f"phot_{band}_mean_flux_over_error"] = over_error.astype(np.float32)
    return out


# ------------------------------------------------------------------------------------------ astrometry
def parallax_error(g: np.ndarray) -> np.ndarray:
    """DR3 parallax uncertainty (mas) at G magnitude ``g``."""
    return _log_interp(g, _PARALLAX_NODES_G, _PARALLAX_ERRORS)


def nu_eff(bp_rp: np.ndarray) -> np.ndarray:
    """``nu_eff_used_in_astrometry`` (µm⁻¹) from BP − RP (Lindegren et al. 2021, A2, Eq. 3), clamped."""
    return np.clip(1.76 - (1.61 / np.pi) * np.arctan(0.531 * bp_rp), 1.24, 1.72)


def ecliptic_latitude(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Ecliptic latitude (deg) of ICRS positions, rotating by the J2000 obliquity."""
    ra, dec, eps = np.deg2rad(ra_deg), np.deg2rad(dec_deg), np.deg2rad(OBLIQUITY_DEG)
    sin_beta = np.sin(dec) * np.cos(eps) - np.cos(dec) * np.sin(eps) * np.sin(ra)
    return np.rad2deg(np.arcsin(np.clip(sin_beta, -1.0, 1.0)))


def astrometry_columns(population: Population, photometry: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``parallax`` (float64, mas, observed), ``parallax_error``, ``parallax_over_error`` (float32),
    ``astrometric_params_solved`` (int16), ``nu_eff_used_in_astrometry``, ``pseudocolour`` (float32, NaN
    where the other solution type applies), ``ecl_lat`` (float64), ``ra``, ``dec`` (float64), and
    ``zero_point`` (the Z injected, mas; for tests and truth tables, not a ``gaia_source`` column).

    Parameters
    ----------
    population : Population
        True parallaxes and positions.
    photometry : mapping
        :func:`photometry_columns` of the same population (G and BP − RP as written).
    """
    g = np.asarray(photometry["phot_g_mean_mag"], dtype=np.float64)  # float32 values, as load() reads them
    colour = nu_eff(
        np.asarray(photometry["phot_bp_mean_mag"], np.float64) - np.asarray(photometry["phot_rp_mean_mag"], np.float64)
    ).astype(np.float32)
    five = g < FIVE_PARAMETER_G_LIMIT
    # int16, not gaia_source's int8: astropy 8 writes int8 columns to FITS as logical (TFORM L)
    solved = np.where(five, FIVE_PARAMETER, SIX_PARAMETER).astype(np.int16)
    nu = np.where(five, colour, np.float32(np.nan)).astype(np.float32)
    pseudo = np.where(five, np.float32(np.nan), colour).astype(np.float32)
    beta = ecliptic_latitude(population.ra, population.dec)
    z, _ = zero_point(g, nu.astype(np.float64), pseudo.astype(np.float64), beta, solved.astype(np.int64))
    sigma = parallax_error(g).astype(np.float32)
    observed = (
        np.asarray(population.parallax, dtype=np.float64)
        + z
        + sigma.astype(np.float64) * unit_normals(population.source_id, _SALTS["parallax"])
    )
    return {
        "ra": np.asarray(population.ra, dtype=np.float64),
        "dec": np.asarray(population.dec, dtype=np.float64),
        "parallax": observed,
        "parallax_error": sigma,
        "parallax_over_error": (observed / sigma).astype(np.float32),
        "astrometric_params_solved": solved,
        "nu_eff_used_in_astrometry": nu,
        "pseudocolour": pseudo,
        "ecl_lat": beta,
        "zero_point": z,
    }


# ------------------------------------------------------------------------------------- XP coefficients
def photon_rate(population: Population, wavelength_nm: np.ndarray) -> np.ndarray:
    """(N, P) photon rate density (photons s⁻¹ nm⁻¹) of each star's Planck continuum through 0.7 m².

    F_λ at Earth = π B_λ(Teff) (R / d)², photons = F_λ λ / (h c).
    """
    teff = np.asarray(population.labels["teff"], dtype=np.float64)[:, None]
    scale = (np.asarray(population.radius, np.float64) * _R_SUN / (np.asarray(population.distance) * _PARSEC)) ** 2
    lam = np.asarray(wavelength_nm, dtype=np.float64)[None, :] * 1e-9
    with np.errstate(over="ignore"):
        planck = 2.0 * _H * _C**2 / lam**5 / np.expm1(_H * _C / (lam * _K * teff))  # W m⁻² m⁻¹ sr⁻¹
    flux = np.pi * planck * scale[:, None] * 1e-9  # W m⁻² nm⁻¹
    return flux * lam / (_H * _C) * COLLECTING_AREA_M2


def xp_coefficients(population: Population) -> tuple[np.ndarray, np.ndarray]:
    """XP-like (N, 55) BP and RP coefficients (see the module text)."""
    nodes, weights = np.polynomial.legendre.leggauss(_QUADRATURE)
    norms = np.sqrt((2 * np.arange(N_COEFFICIENTS) + 1) / 2.0)
    basis = np.polynomial.legendre.legvander(nodes, N_COEFFICIENTS - 1) * norms[None, :]  # (Q, 55)
    out = []
    for start, stop in (BP_RANGE_NM, RP_RANGE_NM):
        half_width = (stop - start) / 2.0
        wavelength = start + (nodes + 1.0) * half_width
        density = photon_rate(population, wavelength) * half_width  # per unit u
        out.append((density * weights[None, :]) @ basis)
    return out[0], out[1]
