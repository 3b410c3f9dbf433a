"""``simulate`` of ``gaia_photometry``, ``gaia_parallax`` and ``gaia_xp_coefficients``: columns that their
own ``load`` reads back (via an astropy FITS table, as ``starlabel simulate`` writes ``auxiliary.fits``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from starlabel.containers import AuxTable, Population
from starlabel.errors import SimulationError
from starlabel_gaia.parallax import GaiaParallax
from starlabel_gaia.photometry import GaiaPhotometry
from starlabel_gaia.simulate_aux import (
    astrometry_columns,
    parallax_error,
    photometry_columns,
    true_magnitudes,
    unit_normals,
)
from starlabel_gaia.xp_continuous import GaiaXpCoefficients, coefficient_columns

# Teff and V - I_C of main-sequence stars (Pecaut & Mamajek-like), hottest last
TEFF = np.array([3900.0, 4400.0, 5000.0, 5772.0, 6300.0, 7000.0, 8500.0])
V_MINUS_I = np.array([1.75, 1.20, 0.88, 0.70, 0.56, 0.42, 0.12])


def population(
    n: int | None = None, distance: np.ndarray | None = None, magnitudes: bool = True, seed: int = 0
) -> Population:
    """Stars of :data:`TEFF` (repeated to ``n``), V from a rough main-sequence M_V and the distance."""
    rng = np.random.default_rng(seed)
    n = TEFF.size if n is None else n
    teff, vi = np.resize(TEFF, n), np.resize(V_MINUS_I, n)
    distance = np.full(n, 200.0) if distance is None else distance
    absolute_v = 4.81 + 6.0 * (vi - 0.70)
    v = absolute_v + 5.0 * np.log10(distance / 10.0)
    ids = (rng.choice(np.arange(1, 786000), n, replace=False).astype(np.int64) << 43) + rng.integers(0, 2**40, n)
    return Population(
        source_id=ids,
        labels={"teff": teff, "logg": np.full(n, 4.4), "m_h": np.zeros(n), "alpha_m": np.zeros(n)},
        mass=np.ones(n),
        radius=(teff / 5772.0) ** 1.5,
        distance=distance,
        ra=rng.uniform(0.0, 360.0, n),
        dec=np.rad2deg(np.arcsin(rng.uniform(-1.0, 1.0, n))),
        parallax=1000.0 / distance,
        vrad=np.zeros(n),
        component=np.array(["thin"] * n),
        magnitudes={"V": v, "I": v - vi} if magnitudes else {"K": v - 2 * vi},
    )


def load_back(tmp_path: Path, provider: object, columns: Mapping[str, np.ndarray]) -> AuxTable:
    """Write ``columns`` as one FITS table and read it with ``provider.load``."""
    path = tmp_path / f"{provider.name}.fits"  # type: ignore[attr-defined]
    Table(dict(columns)).write(path, overwrite=True)
    return provider.load([path])  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------- photometry
def test_photometry_round_trip_and_colours_monotonic_in_teff(tmp_path: Path) -> None:
    people = population()
    provider = GaiaPhotometry()
    columns = provider.simulate(people, people.source_id)
    assert columns["source_id"] is not None and columns["source_id"].dtype == np.int64
    for band in ("g", "bp", "rp"):
        assert columns[f"phot_{band}_mean_mag"].dtype == np.float32
        assert np.all(columns[f"phot_{band}_mean_flux"] > 0)
    table = load_back(tmp_path, provider, columns)
    np.testing.assert_array_equal(table.source_id, people.source_id)
    assert table.columns == ["g", "bp", "rp", "bp_rp", "g_rp"]
    assert not table.missing.any()
    np.testing.assert_array_equal(table.values[:, 0], columns["phot_g_mean_mag"].astype(np.float64))
    bp_rp, g_rp = table.values[:, 3], table.values[:, 4]
    assert np.all(np.diff(bp_rp) < 0) and np.all(np.diff(g_rp) < 0)  # redder when cooler
    assert 0.3 < g_rp[3] < 0.6 and 0.7 < bp_rp[3] < 0.9  # the Sun: G-RP 0.47, BP-RP 0.79 here


def test_sun_at_ten_parsec() -> None:
    sun = population(distance=np.full(TEFF.size, 10.0))
    true = true_magnitudes(sun)
    assert true["g"][3] == pytest.approx(4.67, abs=0.05)  # Casagrande & VandenBerg 2018: G_sun = 4.67
    observed = photometry_columns(sun)["phot_g_mean_mag"][3]
    assert observed == pytest.approx(true["g"][3], abs=0.002)  # 0.3 mmag noise at G < 13


def test_flux_columns_consistent_with_magnitudes() -> None:
    columns = photometry_columns(population(distance=np.full(TEFF.size, 2000.0)))
    g = columns["phot_g_mean_mag"].astype(np.float64)
    np.testing.assert_allclose(25.6874 - 2.5 * np.log10(columns["phot_g_mean_flux"]), g, atol=1e-5)
    over = columns["phot_bp_mean_flux"] / columns["phot_bp_mean_flux_error"]
    np.testing.assert_allclose(over, columns["phot_bp_mean_flux_over_error"], rtol=1e-5)
    assert np.all(columns["phot_bp_mean_flux_over_error"] < columns["phot_g_mean_flux_over_error"])


def test_photometry_needs_v_and_i() -> None:
    people = population(magnitudes=False)
    with pytest.raises(SimulationError, match=r"gaia_photometry: the population has no V magnitude \(it has: K\)"):
        GaiaPhotometry().simulate(people, people.source_id)
    with pytest.raises(SimulationError, match="2 ids for a population of 7 stars"):
        GaiaPhotometry().simulate(population(), population().source_id[:2])


def test_photometry_columns_follow_the_options(tmp_path: Path) -> None:
    people = population()
    provider = GaiaPhotometry({"id_column": "gaiadr3_source_id", "g_column": "gmag", "colours": False})
    columns = provider.simulate(people, people.source_id)
    assert {"gaiadr3_source_id", "gmag", "phot_bp_mean_mag", "phot_rp_mean_mag"} <= set(columns)
    table = load_back(tmp_path, provider, columns)
    np.testing.assert_array_equal(table.values[:, 0], columns["gmag"].astype(np.float64))


# ----------------------------------------------------------------------------------------------- parallax
def test_parallax_zero_point_corrected_gives_true_parallax_plus_noise(tmp_path: Path) -> None:
    distance = np.geomspace(50.0, 8000.0, 40)
    people = population(40, distance=distance, seed=1)
    provider = GaiaParallax({"zero_point": "lindegren2021", "zero_point_outside": "extrapolate"})
    columns = provider.simulate(people, people.source_id)
    astrometry = astrometry_columns(people, photometry_columns(people))
    injected = columns["parallax"] - astrometry["zero_point"] - people.parallax  # the noise
    assert np.median(np.abs(astrometry["zero_point"])) > 0.015  # a real offset (tens of µas) was injected
    assert np.all(np.abs(injected) < 6 * columns["parallax_error"])
    table = load_back(tmp_path, provider, columns)
    np.testing.assert_array_equal(table.source_id, people.source_id)
    assert table.columns == ["parallax", "parallax_error", "abs_g", "abs_bp", "abs_rp"]
    np.testing.assert_allclose(table.values[:, 0], people.parallax + injected, rtol=0, atol=1e-3)
    np.testing.assert_array_equal(table.values[:, 1], columns["parallax_error"].astype(np.float64))
    uncorrected = load_back(tmp_path, GaiaParallax(), columns).values[:, 0]
    np.testing.assert_allclose(uncorrected - table.values[:, 0], astrometry["zero_point"], atol=1e-9)


def test_parallax_solution_types_and_columns() -> None:
    people = population(4, distance=np.array([100.0, 1000.0, 20000.0, 60000.0]), seed=2)
    columns = GaiaParallax().simulate(people, people.source_id)
    g = columns["phot_g_mean_mag"]
    five = g < 19.0
    assert five.any() and (~five).any()
    np.testing.assert_array_equal(columns["astrometric_params_solved"], np.where(five, 31, 95))
    assert np.all(np.isfinite(columns["nu_eff_used_in_astrometry"][five]))
    assert np.all(np.isnan(columns["nu_eff_used_in_astrometry"][~five]))
    assert np.all(np.isfinite(columns["pseudocolour"][~five]) & np.isnan(columns["pseudocolour"][five]))
    assert np.all((columns["ecl_lat"] >= -90) & (columns["ecl_lat"] <= 90))
    for name in ("parallax_over_error", "phot_bp_mean_mag", "phot_rp_mean_mag", "source_id"):
        assert columns[name].shape == (4,)


def test_parallax_errors_and_noise_statistics() -> None:
    np.testing.assert_allclose(parallax_error(np.array([10.0, 15.0, 17.0, 20.0, 21.0])), [0.02, 0.025, 0.07, 0.5, 1.3])
    people = population(3000, distance=np.full(3000, 1500.0), seed=3)
    astrometry = astrometry_columns(people, photometry_columns(people))
    pull = (astrometry["parallax"] - astrometry["zero_point"] - people.parallax) / astrometry["parallax_error"]
    assert abs(pull.mean()) < 0.06 and abs(pull.std() - 1.0) < 0.05


def test_photometry_and_parallax_agree_on_shared_columns() -> None:
    people = population()
    photometry = GaiaPhotometry().simulate(people, people.source_id)
    parallax = GaiaParallax().simulate(people, people.source_id)
    shared = set(photometry) & set(parallax)
    assert {"source_id", "phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag"} <= shared
    for name in shared:  # starlabel simulate merges the providers' columns into one table
        np.testing.assert_array_equal(photometry[name], parallax[name])


# ------------------------------------------------------------------------------------------ XP coefficients
def test_xp_coefficients_round_trip(tmp_path: Path) -> None:
    people = population()
    provider = GaiaXpCoefficients({"normalise": "none"})
    columns = provider.simulate(people, people.source_id)
    bp, rp = columns["bp_coefficients"], columns["rp_coefficients"]
    assert bp.shape == rp.shape == (TEFF.size, 55)
    assert np.all(np.isfinite(bp)) and np.all(np.isfinite(rp)) and np.all(bp[:, 0] > 0) and np.all(rp[:, 0] > 0)
    table = load_back(tmp_path, provider, columns)
    assert table.columns == coefficient_columns()
    np.testing.assert_array_equal(table.values, np.concatenate([bp, rp], axis=1))
    ratio = bp[:, 0] / rp[:, 0]
    assert np.all(np.diff(ratio) > 0)  # hotter stars are bluer
    # a smooth SED: the coefficients fall off by orders of magnitude
    assert np.all(np.abs(bp[:, 20:]).max(axis=1) < 1e-6 * bp[:, 0])
    again = provider.simulate(people, people.source_id)
    np.testing.assert_array_equal(again["bp_coefficients"], bp)


def test_xp_coefficient_normalisations(tmp_path: Path) -> None:
    people = population()
    first = GaiaXpCoefficients()
    table = load_back(tmp_path, first, first.simulate(people, people.source_id))
    np.testing.assert_allclose(table.values[:, 0], 1.0)
    by_flux = GaiaXpCoefficients({"normalise": "by_g_flux"})
    columns = by_flux.simulate(people, people.source_id)
    assert "phot_g_mean_flux" in columns
    table = load_back(tmp_path, by_flux, columns)
    np.testing.assert_allclose(table.values[:, 0], columns["bp_coefficients"][:, 0] / columns["phot_g_mean_flux"])


# ------------------------------------------------------------------------------------------------- noise
def test_noise_is_a_function_of_the_star_only() -> None:
    ids = np.array([5, 2**62 + 7, 123456789012345678, 42], dtype=np.int64)
    whole = unit_normals(ids, salt=4)
    np.testing.assert_array_equal(unit_normals(ids[2:], salt=4), whole[2:])  # batch-independent
    assert not np.array_equal(unit_normals(ids, salt=5), whole)
    many = unit_normals(np.arange(1, 20001, dtype=np.int64), salt=1)
    assert abs(many.mean()) < 0.03 and abs(many.std() - 1.0) < 0.03
