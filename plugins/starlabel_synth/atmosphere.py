"""One representative layer per star: pressures, ionisation balance and continuous opacity.

The ``linelist`` model has no stellar atmosphere. Each star is one layer at ``T = 0.87 Teff`` (where lines
form, somewhat above continuum optical depth 2/3) whose pressures follow simple scaling laws (Gray 2005, *The Observation and Analysis
of Stellar Photospheres*, ch. 9: for H⁻-dominated photospheres ``Pg ∝ g^(2/3)``, ``Pe ∝ g^(1/3)``):

* gas pressure ``log Pg = 4.6 + (2/3)(log g − 4.44) − (1/3)[M/H] − 4 log10(T/5777)`` (dyn cm⁻²);
* electrons from metals ``log Pe_m = 0.5 + (1/3)(log g − 4.44) + (1/3)[M/H] + 5 log10(T/5777)``, limited to
  the fully ionised value ``1.1e-4 · 10^[M/H] · Pg``;
* plus electrons from hydrogen, from Saha's equation with that gas pressure (closed form), which makes
  ``Pe`` rise steeply above ~7000 K.

Continuous opacity per hydrogen atom: H⁻ bound-free and free-free (Gray 2005, eqs 8.12 and 8.13, after
Wishart 1979 and Bell & Berrington 1987), neutral-hydrogen bound-free from levels n ≥ 3 (hydrogenic,
Gaunt factor 1) and Thomson scattering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from starlabel_synth.atoms import ELEMENTS, Element

K_B = 1.380649e-16
"""Boltzmann constant, erg/K."""

HC_EV_NM = 1239.84198
"""h c in eV nm."""

LOG_PG_SUN = 4.6
"""log10 of the gas pressure (dyn cm⁻²) of the Sun's layer."""

LOG_PE_SUN = 0.5
"""log10 of the metal electron pressure (dyn cm⁻²) of the Sun's layer."""

LAYER_TEMPERATURE = 0.87
"""Temperature of the representative layer in units of Teff (lines form above continuum optical depth 2/3)."""

_SAHA = -0.1762
"""Constant of Saha's equation in Gray's form: ``log(N1 Pe / N0) = log(U1/U0) + 2.5 log T − θ I − 0.1762``."""

_H_MINUS_BF = (1.99654, -1.18267e-5, 2.64243e-6, -4.40524e-10, 3.23992e-14, -1.39568e-18, 2.78701e-23)
"""Polynomial in λ (Å) of the H⁻ bound-free cross-section, 1e-18 cm² (Gray 2005 eq. 8.11, valid to 16 300 Å)."""


@dataclass(frozen=True)
class Layer:
    """The representative layer of N stars (every attribute is an (N,) array).

    Attributes
    ----------
    temperature : numpy.ndarray
        Temperature of the layer, K (:data:`LAYER_TEMPERATURE` × Teff).
    theta : numpy.ndarray
        ``5040 / T``.
    pg, pe : numpy.ndarray
        Gas and electron pressure, dyn cm⁻².
    neutral_h : numpy.ndarray
        Fraction of hydrogen that is neutral.
    """

    temperature: np.ndarray
    theta: np.ndarray
    pg: np.ndarray
    pe: np.ndarray
    neutral_h: np.ndarray

    @property
    def n_electrons(self) -> np.ndarray:
        """Electron number density, cm⁻³."""
        return self.pe / (K_B * self.temperature)

    @property
    def n_hydrogen(self) -> np.ndarray:
        """Neutral-hydrogen number density, cm⁻³ (helium takes ~8 % of the particles)."""
        return (self.pg - self.pe) / (1.085 * K_B * self.temperature) * self.neutral_h


def saha_phi(element: Element, stage: int, temperature: np.ndarray) -> np.ndarray:
    """``Φ = N_{stage+1} Pe / N_stage`` (dyn cm⁻²) of ``element`` (stage 0: neutral, 1: singly ionised) at ``T``."""
    theta = 5040.0 / temperature
    u = element.partition
    log_phi = (
        np.log10(u[stage + 1] / u[stage]) + 2.5 * np.log10(temperature) - theta * element.ionisation[stage] + _SAHA
    )
    return 10.0**log_phi


def layer(teff: np.ndarray, logg: np.ndarray, m_h: np.ndarray) -> Layer:
    """Pressures and hydrogen ionisation of each star's representative layer (scalings in the module docstring)."""
    t_rel = np.log10(teff / 5777.0)
    temperature = LAYER_TEMPERATURE * teff
    pg = 10.0 ** (LOG_PG_SUN + (2.0 / 3.0) * (logg - 4.44) - m_h / 3.0 - 4.0 * t_rel)
    pe_scaling = 10.0 ** (LOG_PE_SUN + (logg - 4.44) / 3.0 + m_h / 3.0 + 5.0 * t_rel)
    pe_ionised = 1.1e-4 * 10.0**m_h * pg
    pe_metals = 1.0 / (1.0 / pe_scaling + 1.0 / pe_ionised)
    phi = saha_phi(ELEMENTS["H"], 0, temperature)
    # Pe = Pe_m + Pg x/(1+x), x = Φ/Pe the ionised-to-neutral ratio: a quadratic in Pe
    b = 2.0 * phi - pe_metals
    pe = 0.5 * (-b + np.sqrt(b * b + 4.0 * phi * (2.0 * pe_metals + pg)))
    return Layer(temperature=temperature, theta=5040.0 / temperature, pg=pg, pe=pe, neutral_h=pe / (pe + phi))


def ion_fractions(element: Element, atm: Layer) -> tuple[np.ndarray, np.ndarray]:
    """Fractions of ``element`` that are neutral and singly ionised (three stages), each (N,)."""
    r1 = saha_phi(element, 0, atm.temperature) / atm.pe
    r2 = saha_phi(element, 1, atm.temperature) / atm.pe
    neutral = 1.0 / (1.0 + r1 * (1.0 + r2))
    return neutral, r1 * neutral


def continuum_opacity(atm: Layer, wavelength_nm: np.ndarray) -> np.ndarray:
    """Continuous opacity per hydrogen nucleus (cm²), (N, L) for N stars and L wavelengths.

    Parameters
    ----------
    atm : Layer
        The stars' layers.
    wavelength_nm : numpy.ndarray
        (L,) wavelengths, nm.
    """
    theta = atm.theta[:, None]
    pe = atm.pe[:, None]
    lam_aa = 10.0 * np.asarray(wavelength_nm, dtype=np.float64)[None, :]
    chi_lam = HC_EV_NM / (lam_aa / 10.0)
    stimulated = 1.0 - 10.0 ** (-chi_lam * theta)
    # H- bound-free (threshold 1.64 um) and free-free, per neutral H atom
    poly = np.zeros_like(lam_aa)
    for power, coefficient in enumerate(_H_MINUS_BF):
        poly = poly + coefficient * lam_aa**power
    alpha_bf = np.where(lam_aa < 16300.0, np.maximum(poly, 0.0), 0.0) * 1e-18
    h_minus = 4.158e-10 * alpha_bf * pe * theta**2.5 * 10.0 ** (0.754 * theta) * stimulated
    log_lam = np.log10(lam_aa)
    log_theta = np.log10(theta)
    f0 = -2.2763 - 1.6850 * log_lam + 0.76661 * log_lam**2 - 0.053346 * log_lam**3
    f1 = 15.2827 - 9.2846 * log_lam + 1.99381 * log_lam**2 - 0.142631 * log_lam**3
    f2 = -197.789 + 190.266 * log_lam - 67.9775 * log_lam**2 + 10.6913 * log_lam**3 - 0.625151 * log_lam**4
    h_minus = h_minus + pe * 10.0 ** (-26.0 + f0 + f1 * log_theta + f2 * log_theta**2)
    # neutral hydrogen bound-free from every level n >= 3 whose edge lies redward of the wavelength
    nu3 = (2.99792458e18 / lam_aa) ** 3
    h_bf = np.zeros_like(h_minus)
    for n in range(3, 16):
        edge_aa = 911.763 * n * n
        chi_n = 13.598 * (1.0 - 1.0 / (n * n))
        population = n * n * 10.0 ** (-theta * chi_n)  # 2 n^2 / U_H, U_H = 2
        h_bf = h_bf + np.where(lam_aa < edge_aa, 2.815e29 / (n**5 * nu3), 0.0) * population
    h_bf = h_bf * stimulated
    thomson = 6.652e-25 * pe / np.maximum(atm.pg[:, None] - pe, 1e-30) * 1.085
    return atm.neutral_h[:, None] * (h_minus + h_bf) + thomson
