"""The mock Galactic population: components, chemistry, positions, stellar parameters and magnitudes."""

from __future__ import annotations

import astropy.constants as const
import astropy.units as u
import numpy as np
import pytest

from starlabel.blackbody import BAND_NAMES, magnitudes, planck_flux
from starlabel.containers import Population
from starlabel.errors import SimulationError
from starlabel.galactic import galactocentric_rz
from starlabel.population import continuum_flux, mock_population, subset


@pytest.fixture(scope="module")
def population() -> Population:
    return mock_population(20000, seed=3)


def test_component_fractions_are_exact(population: Population) -> None:
    counts = {c: int(np.sum(population.component == c)) for c in ("thin", "thick", "halo")}
    assert counts == {"thin": 16000, "thick": 3400, "halo": 600}
    custom = mock_population(1001, seed=1, fractions={"thin": 0.5, "thick": 0.5, "halo": 0.0})
    assert sorted(np.unique(custom.component, return_counts=True)[1].tolist()) == [500, 501]


def test_alpha_bimodality_between_the_sequences(population: Population) -> None:
    m_h, alpha = population.labels["m_h"], population.labels["alpha_m"]
    window = (m_h > -0.7) & (m_h < -0.2)
    counts, edges = np.histogram(alpha[window], bins=np.arange(-0.1, 0.45, 0.025))
    centres = 0.5 * (edges[1:] + edges[:-1])
    low, high = centres < 0.125, centres > 0.175
    low_peak, high_peak = counts[low].max(), counts[high].max()
    valley = counts[(centres > 0.1) & (centres < 0.2)].min()
    assert 0.0 < centres[low][np.argmax(counts[low])] < 0.1  # low-α (thin disc) sequence
    assert 0.2 < centres[high][np.argmax(counts[high])] < 0.3  # high-α (thick disc) sequence
    assert valley < 0.25 * min(low_peak, high_peak), (counts.tolist(), valley, low_peak, high_peak)
    thin = population.component == "thin"
    assert np.median(alpha[thin & window]) == pytest.approx(0.04 + 0.08 * 0.45, abs=0.02)
    # the high-α sequence declines above the knee at [M/H] = -0.5
    thick = population.component == "thick"
    metal_poor = np.median(alpha[thick & (m_h < -0.7)])
    metal_rich = np.median(alpha[thick & (m_h > -0.1)])
    assert metal_poor == pytest.approx(0.28, abs=0.01)
    assert metal_rich < metal_poor - 0.1


def test_metallicity_distributions(population: Population) -> None:
    for component, mean, sigma in (("thin", -0.05, 0.2), ("thick", -0.5, 0.25), ("halo", -1.4, 0.5)):
        m_h = population.labels["m_h"][population.component == component]
        assert np.median(m_h) == pytest.approx(mean, abs=0.05)
        assert np.subtract(*np.percentile(m_h, [84, 16])) / 2 == pytest.approx(sigma, rel=0.15)


def test_mass_radius_gravity_and_parallax_are_consistent(population: Population) -> None:
    g = (const.G * population.mass * const.M_sun / (population.radius * const.R_sun) ** 2).to_value(u.cm / u.s**2)
    np.testing.assert_allclose(10 ** population.labels["logg"], g, rtol=1e-6)
    np.testing.assert_allclose(population.parallax, 1000.0 / population.distance, rtol=1e-12)
    assert population.distance.min() >= 20.0 - 1e-6 and population.distance.max() <= 5000.0 + 1e-6
    assert len(np.unique(population.source_id)) == len(population)
    assert population.source_id.dtype == np.int64 and population.source_id.min() > 0


def test_scale_heights_and_kinematics(population: Population) -> None:
    _, z = galactocentric_rz(population.ra, population.dec, population.parallax)
    thin, thick, halo = (population.component == c for c in ("thin", "thick", "halo"))
    # an exponential of scale height h has median |z| = h ln 2
    assert np.median(np.abs(z[thin])) == pytest.approx(0.3 * np.log(2), rel=0.15)
    assert np.median(np.abs(z[thick])) > 2 * np.median(np.abs(z[thin]))
    spread = [np.std(population.vrad[c]) for c in (thin, thick, halo)]
    assert spread[0] < spread[1] < spread[2]
    assert 30 < spread[0] < 80 and spread[2] > 120


def test_stellar_parameters_follow_evolution(population: Population) -> None:
    teff, logg, m_h = (population.labels[k] for k in ("teff", "logg", "m_h"))
    dwarfs = logg > 4.15
    assert 4000 <= teff[dwarfs].min() and teff[dwarfs].max() <= 6800
    giants = (logg > 1.2) & (logg < 2.2)  # red-giant branch, below the clump
    slope = np.polyfit(m_h[giants], teff[giants], 1)[0]
    assert slope == pytest.approx(-250, abs=60)  # metal-poor giants are hotter
    clump = (np.abs(logg - 2.4) < 0.1) & (np.abs(m_h) < 0.1)
    assert np.median(teff[clump]) == pytest.approx(4700, abs=80)
    near, far = population.distance < 300, population.distance > 2000
    assert np.mean(logg[near] < 4.1) < 0.35 < 0.85 < np.mean(logg[far] < 4.1)
    only_dwarfs = mock_population(500, seed=5, giant_fraction=0.0)
    assert only_dwarfs.labels["logg"].min() > 4.0


def test_magnitudes() -> None:
    sun = magnitudes(np.array([5772.0]), np.array([1.0]), np.array([10.0]))
    assert sun["V"][0] == pytest.approx(4.8, abs=0.3)
    assert sun["B"][0] - sun["V"][0] == pytest.approx(0.65, abs=0.1)
    far = magnitudes(np.array([5000.0, 5000.0]), np.array([1.0, 1.0]), np.array([100.0, 1000.0]))
    for band in BAND_NAMES:
        assert far[band][1] - far[band][0] == pytest.approx(5.0, abs=1e-9)  # brighter when nearer
    teff = np.array([3800.0, 4500.0, 5500.0, 6500.0])
    mags = magnitudes(teff, np.ones(4), np.full(4, 10.0))
    assert np.all(np.diff(mags["V"] - mags["K"]) < 0)  # cooler is redder
    vega_like = magnitudes(np.array([9600.0]), np.array([2.8]), np.array([7.68]))  # Vega's Teff, radius, distance
    assert vega_like["V"][0] == pytest.approx(0.03, abs=0.1)


def test_population_magnitudes_match_the_blackbody(population: Population) -> None:
    expected = magnitudes(population.labels["teff"], population.radius, population.distance)
    assert set(population.magnitudes) == set(BAND_NAMES)
    np.testing.assert_allclose(population.magnitudes["V"], expected["V"], rtol=1e-12)
    order = np.argsort(population.distance)
    assert np.median(population.magnitudes["V"][order[:1000]]) < np.median(population.magnitudes["V"][order[-1000:]])


def test_continuum_flux_integrates_to_the_bolometric_flux(population: Population) -> None:
    stars = subset(population, slice(0, 5))
    wave = np.geomspace(50.0, 200000.0, 40000)
    flux = continuum_flux(stars, wave)
    assert flux.shape == (5, wave.size)
    bolometric = np.trapezoid(flux, wave, axis=1)
    teff = stars.labels["teff"]
    ratio = (stars.radius * const.R_sun / (stars.distance * u.pc)).decompose().value
    expected = const.sigma_sb.value * teff**4 * ratio**2
    np.testing.assert_allclose(bolometric, expected, rtol=2e-3)
    per_star = continuum_flux(stars, np.tile(wave[:100], (5, 1)))
    np.testing.assert_array_equal(per_star, flux[:, :100])
    np.testing.assert_allclose(planck_flux(wave[:3], teff, stars.radius, stars.distance), flux[:, :3], rtol=1e-12)


def test_deterministic_for_a_seed() -> None:
    a, b, c = mock_population(300, seed=9), mock_population(300, seed=9), mock_population(300, seed=10)
    for name in ("source_id", "ra", "dec", "distance", "vrad", "mass", "radius"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert not np.array_equal(getattr(a, name), getattr(c, name))
    for label in a.labels:
        np.testing.assert_array_equal(a.labels[label], b.labels[label])
    np.testing.assert_array_equal(a.component, b.component)


def test_element_labels_follow_alpha() -> None:
    stars = mock_population(2000, seed=4, elements=("mg", "ni"))
    assert np.std(stars.labels["mg_fe"] - stars.labels["alpha_m"]) == pytest.approx(0.03, rel=0.15)
    assert np.mean(stars.labels["ni_fe"]) == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fractions": {"thin": 0.5, "thick": 0.2}}, "must be ≥ 0 and sum to 1"),
        ({"fractions": {"thin": 0.9, "bulge": 0.1}}, "unknown component(s) bulge; allowed: thin, thick, halo"),
        ({"max_distance_pc": 10.0}, "0 < min_distance_pc < max_distance_pc, got 20.0 and 10.0"),
        ({"giant_fraction": 1.5}, "giant_fraction must lie in [0, 1]"),
        ({"extinction": "sfd"}, "extinction 'sfd' is not modelled; allowed: none"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(SimulationError) as caught:
        mock_population(10, seed=1, **options)
    assert message in str(caught.value)
