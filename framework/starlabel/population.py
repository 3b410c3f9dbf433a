"""A mock Milky Way population for simulated surveys: thin disc, thick disc and halo.

:func:`mock_population` draws ``n`` stars, deterministically for given ``(n, seed, options)``. The model
is deliberately simple, tuned to look like a spectroscopic survey's sample, not to fit the Galaxy.

Components
----------
Fractions 0.80 / 0.17 / 0.03 by default (``fractions=``), counted exactly (largest remainders).

===========  ==================  ===============================================  ======================
component    [M/H]               [α/M] sequence                                   positions
===========  ==================  ===============================================  ======================
thin         N(−0.05, 0.20)      low-α: 0.04 − 0.08 [M/H] (≈0.08 at −0.5, 0.04    exp. disc, R_d 2.6 kpc,
                                 at 0)                                            h_z 0.3 kpc
thick        N(−0.50, 0.25)      high-α: 0.28 below the knee at [M/H] = −0.5,     exp. disc, R_d 2.0 kpc,
                                 then 0.28 − 0.3 ([M/H] + 0.5)                    h_z 0.9 kpc
halo         N(−1.40, 0.50)      0.30, scatter 0.06                               ρ ∝ r^−3.5 (r ≥ 0.5 kpc)
===========  ==================  ===============================================  ======================

[M/H] is clipped to [−2.5, +0.5]; the disc sequences have an intrinsic scatter of ``alpha_scatter``
(0.025 dex) about them. Optional single-element abundances ``<el>_fe`` (``elements=``): the α elements
O, Mg, Si, S, Ca, Ti follow [α/M] with 0.03 dex scatter, others scatter by 0.05 dex about 0.

Positions
---------
Drawn in astropy's :class:`~astropy.coordinates.Galactocentric` frame with its default parameters,
as :mod:`starlabel.galactic` uses (Sun at R = 8.122 kpc, z = 20.8 pc), within a heliocentric sphere
``min_distance_pc ≤ d ≤ max_distance_pc`` (20 pc to 5 kpc), by rejection from the component's density
restricted to the sphere's range of R, azimuth and height. ICRS ra/dec, distance and parallax (mas,
1000 / d) follow from the frame transformation.

Velocities
----------
Galactocentric velocities: rotation about the Galactic centre (thin disc 220, thick disc 180, halo
0 km/s, in the sense of the Sun's motion) plus isotropic Gaussian dispersions of 30, 60 and 150 km/s;
the heliocentric radial velocity comes from astropy's transformation (solar motion included).

Stellar parameters
------------------
Each star is a main-sequence dwarf or an evolved star (subgiant 20 %, red-giant branch 50 %, red clump
30 % of the evolved). The evolved fraction grows with distance, as in a magnitude-limited survey where
only luminous stars are seen far away: ``p(d) = 0.95 − 0.85 exp(−d / 1 kpc)`` (0.10 near the Sun,
0.69 at 1 kpc, 0.95 at 5 kpc); ``giant_fraction=`` fixes it instead.

dwarfs
    mass uniform in 0.60–1.35 M☉ (thin) or 0.60–0.95 M☉ (older thick disc and halo);
    Teff = 5772 M^0.6 10^(−0.03 [M/H]) + N(0, 80) K, clipped to 4000–6800 K;
    R = M^0.8 (1 + 0.3 a), with a the fraction of the main-sequence life (uniform; 0.5–1 for old stars).
subgiants
    logg uniform in 3.5–4.1; Teff = 5000 + 1800 (logg − 3.5) − 150 [M/H] + N(0, 100) K.
red-giant branch
    logg uniform in 1.0–3.5; Teff = 4650 + 350 (logg − 2.5) − 250 [M/H] + N(0, 60) K (metal-poor
    giants are hotter).
red clump
    logg N(2.4, 0.08); Teff = 4700 − 250 [M/H] + N(0, 60) K.

Evolved stars have masses uniform in 0.9–2.0 M☉ (thin; 1.0–1.6 for subgiants) or 0.8–0.95 M☉ (old).
The radius follows from mass and surface gravity, ``R = sqrt(G M / g)`` (:data:`LOGG_SUN`), so the three
are consistent to rounding.

Magnitudes
----------
Apparent Vega magnitudes U B V R I J H K of a blackbody of the star's Teff and radius at its distance,
through Gaussian bands (:mod:`starlabel.blackbody`); no extinction.

Identifiers
-----------
``source_id``: unique positive int64 values below 2**62 drawn from the seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from starlabel.blackbody import magnitudes, planck_flux
from starlabel.containers import Population
from starlabel.errors import SimulationError

LOGG_SUN = 4.438067627303133
"""log10 of the solar surface gravity G M☉ / R☉² in cgs (IAU 2015 nominal values, CODATA 2018 G)."""

COMPONENTS: tuple[str, ...] = ("thin", "thick", "halo")
DEFAULT_FRACTIONS: dict[str, float] = {"thin": 0.80, "thick": 0.17, "halo": 0.03}
ALPHA_ELEMENTS: tuple[str, ...] = ("o", "mg", "si", "s", "ca", "ti")
"""Elements whose [X/Fe] follows [α/M]."""

MAX_ID = 2**62


@dataclass(frozen=True)
class _Component:
    """Parameters of one Galactic component."""

    m_h: tuple[float, float]
    scale_length: float  # kpc (discs)
    scale_height: float  # kpc (discs)
    rotation: float  # km/s
    dispersion: float  # km/s
    old: bool


_MODEL: dict[str, _Component] = {
    "thin": _Component((-0.05, 0.20), 2.6, 0.3, 220.0, 30.0, False),
    "thick": _Component((-0.50, 0.25), 2.0, 0.9, 180.0, 60.0, True),
    "halo": _Component((-1.40, 0.50), 0.0, 0.0, 0.0, 150.0, True),
}
HALO_SLOPE = 3.5
"""Halo density ρ ∝ r^−HALO_SLOPE."""
HALO_CORE_KPC = 0.5
"""Halo stars are not drawn within this Galactocentric radius."""

# streams of the random generator, one per aspect, so that an option changes only what it affects
_STREAM = {"positions": 1, "chemistry": 2, "stage": 3, "parameters": 4, "velocity": 5, "ids": 6, "order": 7}


def _rng(seed: int, stream: str, component: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAM[stream], component])


# ------------------------------------------------------------------------------------------ chemistry
def alpha_sequence(component: str, m_h: np.ndarray) -> np.ndarray:
    """Mean [α/M] of ``component`` at ``m_h`` (before scatter)."""
    m_h = np.asarray(m_h, dtype=np.float64)
    if component == "thin":
        return np.clip(0.04 - 0.08 * m_h, -0.02, 0.12)
    if component == "thick":
        return np.where(m_h < -0.5, 0.28, 0.28 - 0.3 * (m_h + 0.5))
    return np.full_like(m_h, 0.30)


def _chemistry(component: str, n: int, rng: np.random.Generator, alpha_scatter: float) -> tuple[np.ndarray, np.ndarray]:
    mean, sigma = _MODEL[component].m_h
    m_h = np.clip(rng.normal(mean, sigma, n), -2.5, 0.5)
    scatter = 0.06 if component == "halo" else alpha_scatter
    alpha = alpha_sequence(component, m_h) + rng.normal(0.0, scatter, n)
    return m_h, alpha


# ------------------------------------------------------------------------------------------ positions
@dataclass(frozen=True)
class _Volume:
    sun: np.ndarray  # (3,) Galactocentric position of the Sun, kpc
    d_min: float  # kpc
    d_max: float  # kpc


def _inside(xyz: np.ndarray, volume: _Volume) -> np.ndarray:
    d = np.linalg.norm(xyz - volume.sun, axis=1)
    return (d >= volume.d_min) & (d <= volume.d_max)


def _disc_draw(n: int, rng: np.random.Generator, comp: _Component, volume: _Volume) -> np.ndarray:
    """``n`` proposals of an exponential disc limited to the sphere's range of R, azimuth and z."""
    r_sun = float(np.hypot(volume.sun[0], volume.sun[1]))
    r_lo, r_hi = max(r_sun - volume.d_max, 0.0), r_sun + volume.d_max
    h = comp.scale_length
    table = np.linspace(r_lo, r_hi, 4097)
    cdf = 1.0 - (1.0 + table / h) * np.exp(-table / h)  # R e^(-R/h): a gamma(2, h) distribution
    radius = np.interp(rng.uniform(cdf[0], cdf[-1], n), cdf, table)
    half = math.asin(volume.d_max / r_sun) if volume.d_max < r_sun else math.pi
    phi = math.atan2(volume.sun[1], volume.sun[0]) + rng.uniform(-half, half, n)
    z_max = volume.d_max + abs(float(volume.sun[2]))
    hz = comp.scale_height
    height = -hz * np.log1p(-rng.uniform(0.0, 1.0 - math.exp(-z_max / hz), n))  # truncated exponential
    height *= rng.choice([-1.0, 1.0], n)
    return np.column_stack([radius * np.cos(phi), radius * np.sin(phi), height])


def _halo_draw(n: int, rng: np.random.Generator, volume: _Volume) -> np.ndarray:
    """``n`` proposals of a ρ ∝ r^-3.5 halo in the cone from the Galactic centre that holds the sphere."""
    r_sun = float(np.linalg.norm(volume.sun))
    r_lo = max(r_sun - volume.d_max, HALO_CORE_KPC)
    r_hi = r_sun + volume.d_max
    beta = 3.0 - HALO_SLOPE  # p(r) ∝ r^(2 - slope)
    radius = (r_lo**beta + rng.uniform(0.0, 1.0, n) * (r_hi**beta - r_lo**beta)) ** (1.0 / beta)
    axis = volume.sun / r_sun
    cos_max = math.cos(math.asin(volume.d_max / r_sun)) if volume.d_max < r_sun else -1.0
    cos_t = rng.uniform(cos_max, 1.0, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    psi = rng.uniform(0.0, 2 * math.pi, n)
    e1 = np.cross(axis, [0.0, 0.0, 1.0])
    e1 = e1 / np.linalg.norm(e1) if np.linalg.norm(e1) > 0 else np.array([1.0, 0.0, 0.0])
    e2 = np.cross(axis, e1)
    direction = cos_t[:, None] * axis + sin_t[:, None] * (np.cos(psi)[:, None] * e1 + np.sin(psi)[:, None] * e2)
    return radius[:, None] * direction


def _positions(component: str, n: int, rng: np.random.Generator, volume: _Volume) -> np.ndarray:
    """``n`` Galactocentric positions (kpc) inside the heliocentric shell, by rejection."""
    comp = _MODEL[component]
    kept: list[np.ndarray] = []
    have = 0
    for _ in range(10_000):
        if have >= n:
            break
        batch = max(4096, 4 * (n - have))
        xyz = _halo_draw(batch, rng, volume) if component == "halo" else _disc_draw(batch, rng, comp, volume)
        xyz = xyz[_inside(xyz, volume)]
        kept.append(xyz)
        have += len(xyz)
    else:  # pragma: no cover - only for absurd volumes
        raise SimulationError(f"cannot place {n} {component} stars within the requested distances")
    return np.concatenate(kept)[:n] if kept else np.zeros((0, 3))


def _velocities(component: str, xyz: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Galactocentric velocities (km/s): rotation in the Sun's sense plus an isotropic dispersion."""
    comp = _MODEL[component]
    radius = np.maximum(np.hypot(xyz[:, 0], xyz[:, 1]), 1e-6)
    # the Sun (x < 0, y = 0) moves towards +y: rotation (y, -x) / R
    rotation = comp.rotation * np.column_stack([xyz[:, 1] / radius, -xyz[:, 0] / radius, np.zeros(len(xyz))])
    return rotation + rng.normal(0.0, comp.dispersion, (len(xyz), 3))


# ---------------------------------------------------------------------------------- stellar parameters
def giant_probability(distance_pc: np.ndarray) -> np.ndarray:
    """Default chance that a star at ``distance_pc`` is evolved: ``0.95 − 0.85 exp(−d / 1000 pc)``."""
    return 0.95 - 0.85 * np.exp(-np.asarray(distance_pc, dtype=np.float64) / 1000.0)


def _parameters(
    old: np.ndarray, m_h: np.ndarray, distance_pc: np.ndarray, rng: np.random.Generator, giant_fraction: float | None
) -> dict[str, np.ndarray]:
    """Teff, logg, mass and radius of each star, and its stage (0 dwarf, 1 subgiant, 2 RGB, 3 clump)."""
    n = len(m_h)
    p_giant = giant_probability(distance_pc) if giant_fraction is None else np.full(n, giant_fraction)
    evolved = rng.uniform(size=n) < p_giant
    kind = rng.choice([1, 2, 3], size=n, p=[0.2, 0.5, 0.3])
    stage = np.where(evolved, kind, 0)
    u = rng.uniform(size=n)
    teff = np.empty(n)
    logg = np.empty(n)
    mass = np.empty(n)

    dwarf = stage == 0
    mass[dwarf] = np.where(old[dwarf], 0.60 + 0.35 * u[dwarf], 0.60 + 0.75 * u[dwarf])
    life = np.where(old[dwarf], rng.uniform(0.5, 1.0, n)[dwarf], rng.uniform(0.0, 1.0, n)[dwarf])
    radius_dwarf = mass[dwarf] ** 0.8 * (1.0 + 0.3 * life)
    teff[dwarf] = 5772.0 * mass[dwarf] ** 0.6 * 10 ** (-0.03 * m_h[dwarf]) + rng.normal(0, 80, n)[dwarf]
    logg[dwarf] = LOGG_SUN + np.log10(mass[dwarf]) - 2 * np.log10(radius_dwarf)

    sub = stage == 1
    mass[sub] = np.where(old[sub], 0.80 + 0.15 * u[sub], 1.0 + 0.6 * u[sub])
    logg[sub] = rng.uniform(3.5, 4.1, n)[sub]
    teff[sub] = 5000.0 + 1800.0 * (logg[sub] - 3.5) - 150.0 * m_h[sub] + rng.normal(0, 100, n)[sub]

    rgb = stage == 2
    mass[rgb] = np.where(old[rgb], 0.80 + 0.15 * u[rgb], 0.9 + 1.1 * u[rgb])
    logg[rgb] = rng.uniform(1.0, 3.5, n)[rgb]
    teff[rgb] = 4650.0 + 350.0 * (logg[rgb] - 2.5) - 250.0 * m_h[rgb] + rng.normal(0, 60, n)[rgb]

    clump = stage == 3
    mass[clump] = np.where(old[clump], 0.80 + 0.15 * u[clump], 0.9 + 1.1 * u[clump])
    logg[clump] = rng.normal(2.4, 0.08, n)[clump]
    teff[clump] = 4700.0 - 250.0 * m_h[clump] + rng.normal(0, 60, n)[clump]

    teff = np.where(dwarf, np.clip(teff, 4000.0, 6800.0), np.clip(teff, 3600.0, 6500.0))
    radius = np.sqrt(mass * 10 ** (LOGG_SUN - logg))  # g = G M / R² in solar units
    return {"teff": teff, "logg": logg, "mass": mass, "radius": radius, "stage": stage}


def _counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder rounding of ``n * fraction`` per component."""
    raw = {c: n * fractions[c] for c in COMPONENTS}
    counts = {c: int(math.floor(v)) for c, v in raw.items()}
    order = sorted(COMPONENTS, key=lambda c: (counts[c] - raw[c], COMPONENTS.index(c)))
    for c in order[: n - sum(counts.values())]:
        counts[c] += 1
    return counts


def _check(
    n: int,
    seed: int,
    fractions: Mapping[str, float],
    min_distance_pc: float,
    max_distance_pc: float,
    giant_fraction: float | None,
    extinction: str,
    elements: Sequence[str],
) -> None:
    problems = []
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        problems.append(f"n must be a positive integer, got {n!r}")
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        problems.append(f"seed must be a non-negative integer, got {seed!r}")
    unknown = sorted(set(fractions) - set(COMPONENTS))
    if unknown:
        problems.append(f"fractions name unknown component(s) {', '.join(unknown)}; allowed: {', '.join(COMPONENTS)}")
    values = [float(fractions.get(c, 0.0)) for c in COMPONENTS]
    if any(v < 0 or not math.isfinite(v) for v in values) or abs(sum(values) - 1.0) > 1e-6:
        problems.append(f"fractions {dict(fractions)} must be ≥ 0 and sum to 1")
    if not (0 < min_distance_pc < max_distance_pc):
        problems.append(
            f"distances must satisfy 0 < min_distance_pc < max_distance_pc, got {min_distance_pc} and {max_distance_pc}"
        )
    if giant_fraction is not None and not (0.0 <= giant_fraction <= 1.0):
        problems.append(f"giant_fraction must lie in [0, 1] (or None for the distance law), got {giant_fraction}")
    if extinction != "none":
        problems.append(f"extinction {extinction!r} is not modelled; allowed: none")
    bad = [e for e in elements if not (isinstance(e, str) and e.isalpha() and len(e) <= 2)]
    if bad:
        problems.append(f"elements must be chemical symbols such as mg, si, ca; got {bad}")
    if problems:
        raise SimulationError("mock population: " + "; ".join(problems))


# ------------------------------------------------------------------------------------------ the population
def mock_population(
    n: int,
    seed: int = 42,
    *,
    fractions: Mapping[str, float] | None = None,
    max_distance_pc: float = 5000.0,
    min_distance_pc: float = 20.0,
    giant_fraction: float | None = None,
    alpha_scatter: float = 0.025,
    elements: Sequence[str] = (),
    extinction: str = "none",
    frame: Any = None,
) -> Population:
    """Draw a mock Galactic population (see the module docstring for the model).

    Parameters
    ----------
    n : int
        Number of stars (≥ 1).
    seed : int
        Non-negative seed; the same ``(n, seed, options)`` always gives the same population.
    fractions : mapping, optional
        ``{"thin": f1, "thick": f2, "halo": f3}`` summing to 1; default 0.80 / 0.17 / 0.03.
    max_distance_pc, min_distance_pc : float
        Heliocentric distance range (pc).
    giant_fraction : float, optional
        Fixed fraction of evolved stars; default: growing with distance (:func:`giant_probability`).
    alpha_scatter : float
        Intrinsic scatter (dex) of the disc [α/M] sequences.
    elements : sequence of str
        Chemical symbols whose ``<el>_fe`` labels are drawn too (e.g. ``("mg", "ca", "ni")``).
    extinction : {"none"}
        Only ``"none"``: magnitudes carry no extinction.
    frame : astropy.coordinates.Galactocentric, optional
        Galactocentric frame; default astropy's ``Galactocentric()`` (as :mod:`starlabel.galactic`).

    Returns
    -------
    Population
        Stars in random order; ``component`` holds ``thin``, ``thick`` or ``halo``.

    Raises
    ------
    starlabel.errors.SimulationError
        An option is out of range (naming it and what is allowed).
    """
    import astropy.units as u
    from astropy.coordinates import ICRS, Galactocentric

    fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    elements = [e.lower() for e in elements]
    _check(n, seed, fractions, min_distance_pc, max_distance_pc, giant_fraction, extinction, elements)
    fractions = {c: float(fractions.get(c, 0.0)) for c in COMPONENTS}
    frame = frame if frame is not None else Galactocentric()
    sun = ICRS(ra=0 * u.deg, dec=0 * u.deg, distance=1e-12 * u.kpc).transform_to(frame).cartesian
    volume = _Volume(
        np.array([sun.x.to_value(u.kpc), sun.y.to_value(u.kpc), sun.z.to_value(u.kpc)]),
        min_distance_pc / 1000.0,
        max_distance_pc / 1000.0,
    )

    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("xyz", "vxyz", "m_h", "alpha", "component")}
    for index, (component, count) in enumerate(_counts(int(n), fractions).items()):
        xyz = _positions(component, count, _rng(seed, "positions", index), volume)
        m_h, alpha = _chemistry(component, count, _rng(seed, "chemistry", index), alpha_scatter)
        parts["xyz"].append(xyz)
        parts["vxyz"].append(_velocities(component, xyz, _rng(seed, "velocity", index)))
        parts["m_h"].append(m_h)
        parts["alpha"].append(alpha)
        parts["component"].append(np.full(count, component))
    order = _rng(seed, "order").permutation(int(n))
    xyz, vxyz = np.concatenate(parts["xyz"])[order], np.concatenate(parts["vxyz"])[order]
    m_h, alpha = np.concatenate(parts["m_h"])[order], np.concatenate(parts["alpha"])[order]
    component = np.concatenate(parts["component"])[order]

    galcen = Galactocentric(
        x=xyz[:, 0] * u.kpc,
        y=xyz[:, 1] * u.kpc,
        z=xyz[:, 2] * u.kpc,
        v_x=vxyz[:, 0] * u.km / u.s,
        v_y=vxyz[:, 1] * u.km / u.s,
        v_z=vxyz[:, 2] * u.km / u.s,
        **{name: getattr(frame, name) for name in frame.frame_attributes},
    )
    icrs = galcen.transform_to(ICRS())
    distance = icrs.distance.to_value(u.pc)
    old = component != "thin"
    params = _parameters(old, m_h, distance, _rng(seed, "parameters"), giant_fraction)

    labels = {"teff": params["teff"], "logg": params["logg"], "m_h": m_h, "alpha_m": alpha}
    chem = _rng(seed, "chemistry", 99)
    for element in elements:
        noise = chem.normal(0.0, 0.03 if element in ALPHA_ELEMENTS else 0.05, int(n))
        labels[f"{element}_fe"] = (alpha if element in ALPHA_ELEMENTS else 0.0) + noise

    return Population(
        source_id=_ids(int(n), _rng(seed, "ids")),
        labels=labels,
        mass=params["mass"],
        radius=params["radius"],
        distance=distance,
        ra=icrs.ra.to_value(u.deg),
        dec=icrs.dec.to_value(u.deg),
        parallax=1000.0 / distance,
        vrad=icrs.radial_velocity.to_value(u.km / u.s),
        component=component,
        magnitudes=magnitudes(params["teff"], params["radius"], distance),
    )


def _ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unique positive int64 ids below 2**62."""
    ids = rng.integers(1, MAX_ID, n, dtype=np.int64)
    for _ in range(100):
        _, first = np.unique(ids, return_index=True)
        repeated = np.setdiff1d(np.arange(n), first)
        if repeated.size == 0:
            break
        ids[repeated] = rng.integers(1, MAX_ID, repeated.size, dtype=np.int64)
    return ids


def subset(population: Population, rows: slice | np.ndarray) -> Population:
    """The stars ``rows`` of ``population`` (a slice, integer indices or a boolean mask)."""
    return Population(
        source_id=population.source_id[rows],
        labels={k: v[rows] for k, v in population.labels.items()},
        mass=population.mass[rows],
        radius=population.radius[rows],
        distance=population.distance[rows],
        ra=population.ra[rows],
        dec=population.dec[rows],
        parallax=population.parallax[rows],
        vrad=population.vrad[rows],
        component=population.component[rows],
        magnitudes={k: v[rows] for k, v in population.magnitudes.items()},
    )


def continuum_flux(population: Population, wavelength_nm: np.ndarray) -> np.ndarray:
    """Blackbody continuum of each star at the observer, F_λ in W m⁻² nm⁻¹.

    Parameters
    ----------
    population : Population
        N stars (Teff, radius and distance are used).
    wavelength_nm : numpy.ndarray
        (P,) vacuum wavelengths in nm shared by every star, or (N, P) one row per star.

    Returns
    -------
    numpy.ndarray
        (N, P) ``π B_λ(Teff) (R/d)²``.
    """
    wave = np.asarray(wavelength_nm, dtype=np.float64)
    if wave.ndim == 2 and wave.shape[0] != len(population):
        raise SimulationError(f"wavelengths of shape {wave.shape} do not give one row per star ({len(population)})")
    return planck_flux(wave, population.labels["teff"], population.radius, population.distance)


__all__ = [
    "ALPHA_ELEMENTS",
    "COMPONENTS",
    "DEFAULT_FRACTIONS",
    "LOGG_SUN",
    "alpha_sequence",
    "continuum_flux",
    "giant_probability",
    "mock_population",
    "subset",
]
