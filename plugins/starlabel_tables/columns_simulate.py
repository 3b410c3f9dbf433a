"""Simulated table columns for ``table_columns`` (``starlabel simulate``): values looked up in a population.

Each requested table column (the values of the ``columns`` option) is looked up by name, case-insensitive,
with ``_``, ``-``, ``.`` and blanks ignored; when the table column's name is not found, the input name (the
option's key) is tried. Where a name is looked for, in order:

1. ``population.magnitudes``: a band key itself (``U``, ``B``, ``V``, ``R``, ``I``, ``J``, ``H``, ``K`` or any
   other key the population has), then the aliases of :data:`BAND_ALIASES`;
2. ``population.labels`` (``teff``, ``logg``, ``m_h``, ``alpha_m``, ``<el>_fe`` …);
3. the physical fields ``ra``, ``dec``, ``parallax``, ``distance``, ``vrad``, ``mass``, ``radius`` and the
   aliases of :data:`FIELD_ALIASES`.

Magnitude aliases (normalised spelling → band):

======  ===========================================================================
band    names accepted
======  ===========================================================================
U       u, umag
B       b, bmag
V       v, vmag
R       r, rmag, rc, rcmag
I       i, imag, ic, icmag
J       j, jmag, jm (2MASS ``j_m``), j2mass
H       h, hmag, hm (2MASS ``h_m``), h2mass
K       k, ks (``k_s``, ``Ks``), kmag, ksmag, km (2MASS ``k_m``), ksm, k2mass, ks2mass
======  ===========================================================================

Values are the population's exact values (true magnitudes, no photometric noise), as float64.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from starlabel.containers import Population
from starlabel.errors import SimulationError

BAND_ALIASES: dict[str, tuple[str, ...]] = {
    "U": ("u", "umag"),
    "B": ("b", "bmag"),
    "V": ("v", "vmag"),
    "R": ("r", "rmag", "rc", "rcmag"),
    "I": ("i", "imag", "ic", "icmag"),
    "J": ("j", "jmag", "jm", "j2mass"),
    "H": ("h", "hmag", "hm", "h2mass"),
    "K": ("k", "ks", "kmag", "ksmag", "km", "ksm", "k2mass", "ks2mass"),
}
"""Band of ``population.magnitudes`` → normalised names that mean it."""
FIELDS: tuple[str, ...] = ("ra", "dec", "parallax", "distance", "vrad", "mass", "radius")
"""Physical fields of :class:`~starlabel.containers.Population` a column may name."""
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "parallax": ("plx",),
    "distance": ("dist",),
    "vrad": ("rv", "radialvelocity"),
}
"""Physical field → further normalised names that mean it."""


def normalised(name: str) -> str:
    """Lower case without ``_``, ``-``, ``.`` and blanks (``'K_s'`` → ``'ks'``, ``'j_m'`` → ``'jm'``)."""
    return re.sub(r"[\s_\-.]", "", name).lower()


def _lookup(population: Population, name: str) -> np.ndarray | None:
    key = normalised(name)
    magnitudes = {normalised(band): values for band, values in population.magnitudes.items()}
    if key in magnitudes:
        return magnitudes[key]
    for band, aliases in BAND_ALIASES.items():
        if key in aliases and normalised(band) in magnitudes:
            return magnitudes[normalised(band)]
    labels = {normalised(label): values for label, values in population.labels.items()}
    if key in labels:
        return labels[key]
    for field in FIELDS:
        if key == normalised(field) or key in FIELD_ALIASES.get(field, ()):
            return getattr(population, field)
    return None


def simulate_columns(
    population: Population, ids: np.ndarray, id_column: str, columns: Mapping[str, str], provider: str = "table_columns"
) -> dict[str, np.ndarray]:
    """``{id_column: ids, COLUMN: values …}`` for every table column of ``columns`` (input → column).

    Raises
    ------
    SimulationError
        A column found neither under its own name nor under its input name; the message names the provider,
        the column and lists what the population offers. Or ``ids`` has not one value per star.
    """
    ids = np.asarray(ids)
    if ids.shape != (len(population),):
        raise SimulationError(
            f"auxiliary provider {provider!r}: got {ids.shape[0] if ids.ndim else 0} ids for {len(population)} stars; "
            "pass one id per star (reader.simulation_ids(population))"
        )
    out: dict[str, np.ndarray] = {id_column: ids}
    for name, column in columns.items():
        values = _lookup(population, column)
        if values is None:
            values = _lookup(population, name)
        if values is None:
            raise SimulationError(
                f"auxiliary provider {provider!r} cannot simulate column {column!r} (input {name!r}): no such "
                f"magnitude, label or field in the population. It offers {offer(population)}"
            )
        out[column] = np.asarray(values, dtype=np.float64)
    return out


def offer(population: Population) -> str:
    """What a column may name, for error messages."""
    bands = ", ".join(population.magnitudes) or "(none)"
    aliases = "; ".join(f"{band}: {', '.join(names)}" for band, names in BAND_ALIASES.items())
    return (
        f"magnitudes {bands} (aliases, case and _ ignored — {aliases}); labels {', '.join(population.labels)}; "
        f"fields {', '.join(FIELDS)}"
    )
