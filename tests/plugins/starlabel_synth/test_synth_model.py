"""The ``linelist`` synthesizer: responses to the labels, broadening, grids, Doppler shifts, errors, registry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from starlabel.errors import SimulationError
from starlabel.plugins import load_plugins
from starlabel.wavelengths import C_KMS
from starlabel_synth.linelist import COLUMNS
from starlabel_synth.model import LineListSynthesizer

RVS = np.arange(846.0, 870.0 + 1e-9, 0.01)
FE_RVS = (869.1007, 862.3968, 861.4166)  # Fe I 8688.62, 8621.60, 8614.17 (air A)
FE_6593 = 659.4731  # Fe I 6592.91 (air A), vacuum nm
CA_8542 = 854.4437
H_ALPHA = 656.4613


@pytest.fixture(scope="module")
def synth() -> LineListSynthesizer:
    return LineListSynthesizer()


def stars(**values: float | list[float]) -> dict[str, np.ndarray]:
    """Labels broadcast to the longest list given."""
    n = max((len(v) for v in values.values() if isinstance(v, list)), default=1)
    return {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy() for k, v in values.items()}


def equivalent_width(flux: np.ndarray, wave: np.ndarray) -> np.ndarray:
    """∫(1 − F) dλ in nm over the whole grid (uniform step), per star."""
    return np.sum(1.0 - flux, axis=-1) * (wave[1] - wave[0])


def window(centre: float, half: float, step: float) -> np.ndarray:
    return np.arange(centre - half, centre + half, step)


def depth_at(flux: np.ndarray, wave: np.ndarray, centre: float, half: float = 0.03) -> np.ndarray:
    near = np.abs(wave - centre) <= half
    return 1.0 - flux[:, near].min(axis=1)


def one_line_list(tmp_path: Path, row: str = "Fe,1,600.0,2.2,-1.5,0,test,isolated") -> str:
    """A line list holding one line (isolated, so that integrals over a window see only it)."""
    path = tmp_path / "one.csv"
    path.write_text(f"{','.join(COLUMNS)}\n{row}\n", encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------------------------------ label responses
def test_fe_lines_deepen_with_metallicity(synth: LineListSynthesizer) -> None:
    flux = synth.synthesize(stars(teff=5000.0, logg=3.0, m_h=[-1.5, -0.75, 0.0, 0.3]), RVS, 11500.0)
    for centre in FE_RVS:
        depth = depth_at(flux, RVS, centre)
        assert np.all(np.diff(depth) > 0.005), (centre, depth)
    assert 0.15 < depth_at(flux, RVS, FE_RVS[0])[2] < 0.6


@pytest.mark.parametrize(
    ("centre", "half", "element"),
    [(865.0846, 0.05, "Si I"), (867.7753, 0.03, "Ti I"), (CA_8542, 1.5, "Ca II"), (1577.0108, 0.15, "Mg I")],
)
def test_alpha_lines_grow_with_alpha_m_iron_stays(
    synth: LineListSynthesizer, centre: float, half: float, element: str
) -> None:
    labels = stars(teff=4800.0, logg=2.5, m_h=-0.5, alpha_m=[0.0, 0.4])
    wave = window(centre, half, 0.002)
    ew = equivalent_width(synth.synthesize(labels, wave, 20000.0), wave)
    assert ew[1] > 1.08 * ew[0], (element, ew)
    fe = window(FE_6593, 0.04, 0.001)
    fe_ew = equivalent_width(synth.synthesize(labels, fe, 20000.0), fe)
    assert abs(fe_ew[1] / fe_ew[0] - 1.0) < 0.01


def test_element_label_overrides_alpha(synth: LineListSynthesizer) -> None:
    wave = window(1577.0108, 0.15, 0.002)
    base = stars(teff=4800.0, logg=2.5, m_h=-0.5, alpha_m=0.4)
    ew = [
        equivalent_width(synth.synthesize({**base, **extra}, wave, 20000.0), wave)[0]
        for extra in ({}, {"mg_fe": np.array([0.4])}, {"mg_fe": np.array([0.0])})
    ]
    assert ew[1] == pytest.approx(ew[0], rel=1e-12)  # [Mg/Fe] = [alpha/M] by default
    assert ew[2] < 0.95 * ew[0]


def test_neutral_iron_weakens_with_teff(synth: LineListSynthesizer) -> None:
    wave = window(FE_6593, 0.04, 0.001)
    flux = synth.synthesize(stars(teff=[4500.0, 5000.0, 5500.0, 6000.0, 6500.0], logg=4.4, m_h=0.0), wave, 20000.0)
    ew = equivalent_width(flux, wave)
    assert np.all(np.diff(ew) < 0), ew
    assert ew[0] > 1.5 * ew[-1]


def test_balmer_alpha_grows_with_teff(synth: LineListSynthesizer) -> None:
    wave = window(H_ALPHA, 2.5, 0.005)
    flux = synth.synthesize(stars(teff=[4500.0, 5500.0, 6500.0, 7000.0], logg=4.3, m_h=0.0), wave, 20000.0)
    ew = equivalent_width(flux, wave)
    assert np.all(np.diff(ew) > 0), ew
    assert 3.0 < ew[-1] / ew[0] < 20.0
    solar = equivalent_width(synth.synthesize(stars(teff=5777.0, logg=4.44, m_h=0.0), wave, 20000.0), wave)[0]
    assert 0.2 < solar < 0.6  # nm; the Sun's H alpha has W ~ 0.4 nm


def test_calcium_triplet_wings_grow_with_gravity(synth: LineListSynthesizer) -> None:
    """Pressure (van der Waals) wings: stronger in dwarfs than in subgiants (README: not below log g ~ 2.5)."""
    wave = window(CA_8542, 1.6, 0.01)
    flux = synth.synthesize(stars(teff=5000.0, logg=[3.0, 4.0, 5.0], m_h=0.0), wave, 11500.0)
    offset = np.abs(wave - CA_8542)
    wing = (offset > 0.25) & (offset < 1.5)
    absorption = np.sum(1.0 - flux[:, wing], axis=1)
    assert np.all(np.diff(absorption) > 0), absorption
    assert absorption[2] > 1.3 * absorption[0]


def test_solar_depths_are_realistic(synth: LineListSynthesizer) -> None:
    flux = synth.synthesize(stars(teff=5777.0, logg=4.44, m_h=0.0), RVS, 11500.0)
    assert 0.7 <= depth_at(flux, RVS, CA_8542)[0] <= 0.8
    for centre in FE_RVS:
        assert 0.05 <= depth_at(flux, RVS, centre)[0] <= 0.4


# ------------------------------------------------------------------------------------------ broadening
def test_lower_resolution_conserves_equivalent_width(tmp_path: Path) -> None:
    synth = LineListSynthesizer({"line_list": one_line_list(tmp_path)})
    wave = window(600.0, 0.8, 0.002)
    labels = stars(teff=5000.0, logg=4.0, m_h=0.0)
    flux = np.vstack([synth.synthesize(labels, wave, r) for r in (50000.0, 11500.0, 5000.0)])
    ew = equivalent_width(flux, wave)
    assert ew == pytest.approx(ew[0], rel=0.01)
    assert ew[0] > 0.005  # a strong line: 5 pm
    depth = 1.0 - flux.min(axis=1)
    assert depth[0] > depth[1] > depth[2] > 0.0


def test_real_list_equivalent_width_conserved_on_rvs_window(synth: LineListSynthesizer) -> None:
    wave = window(862.3968, 0.6, 0.005)
    labels = stars(teff=5500.0, logg=4.0, m_h=-0.3)
    ew = np.array([equivalent_width(synth.synthesize(labels, wave, r), wave)[0] for r in (50000.0, 11500.0, 5000.0)])
    assert ew == pytest.approx(ew[0], rel=0.01)
    assert ew[0] > 0.002


def test_gaussian_profile_has_no_damping_wings(tmp_path: Path) -> None:
    path = one_line_list(tmp_path, f"Ca,2,{CA_8542},1.7,-0.36,1,test,Ca II 8542")
    wave = window(CA_8542, 1.6, 0.01)
    labels = stars(teff=5000.0, logg=4.5, m_h=0.0)
    voigt = LineListSynthesizer({"line_list": path}).synthesize(labels, wave, 11500.0)
    gauss = LineListSynthesizer({"line_list": path, "profile": "gaussian"}).synthesize(labels, wave, 11500.0)
    far = np.abs(wave - CA_8542) > 0.5
    assert np.sum(1 - voigt[0, far]) > 1.0  # 0.01 nm pixels: > 0.01 nm of wing absorption
    assert np.sum(1 - gauss[0, far]) < 1e-6


def test_microturbulence_strengthens_saturated_lines(tmp_path: Path) -> None:
    wave = window(600.0, 0.3, 0.002)
    labels = stars(teff=5000.0, logg=4.0, m_h=0.0)
    ew = [
        equivalent_width(
            LineListSynthesizer({"line_list": one_line_list(tmp_path), "microturbulence": v}).synthesize(
                labels, wave, 50000.0
            ),
            wave,
        )[0]
        for v in (0.5, 2.5)
    ]
    assert ew[1] > 1.2 * ew[0]


# ------------------------------------------------------------------------------------------ shapes and grids
def test_output_shape_finite_and_bounded(synth: LineListSynthesizer) -> None:
    rng = np.random.default_rng(4)
    labels = {
        "teff": rng.uniform(3800, 8000, 7),
        "logg": rng.uniform(0.5, 5, 7),
        "m_h": rng.uniform(-2.5, 0.5, 7),
        "alpha_m": rng.uniform(-0.2, 0.4, 7),
    }
    wave = np.exp(np.arange(np.log(380.0), np.log(520.0), 1 / 20000))
    flux = synth.synthesize(labels, wave, 6500.0)
    assert flux.shape == (7, wave.size) and flux.dtype == np.float64
    assert np.all(np.isfinite(flux))
    assert np.all(flux > 1.0 - synth.options.max_depth - 1e-12) and np.all(flux <= 1.0)
    assert flux.min() < 0.3  # Ca II H and K, Balmer lines


def test_per_star_grid_equals_shared_grid(synth: LineListSynthesizer) -> None:
    labels = stars(teff=[4500.0, 5800.0, 6300.0], logg=[2.0, 4.4, 4.0], m_h=[-1.0, 0.0, 0.2])
    shared = synth.synthesize(labels, RVS, 11500.0)
    rows = synth.synthesize(labels, np.tile(RVS, (3, 1)), 11500.0)
    np.testing.assert_allclose(rows, shared, rtol=0, atol=1e-12)


def test_doppler_shifted_grid_moves_line_centroid(tmp_path: Path) -> None:
    synth = LineListSynthesizer({"line_list": one_line_list(tmp_path, "Fe,1,600.0,2.2,-3.0,0,test,weak")})
    wave = window(600.0, 0.5, 0.002)
    v = np.array([0.0, 40.0, -25.0])
    rest_rows = wave[None, :] / (1.0 + v[:, None] / C_KMS)  # the rest wavelengths each observed pixel sees
    flux = synth.synthesize(stars(teff=[5000.0] * 3, logg=4.0, m_h=0.0), rest_rows, 20000.0)
    absorption = 1.0 - flux
    centroid = absorption @ wave / absorption.sum(axis=1)
    assert centroid[0] == pytest.approx(600.0, abs=2e-4)
    np.testing.assert_allclose(centroid[1:] - centroid[0], 600.0 * v[1:] / C_KMS, rtol=0.005)


def test_threads_and_batches_do_not_change_the_result() -> None:
    labels = stars(teff=[4500.0, 5800.0, 6300.0, 5000.0, 4200.0], logg=[2.0, 4.4, 4.0, 3.0, 1.5], m_h=-0.2)
    one = LineListSynthesizer().synthesize(labels, RVS, 11500.0)
    many = LineListSynthesizer({"threads": 2, "batch_size": 2}).synthesize(labels, RVS, 11500.0)
    np.testing.assert_allclose(many, one, rtol=0, atol=2e-4)  # windows are chosen per batch (tau < 1e-4 cut)


def test_scalars_broadcast_and_empty_inputs(synth: LineListSynthesizer) -> None:
    flux = synth.synthesize({"teff": 5000.0, "logg": 4.0, "m_h": np.zeros(3)}, RVS[:50], 11500.0)
    assert flux.shape == (3, 50)
    assert synth.synthesize(stars(teff=5000.0, logg=4.0, m_h=0.0), np.array([]), 11500.0).shape == (1, 0)


# ------------------------------------------------------------------------------------------ errors
def test_unknown_label_lists_known_labels(synth: LineListSynthesizer) -> None:
    labels: Mapping[str, np.ndarray] = {**stars(teff=5000.0, logg=4.0, m_h=0.0), "fe_h": np.array([0.0])}
    with pytest.raises(SimulationError) as info:
        synth.synthesize(labels, RVS, 11500.0)
    message = str(info.value)
    assert message.startswith("synthesizer 'linelist' does not model label(s) 'fe_h'.")
    assert "Known labels: teff, logg, m_h, alpha_m, al_fe, ba_fe, c_fe, ca_fe" in message
    assert synth.label_names()[:4] == ["teff", "logg", "m_h", "alpha_m"]
    assert {"mg_fe", "si_fe", "ti_fe", "li_fe", "c_fe", "n_fe", "o_fe"} <= set(synth.label_names())
    assert "fe_fe" not in synth.label_names() and "h_fe" not in synth.label_names()


@pytest.mark.parametrize(
    ("labels", "wave", "resolution", "message"),
    [
        ({"teff": [5000.0], "logg": [4.0]}, RVS, 11500.0, "needs label(s) 'm_h'"),
        (
            {"teff": [-5.0], "logg": [4.0], "m_h": [0.0]},
            RVS,
            11500.0,
            "label 'teff'[0] = -5.0; allowed: a finite temperature",
        ),
        (
            {"teff": [5000.0], "logg": [np.nan], "m_h": [0.0]},
            RVS,
            11500.0,
            "label 'logg'[0] = nan; allowed: a finite number",
        ),
        (
            {"teff": [5000.0, 6000.0], "logg": [4.0, 4.0, 4.0], "m_h": [0.0]},
            RVS,
            11500.0,
            "label 'teff' has shape (2,)",
        ),
        (
            {"teff": [5000.0], "logg": [4.0], "m_h": [0.0]},
            RVS * 10,
            11500.0,
            "leave the range it accepts, 300–2500 nm",
        ),
        ({"teff": [5000.0], "logg": [4.0], "m_h": [0.0]}, RVS[::-1], 11500.0, "must increase strictly"),
        (
            {"teff": [5000.0], "logg": [4.0], "m_h": [0.0]},
            np.tile(RVS, (2, 1)),
            11500.0,
            "wavelength has shape (2, 2401)",
        ),
        ({"teff": [5000.0], "logg": [4.0], "m_h": [0.0]}, RVS, 0.0, "resolution 0.0; allowed: a positive number"),
    ],
)
def test_bad_calls_raise_simulation_error(
    synth: LineListSynthesizer, labels: dict, wave: np.ndarray, resolution: float, message: str
) -> None:
    with pytest.raises(SimulationError) as info:
        synth.synthesize({k: np.asarray(v) for k, v in labels.items()}, wave, resolution)
    assert message in str(info.value)


def test_options_are_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        LineListSynthesizer({"profile": "lorentz"})
    with pytest.raises(ValidationError):
        LineListSynthesizer({"max_depth": 1.5})


# ------------------------------------------------------------------------------------------ registry
def test_registered_as_linelist_by_starlabel_synth() -> None:
    plugins = load_plugins(entry_points=False, environ={})
    assert plugins.synthesizers.get("linelist") is LineListSynthesizer
    assert plugins.synthesizers.entry("linelist").plugin == "starlabel_synth"
    assert LineListSynthesizer.status == "experimental"
