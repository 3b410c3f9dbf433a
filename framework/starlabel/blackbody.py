"""Blackbody fluxes and synthetic Vega magnitudes in generic broad bands, for mock populations.

Model
-----
A star of effective temperature T, radius R at distance d is a blackbody: its flux density at the
observer is ``F_λ = π B_λ(T) (R/d)²`` (:func:`planck_flux`), in W m⁻² nm⁻¹. A magnitude in band X is
``m_X = −2.5 log10(<F>_X / F0_X)``, where ``<F>_X`` is the photon-weighted mean of ``F_λ`` through the
band's response (``∫ F_λ S_X λ dλ / ∫ S_X λ dλ``) and ``F0_X`` the same mean for a star of magnitude 0.

Bands
-----
Each band is a Gaussian response centred on the approximate effective wavelength, with the approximate
FWHM, of the standard Johnson–Cousins UBVRI and near-infrared JHK bands (as tabulated e.g. by Bessell
2005, ARA&A 43, 293); see :data:`BANDS`. They stand in for the real filter curves, to a few nm.

Zero points
-----------
Magnitude 0 in each band is the flux density of Bessell, Castelli & Plez (1998, A&A 333, 231, table
A2), derived from a model atmosphere of Vega with V(Vega) = 0.03 (:data:`ZERO_POINTS`); the band mean
of a blackbody is compared with it. Blackbody colours against these zero points are close to real
stars' in B−V and V−K (the Sun, 5772 K and 1 R☉ at 10 pc: V = 4.87, B−V = 0.64, V−K = 1.52; observed
4.81, 0.65, 1.51) but too blue in U−B (a blackbody lacks the ultraviolet line blanketing), and
:func:`vega_blackbody_zero_points` gives the cruder alternative of a 9600 K blackbody Vega. Magnitudes
carry no extinction.

Speed
-----
Band means are tabulated once on a logarithmic temperature grid (:data:`TABLE_TEFF`) and interpolated
linearly in (log T, log <B>), which is accurate to better than 1e-4 mag.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

H = 6.62607015e-34
"""Planck constant, J s."""
C = 299792458.0
"""Speed of light, m/s."""
K_B = 1.380649e-23
"""Boltzmann constant, J/K."""
PARSEC_M = 3.0856775814913673e16
"""Parsec in metres."""
R_SUN_M = 6.957e8
"""Nominal solar radius (IAU 2015), metres."""

VEGA_TEFF = 9600.0
"""Temperature of the blackbody of :func:`vega_blackbody_zero_points` (K)."""
VEGA_MAG = 0.03
"""Vega's magnitude in every band."""

ZERO_POINTS: dict[str, float] = {
    "U": 4.175e-11,
    "B": 6.32e-11,
    "V": 3.631e-11,
    "R": 2.177e-11,
    "I": 1.126e-11,
    "J": 3.147e-12,
    "H": 1.138e-12,
    "K": 3.961e-13,
}
"""Flux density of magnitude 0 per band, W m⁻² nm⁻¹ (Bessell, Castelli & Plez 1998, table A2)."""

TABLE_TEFF = np.geomspace(1000.0, 100000.0, 4001)
"""Temperatures (K) at which band means are tabulated; outside, the end values are used."""


@dataclass(frozen=True)
class Band:
    """A Gaussian approximation of a photometric band: effective wavelength and FWHM, in nm."""

    name: str
    centre_nm: float
    fwhm_nm: float

    def wavelength(self, points: int = 241) -> np.ndarray:
        """Sample wavelengths (nm) over ±4 standard deviations of the response."""
        sigma = self.fwhm_nm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        return np.linspace(self.centre_nm - 4 * sigma, self.centre_nm + 4 * sigma, points)

    def response(self, wavelength_nm: np.ndarray) -> np.ndarray:
        """Relative response at ``wavelength_nm`` (peak 1)."""
        sigma = self.fwhm_nm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        return np.exp(-0.5 * ((wavelength_nm - self.centre_nm) / sigma) ** 2)


BANDS: tuple[Band, ...] = (
    Band("U", 366.0, 65.0),
    Band("B", 438.0, 89.0),
    Band("V", 545.0, 84.0),
    Band("R", 641.0, 158.0),
    Band("I", 798.0, 154.0),
    Band("J", 1220.0, 213.0),
    Band("H", 1630.0, 307.0),
    Band("K", 2190.0, 390.0),
)
"""Johnson–Cousins UBVRI and near-infrared JHK as Gaussians (approximate λ_eff and FWHM, nm)."""

BAND_NAMES: tuple[str, ...] = tuple(band.name for band in BANDS)


def planck(wavelength_nm: np.ndarray, teff: np.ndarray) -> np.ndarray:
    """Blackbody specific intensity B_λ(T) in W m⁻² nm⁻¹ sr⁻¹ (broadcasting the two arguments)."""
    lam = np.asarray(wavelength_nm, dtype=np.float64) * 1e-9
    temp = np.asarray(teff, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        x = H * C / (lam * K_B * temp)
        out = 2.0 * H * C**2 / lam**5 / np.expm1(x) * 1e-9
    return np.where(np.isfinite(out), out, 0.0)


def dilution(radius_rsun: np.ndarray, distance_pc: np.ndarray) -> np.ndarray:
    """``π (R/d)²``: the factor from B_λ to the flux density at the observer."""
    ratio = np.asarray(radius_rsun, np.float64) * R_SUN_M / (np.asarray(distance_pc, np.float64) * PARSEC_M)
    return np.pi * ratio**2


def planck_flux(
    wavelength_nm: np.ndarray, teff: np.ndarray, radius_rsun: np.ndarray, distance_pc: np.ndarray
) -> np.ndarray:
    """Flux density ``π B_λ(T) (R/d)²`` at the observer, W m⁻² nm⁻¹.

    Parameters
    ----------
    wavelength_nm : numpy.ndarray
        (P,) wavelengths shared by every star, or (N, P) one row per star.
    teff, radius_rsun, distance_pc : numpy.ndarray
        (N,) temperature (K), radius (R☉) and distance (pc).

    Returns
    -------
    numpy.ndarray
        (N, P) flux densities.
    """
    wave = np.asarray(wavelength_nm, dtype=np.float64)
    teff = np.asarray(teff, dtype=np.float64)[:, None]
    scale = dilution(radius_rsun, distance_pc)[:, None]
    return planck(wave if wave.ndim == 2 else wave[None, :], teff) * scale


def band_mean_planck(band: Band, teff: np.ndarray) -> np.ndarray:
    """Photon-weighted mean of B_λ(T) through ``band`` (W m⁻² nm⁻¹ sr⁻¹), computed directly."""
    wave = band.wavelength()
    weight = band.response(wave) * wave
    intensity = planck(wave[None, :], np.asarray(teff, dtype=np.float64).reshape(-1, 1))
    return np.trapezoid(intensity * weight, wave, axis=1) / np.trapezoid(weight, wave)


@lru_cache(maxsize=1)
def _tables() -> dict[str, np.ndarray]:
    """log10 of the band means of B_λ on :data:`TABLE_TEFF`, per band."""
    return {band.name: np.log10(np.maximum(band_mean_planck(band, TABLE_TEFF), 1e-300)) for band in BANDS}


def vega_blackbody_zero_points() -> dict[str, float]:
    """Zero points from a 9600 K blackbody Vega scaled to V = 0.03 against :data:`ZERO_POINTS` ``["V"]``."""
    means = {band.name: float(band_mean_planck(band, np.array([VEGA_TEFF]))[0]) for band in BANDS}
    scale = ZERO_POINTS["V"] * 10 ** (-0.4 * VEGA_MAG) / means["V"]
    return {name: value * scale * 10 ** (0.4 * VEGA_MAG) for name, value in means.items()}


def magnitudes(teff: np.ndarray, radius_rsun: np.ndarray, distance_pc: np.ndarray) -> dict[str, np.ndarray]:
    """Apparent Vega magnitudes of blackbody stars in every band of :data:`BANDS` (no extinction).

    Parameters
    ----------
    teff, radius_rsun, distance_pc : numpy.ndarray
        (N,) temperature (K), radius (R☉) and distance (pc).

    Returns
    -------
    dict of str to numpy.ndarray
        Band name → (N,) magnitudes.
    """
    log_t = np.log10(np.asarray(teff, dtype=np.float64))
    log_scale = np.log10(dilution(radius_rsun, distance_pc))
    grid = np.log10(TABLE_TEFF)
    tables = _tables()
    zero = ZERO_POINTS
    return {
        name: -2.5 * (np.interp(log_t, grid, tables[name]) + log_scale - np.log10(zero[name])) for name in BAND_NAMES
    }


__all__ = [
    "BANDS",
    "ZERO_POINTS",
    "BAND_NAMES",
    "Band",
    "band_mean_planck",
    "magnitudes",
    "planck",
    "planck_flux",
    "vega_blackbody_zero_points",
]
