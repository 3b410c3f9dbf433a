"""Line strengths and widths of the ``linelist`` model for N stars × L lines.

Every line gets three (N, L) numbers, in velocity units (km/s):

``strength``
    The line-to-continuum opacity ratio integrated over the profile, times one global constant
    :data:`LINE_SCALE`: the line's optical depth is ``strength · φ(v)`` with ``φ`` normalised to unit area.
    For an atom in stage ``i`` (Saha fraction ``f_i``, partition function ``U_i``) with abundance ``ε``,
    ``strength ∝ g f · λ · ε · f_i · 10^(−θ χ) / U_i / κ_c(λ)``. Neutral lines of mostly ionised metals
    (Fe I) therefore barely depend on gravity, ion lines (Fe II, Ca II) weaken as ``1/Pe ∝ g^(−1/3)``.
    Hydrogen lines use the population of their lower level with the temperature sensitivity of the
    Boltzmann factor multiplied by :data:`HYDROGEN_SOFTENING` (an empirical calibration: a single layer at ``Teff`` exaggerates the
    temperature sensitivity of lines whose wings form in deep, hot layers). Molecules use the product
    of their two atoms' neutral densities and ``10^(D0 (θ − θ_ref))`` (dissociation equilibrium), with
    an effective ``g f``.
``doppler``
    ``b = sqrt(2 k T / m + ξ²)``: the Doppler width (1/e half width) from the thermal speed and the
    microturbulence ``ξ``.
``lorentz``
    Half width at half maximum of the Lorentzian part: radiative (classical), van der Waals (Unsöld's
    ``C6`` times :data:`VDW_ENHANCEMENT`, Gray 2005 eq. 11.35: ``γ6 ∝ C6^0.4 Pg T^-0.7``) and, for
    hydrogen, resonance (∝ neutral-H density) and linear Stark broadening (∝ ``Ne^(2/3)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from starlabel_synth.atmosphere import HC_EV_NM, LAYER_TEMPERATURE, Layer, continuum_opacity, ion_fractions
from starlabel_synth.atoms import ALPHA_ELEMENTS, ELEMENTS, MOLECULES, label_for
from starlabel_synth.linelist import LineList

LINE_SCALE = 0.16
"""The one calibration constant: solar-like dwarfs get realistic line depths (see the README)."""

VDW_ENHANCEMENT = 1.0
"""Factor on Unsöld's van der Waals width (calibrated on solar strong lines)."""

HYDROGEN_SOFTENING = 0.55
"""Factor on the temperature sensitivity of the Boltzmann factor of hydrogen lines (calibrated on the growth
of Hα from 4500 to 7000 K): their exponent is ``χ (θ_sun + s (θ − θ_sun))``."""

THETA_SUN = 5040.0 / (LAYER_TEMPERATURE * 5777.0)
"""``θ`` of the Sun's layer."""

THETA_MOLECULES = 5040.0 / (LAYER_TEMPERATURE * 4500.0)
"""``θ`` of the layer of a 4500 K star, at which the effective ``loggf`` of molecular lines is defined."""

_PI_E2_MC = 0.02654
"""π e² / (m_e c), cm² s⁻¹."""

_TWO_K_OVER_U = 0.0166289
"""2 k / (1 u), km² s⁻² K⁻¹."""

HYDROGEN_BROADENING = 8.0
"""Factor on the Balmer-line widths (calibrated on the solar Hα and Hβ equivalent widths)."""

BALMER_EXPONENT = 2.3
"""Exponent of ``(n_u² − n_l²) / 5`` in the widths of Balmer lines."""

_RESONANCE = 1.0e-7
"""Resonance-broadening γ of Hα per neutral hydrogen atom, rad s⁻¹ cm³ (Barklem et al. 2000: ~1e10 s⁻¹ at 1e17 cm⁻³)."""

_STARK_HALPHA = 251.0
"""Stark HWHM of Hα at Ne = 1e17 cm⁻³, km/s (Gigosos et al. 2003: FWHM 1.098 nm)."""


@dataclass(frozen=True)
class Abundances:
    """Per-star abundances ``log eps`` of each element (H = 12), as (N,) arrays by symbol."""

    log_eps: dict[str, np.ndarray]

    @classmethod
    def from_labels(cls, labels: Mapping[str, np.ndarray], elements: list[str]) -> Abundances:
        """``solar + [M/H] (+ [α/M] for α elements)``, or ``solar + [M/H] + [X/Fe]`` where ``<x>_fe`` is given."""
        m_h = labels["m_h"]
        alpha_m = labels["alpha_m"]
        result: dict[str, np.ndarray] = {}
        for symbol in elements:
            solar = ELEMENTS[symbol].solar
            if symbol == "H":
                result[symbol] = np.full_like(m_h, solar)
            elif symbol == "Fe":
                result[symbol] = solar + m_h
            elif label_for(symbol) in labels:
                result[symbol] = solar + m_h + labels[label_for(symbol)]
            else:
                result[symbol] = solar + m_h + (alpha_m if symbol in ALPHA_ELEMENTS else 0.0)
        return cls(result)


@dataclass(frozen=True)
class LineWidths:
    """Strengths and widths of L lines for N stars, each (N, L), km/s (see the module docstring)."""

    strength: np.ndarray
    doppler: np.ndarray
    lorentz: np.ndarray


def line_widths(lines: LineList, atm: Layer, abundances: Abundances, vmic: np.ndarray) -> LineWidths:
    """Strengths, Doppler and Lorentzian widths of every line of ``lines`` for every star.

    Parameters
    ----------
    lines : LineList
        L lines.
    atm : Layer
        The N stars' layers.
    abundances : Abundances
        ``log eps`` of every element the lines use.
    vmic : numpy.ndarray
        (N,) microturbulence, km/s.
    """
    n_stars, n_lines = atm.temperature.size, len(lines)
    theta = atm.theta[:, None]
    lam = lines.wavelength
    log_number = np.empty((n_stars, n_lines))
    mass = np.empty(n_lines)
    c6 = np.empty(n_lines)
    hydrogen = lines.element == "H"
    fractions: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def fraction(symbol: str, stage: int) -> np.ndarray:
        if symbol == "H":
            return atm.neutral_h if stage == 1 else 1.0 - atm.neutral_h
        if symbol not in fractions:
            fractions[symbol] = ion_fractions(ELEMENTS[symbol], atm)
        return fractions[symbol][stage - 1]

    for index, (name, stage) in enumerate(zip(lines.element.tolist(), lines.ion.tolist(), strict=True)):
        if name in MOLECULES:
            molecule = MOLECULES[name]
            a, b = molecule.atoms
            log_number[:, index] = (
                abundances.log_eps[a]
                + abundances.log_eps[b]
                - 24.0
                + np.log10(fraction(a, 1) * fraction(b, 1))
                + molecule.dissociation * (atm.theta - THETA_MOLECULES)
            )
            mass[index] = molecule.mass
            c6[index] = 1e-32
            continue
        element = ELEMENTS[name]
        u = element.partition[stage - 1]
        log_number[:, index] = abundances.log_eps[name] - 12.0 + np.log10(fraction(name, stage) / u)
        mass[index] = element.mass
        if name == "H":
            c6[index] = 0.0
            continue
        upper = lines.excitation[index] + HC_EV_NM / lam[index]
        limit = element.ionisation[stage - 1]
        delta = 1.0 / max(limit - upper, 0.5) ** 2 - 1.0 / max(limit - lines.excitation[index], 0.5) ** 2
        c6[index] = 0.3e-30 * stage**2 * max(delta, 1e-3)

    # hydrogen: theta_sun + s (theta - theta_sun) in the Boltzmann factor keeps solar populations
    theta_h = THETA_SUN + HYDROGEN_SOFTENING * (theta - THETA_SUN)
    boltzmann = lines.excitation[None, :] * np.where(hydrogen[None, :], theta_h, theta)
    kappa = continuum_opacity(atm, lam)
    strength = (
        LINE_SCALE
        * _PI_E2_MC
        * (lam * 1e-7)[None, :]
        * 10.0 ** (lines.loggf[None, :] + log_number - boltzmann)
        / kappa
        * 1e-5
    )
    doppler = np.sqrt(_TWO_K_OVER_U * atm.temperature[:, None] / mass[None, :] + (vmic**2)[:, None])

    lam_cm = lam * 1e-7
    gamma = 2.223e15 / (lam * 10.0) ** 2 + np.zeros((n_stars, 1))  # radiative, classical, rad/s
    metal = ~hydrogen
    log_t = np.log10(atm.temperature)[:, None]
    log_pg = np.log10(atm.pg)[:, None]
    gamma_vdw = VDW_ENHANCEMENT * 10.0 ** (
        19.6 + 0.4 * np.log10(np.where(metal, c6, 1.0))[None, :] + log_pg - 0.7 * log_t
    )
    gamma = gamma + np.where(metal[None, :], gamma_vdw, 0.0)
    lorentz = lam_cm[None, :] * gamma / (4.0 * np.pi) * 1e-5
    if hydrogen.any():
        lorentz[:, hydrogen] += _hydrogen_widths(lines, hydrogen, atm)
    return LineWidths(strength=strength, doppler=doppler, lorentz=lorentz)


def _hydrogen_widths(lines: LineList, hydrogen: np.ndarray, atm: Layer) -> np.ndarray:
    """Resonance plus linear-Stark HWHM (km/s) of the hydrogen lines, (N, L_H).

    Both scale with ``(n_u² − n_l²) / 5`` (1 for Hα), raised to :data:`BALMER_EXPONENT` for Balmer lines
    (whose wings widen faster along the series than the linear Stark effect alone gives); resonance
    broadening only matters for the Balmer series.
    """
    lam = lines.wavelength[hydrogen]
    lower = np.rint(np.sqrt(13.598 / (13.598 - lines.excitation[hydrogen]))).astype(np.int64)
    upper = np.sqrt(1.0 / (1.0 / lower**2 - HC_EV_NM / lam / 13.598))
    spread = (upper**2 - lower**2) / 5.0
    balmer = lower == 2
    factor = np.where(balmer, spread**BALMER_EXPONENT, spread)
    resonance = _RESONANCE * atm.n_hydrogen[:, None] * np.where(balmer, factor, 0.1 * factor)[None, :]
    resonance_kms = (lam * 1e-7)[None, :] * resonance / (4.0 * np.pi) * 1e-5
    stark = _STARK_HALPHA * (lam / 656.46 * factor)[None, :] * (atm.n_electrons[:, None] / 1e17) ** (2.0 / 3.0)
    return np.where(balmer, HYDROGEN_BROADENING, 1.0)[None, :] * (resonance_kms + stark)
