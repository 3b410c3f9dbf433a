"""Atomic and molecular data of the ``linelist`` model: abundances, masses, ionisation energies, partitions.

Values are rounded textbook numbers, good to a few per cent, which is all a one-layer model can use:

* solar photospheric abundances ``log eps = log10(N_X / N_H) + 12``: Asplund, Grevesse, Sauval & Scott
  2009, ARA&A 47, 481 (Table 1, photosphere);
* first and second ionisation energies (eV): NIST Atomic Spectra Database;
* partition functions ``U_I, U_II, U_III``: constant values near 5000–6000 K (Gray 2005, *The Observation
  and Analysis of Stellar Photospheres*, Appendix D); their temperature dependence is ignored;
* molecular dissociation energies ``D0`` (eV): Huber & Herzberg 1979.
"""

from __future__ import annotations

from dataclasses import dataclass

ALPHA_ELEMENTS: frozenset[str] = frozenset({"O", "Mg", "Si", "S", "Ca", "Ti"})
"""Elements whose abundance follows ``[alpha/M]``."""


@dataclass(frozen=True)
class Element:
    """Data of one chemical element.

    Attributes
    ----------
    symbol : str
        Chemical symbol (``"Fe"``).
    solar : float
        Solar photospheric abundance, log eps (H = 12).
    mass : float
        Atomic mass (u).
    ionisation : tuple of float
        First and second ionisation energies (eV).
    partition : tuple of float
        Partition functions of the neutral, singly and doubly ionised atom.
    """

    symbol: str
    solar: float
    mass: float
    ionisation: tuple[float, float]
    partition: tuple[float, float, float]


def _element(symbol: str, solar: float, mass: float, i1: float, i2: float, u1: float, u2: float, u3: float) -> Element:
    return Element(symbol, solar, mass, (i1, i2), (u1, u2, u3))


ELEMENTS: dict[str, Element] = {
    e.symbol: e
    for e in (
        _element("H", 12.00, 1.008, 13.598, 1e9, 2.0, 1.0, 1.0),
        _element("Li", 1.05, 6.94, 5.392, 75.640, 2.1, 1.0, 2.0),
        _element("C", 8.43, 12.011, 11.260, 24.383, 9.3, 5.9, 1.0),
        _element("N", 7.83, 14.007, 14.534, 29.601, 4.0, 8.9, 6.0),
        _element("O", 8.69, 15.999, 13.618, 35.121, 8.9, 4.0, 8.9),
        _element("Na", 6.24, 22.990, 5.139, 47.286, 2.0, 1.0, 6.0),
        _element("Mg", 7.60, 24.305, 7.646, 15.035, 1.0, 2.0, 1.0),
        _element("Al", 6.45, 26.982, 5.986, 18.829, 5.8, 1.0, 2.0),
        _element("Si", 7.51, 28.085, 8.152, 16.346, 9.4, 5.7, 1.0),
        _element("S", 7.12, 32.060, 10.360, 23.338, 8.4, 4.0, 9.0),
        _element("K", 5.03, 39.098, 4.341, 31.625, 2.1, 1.0, 6.0),
        _element("Ca", 6.34, 40.078, 6.113, 11.872, 1.2, 2.2, 1.0),
        _element("Ti", 4.95, 47.867, 6.828, 13.576, 30.0, 55.0, 24.0),
        _element("Cr", 5.64, 51.996, 6.767, 16.486, 8.5, 6.8, 15.0),
        _element("Mn", 5.43, 54.938, 7.434, 15.640, 6.4, 7.5, 6.0),
        _element("Fe", 7.50, 55.845, 7.902, 16.199, 26.0, 42.0, 25.0),
        _element("Ni", 6.22, 58.693, 7.640, 18.169, 29.0, 10.0, 21.0),
        _element("Sr", 2.87, 87.620, 5.695, 11.030, 1.1, 2.0, 1.0),
        _element("Ba", 2.18, 137.327, 5.212, 10.004, 2.5, 3.5, 1.0),
    )
}
"""Elements the line list may use, by symbol."""


@dataclass(frozen=True)
class Molecule:
    """A diatomic molecule represented by a few effective lines.

    Attributes
    ----------
    symbol : str
        Formula as written in the line list (``"CO"``).
    atoms : tuple of str
        Its two constituent elements.
    dissociation : float
        Dissociation energy D0 (eV): the molecule's number density scales as ``10**(D0 * theta)``.
    mass : float
        Molecular mass (u).
    """

    symbol: str
    atoms: tuple[str, str]
    dissociation: float
    mass: float


MOLECULES: dict[str, Molecule] = {
    m.symbol: m
    for m in (
        Molecule("CO", ("C", "O"), 11.09, 28.010),
        Molecule("CN", ("C", "N"), 7.72, 26.018),
        Molecule("OH", ("O", "H"), 4.39, 17.007),
    )
}
"""Molecules the line list may use, by formula."""


def label_for(symbol: str) -> str:
    """Name of the ``[X/Fe]`` label of an element (``"Mg"`` → ``"mg_fe"``)."""
    return f"{symbol.lower()}_fe"
