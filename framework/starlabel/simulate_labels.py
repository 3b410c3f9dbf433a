"""Which population label answers each descriptor label, and the truth table of a simulation.

Descriptor label names map to population labels case-insensitively (:data:`LABEL_ALIASES`):
``teff``; ``logg``; ``m_h``, ``mh``, ``fe_h``, ``feh``, ``metallicity`` → ``m_h``; ``alpha_m``, ``alpha_fe``,
``alpham``, ``alphafe`` → ``alpha_m``; any ``<el>_fe`` (``mg_fe``, ``ni_fe``) → the population's
single-element label of that name, which :func:`elements_needed` asks the population for. The mock
population has one metallicity, so [Fe/H] and [M/H] are the same number here.

The truth table gives every label a nominal 1-sigma error (:data:`NOMINAL_ERRORS`: 50 K, 0.05 dex in
logg, 0.03 dex in [M/H], 0.02 dex in [α/M], 0.04 dex for ``<el>_fe``). The values themselves are exact;
the errors only let label sources that require a positive error (``table_labels``) accept them and
weight training as a reference catalogue of that quality would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from starlabel.containers import Population
from starlabel.errors import SimulationError

LABEL_ALIASES: dict[str, str] = {
    "teff": "teff",
    "logg": "logg",
    "m_h": "m_h",
    "mh": "m_h",
    "fe_h": "m_h",
    "feh": "m_h",
    "metallicity": "m_h",
    "alpha_m": "alpha_m",
    "alpha_fe": "alpha_m",
    "alpham": "alpha_m",
    "alphafe": "alpha_m",
}
"""Descriptor label name (lower case) → population label."""

NOMINAL_ERRORS: dict[str, float] = {"teff": 50.0, "logg": 0.05, "m_h": 0.03, "alpha_m": 0.02}
"""Nominal 1-sigma error of each population label in the truth table; ``<el>_fe`` get :data:`ELEMENT_ERROR`."""
ELEMENT_ERROR = 0.04
UNITS: dict[str, str] = {"teff": "K"}
"""Units of population labels; the others are dex."""

DEFAULT_LABELS: tuple[str, ...] = ("teff", "logg", "m_h", "alpha_m")
"""Labels of the truth table when the descriptor has no ``labels:`` section."""

_ELEMENT = re.compile(r"^([a-z]{1,2})_fe$")


def _canonical(name: str) -> str | None:
    lower = name.lower()
    if lower in LABEL_ALIASES:
        return LABEL_ALIASES[lower]
    match = _ELEMENT.match(lower)
    return lower if match else None


def elements_needed(names: Sequence[str]) -> list[str]:
    """Chemical symbols of the ``<el>_fe`` labels among ``names`` (for the population's ``elements=``)."""
    out = []
    for name in names:
        canonical = _canonical(name)
        if canonical is not None and canonical not in NOMINAL_ERRORS:
            out.append(canonical.removesuffix("_fe"))
    return sorted(set(out))


def map_labels(names: Sequence[str], where: str = "labels.columns") -> dict[str, str]:
    """Descriptor label name → population label, for every name.

    Raises
    ------
    starlabel.errors.SimulationError
        Some names match no label the simulation provides; lists them and what it provides.
    """
    mapping: dict[str, str] = {}
    unknown = []
    for name in names:
        canonical = _canonical(name)
        if canonical is None:
            unknown.append(name)
        else:
            mapping[name] = canonical
    if unknown:
        provided = (
            "teff, logg, m_h (also as mh, fe_h, feh, metallicity), alpha_m (also as alpha_fe), "
            "and <el>_fe for any element (mg_fe, ca_fe, ...)"
        )
        raise SimulationError(
            f"{where}: the simulation cannot provide label(s) {', '.join(repr(u) for u in unknown)}; "
            f"it provides {provided}"
        )
    return mapping


def nominal_error(label: str) -> float:
    """Nominal 1-sigma error of population label ``label``."""
    return NOMINAL_ERRORS.get(label, ELEMENT_ERROR)


def truth_columns(
    population: Population,
    ids: np.ndarray,
    mapping: Mapping[str, str],
    snr: np.ndarray,
) -> dict[str, np.ndarray]:
    """Columns of the truth table, in order.

    ``source_id`` (the spectra's ids), ``population_id``, each descriptor label and its ``<label>_err``,
    the population's other labels under their own names (with errors), ``snr``, ``vrad``, ``ra``, ``dec``,
    ``parallax``, ``distance``, ``mass``, ``radius``, ``component`` and the magnitudes as ``mag_<band>``.
    A name already taken (case-insensitively) is not repeated.
    """
    columns: dict[str, np.ndarray] = {"source_id": ids, "population_id": population.source_id}
    taken = {name.lower() for name in columns}

    def add(name: str, values: np.ndarray) -> None:
        if name.lower() not in taken:
            columns[name] = values
            taken.add(name.lower())

    used = set()
    for name, label in mapping.items():
        add(name, population.labels[label])
        add(f"{name}_err", np.full(len(population), nominal_error(label)))
        used.add(label)
    for label, values in population.labels.items():
        if label not in used:
            add(label, values)
            add(f"{label}_err", np.full(len(population), nominal_error(label)))
    add("snr", snr)
    for name in ("vrad", "ra", "dec", "parallax", "distance", "mass", "radius", "component"):
        add(name, getattr(population, name))
    for band, values in population.magnitudes.items():
        add(f"mag_{band}", values)
    return columns


COLUMN_UNITS: dict[str, str] = {
    "vrad": "km / s",
    "ra": "deg",
    "dec": "deg",
    "parallax": "mas",
    "distance": "pc",
    "mass": "solMass",
    "radius": "solRad",
}
"""Units written with the truth table's physical columns."""


def label_units(mapping: Mapping[str, str]) -> dict[str, str]:
    """Unit of each descriptor label (``K`` for temperatures, ``dex`` otherwise)."""
    return {name: UNITS.get(label, "dex") for name, label in mapping.items()}


__all__ = [
    "DEFAULT_LABELS",
    "LABEL_ALIASES",
    "NOMINAL_ERRORS",
    "elements_needed",
    "label_units",
    "map_labels",
    "nominal_error",
    "truth_columns",
]
