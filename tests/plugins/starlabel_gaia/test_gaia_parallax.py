"""``gaia_parallax`` and the Lindegren et al. 2021 zero point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from starlabel.errors import MissingColumnError
from starlabel_gaia.parallax import GaiaParallax, absolute_magnitude
from starlabel_gaia.parallax_zeropoint import zero_point

# Reference values: gaiadr3-zeropoint 0.1.0 (PyPI; zero_point.zpt.get_zpt after load_tables(), coefficient
# files z5_200720.txt / z6_200720.txt), called once outside the test suite on these inputs; it rounds to 1e-6 mas.
# Columns: G, nu_eff_used_in_astrometry, pseudocolour, ecl_lat (deg), astrometric_params_solved, Z (mas).
REFERENCE = [
    (12.0, 1.45, np.nan, 30.0, 31, -0.023929),
    (16.5, 1.60, np.nan, -60.0, 31, -0.031279),
    (19.5, 1.35, np.nan, 5.0, 31, -0.013782),
    (14.0, np.nan, 1.50, 45.0, 95, -0.032871),
    (20.5, np.nan, 1.30, -10.0, 95, 0.001530),
    (10.0, 1.55, np.nan, 80.0, 31, -0.013491),
    (13.1, 1.20, np.nan, -20.0, 31, -0.061557),
    (17.0, np.nan, 1.65, 0.0, 95, -0.016364),
]


def test_zero_point_matches_reference_implementation() -> None:
    g, nu, pc, beta, solved, expected = (np.array(c) for c in zip(*REFERENCE, strict=True))
    z, valid = zero_point(g, nu, pc, beta, solved.astype(int))
    np.testing.assert_allclose(z, expected, atol=6e-7)
    assert valid.all()


def test_zero_point_validity_and_no_value() -> None:
    g = np.array([5.5, 21.5, 12.0, 12.0, 12.0, 12.0, np.nan])
    nu = np.array([1.5, 1.5, 2.0, np.nan, 1.5, 1.5, 1.5])
    pc = np.array([np.nan, np.nan, np.nan, 1.80, np.nan, np.nan, np.nan])
    solved = np.array([31, 31, 31, 95, 3, 31, 31])
    z, valid = zero_point(g, nu, pc, np.zeros(7), solved)
    assert valid.tolist() == [False, False, False, False, False, True, False]
    assert np.isfinite(z[:4]).all()  # extrapolated (clamped) values exist
    assert np.isnan(z[4]) and np.isnan(z[6])  # 2-parameter solution, NaN input


def test_absolute_magnitude_formula() -> None:
    # 10 mas = 100 pc: M = m - 5 log10(100/10) = m - 5
    np.testing.assert_allclose(absolute_magnitude(np.array([10.0, 10.0]), np.array([10.0, 100.0])), [5.0, 10.0])
    assert np.isnan(absolute_magnitude(np.array([10.0, 10.0]), np.array([0.0, -1.0]))).all()


def _write(tmp_path: Path, **overrides: object) -> Path:
    columns = {
        "source_id": np.array(
            [
                4_000_000_000_000_000_001,
                4_000_000_000_000_000_002,
                4_000_000_000_000_000_003,
                4_000_000_000_000_000_004,
            ],
            dtype=np.int64,
        ),
        "phot_g_mean_mag": np.array([12.0, 16.5, 21.5, 14.0], dtype=np.float32),
        "phot_bp_mean_mag": np.array([12.5, np.nan, 22.0, 14.5], dtype=np.float32),
        "phot_rp_mean_mag": np.array([11.5, 16.0, 21.0, 13.5], dtype=np.float32),
        "parallax": np.array([2.0, 0.5, 1.0, -0.2]),
        "parallax_error": np.array([0.02, 0.2, 0.5, 0.05], dtype=np.float32),
        "nu_eff_used_in_astrometry": np.array([1.45, 1.60, 1.5, 1.5], dtype=np.float32),
        "pseudocolour": np.full(4, np.nan, dtype=np.float32),
        "ecl_lat": np.array([30.0, -60.0, 0.0, 0.0]),
        "astrometric_params_solved": np.array([31, 31, 31, 31], dtype=np.uint8),
    }
    columns.update(overrides)  # type: ignore[arg-type]
    path = tmp_path / "gaia_source.fits"
    Table(columns).write(path, overwrite=True)
    return path


def test_provider_lindegren(tmp_path: Path) -> None:
    table = GaiaParallax({"zero_point": "lindegren2021"}).load([_write(tmp_path)])
    assert table.columns == ["parallax", "parallax_error", "abs_g", "abs_bp", "abs_rp"]
    assert table.source_id.dtype == np.int64 and table.source_id[0] == 4_000_000_000_000_000_001
    v, m = table.values, table.missing
    np.testing.assert_allclose(v[0, 0], 2.0 + 0.023929, atol=1e-6)
    np.testing.assert_allclose(v[0, 2], 12.0 + 5 * np.log10((2.0 + 0.023929) / 100), atol=1e-5)
    np.testing.assert_allclose(v[1, 0], 0.5 + 0.031279, atol=1e-6)
    assert m[1].tolist() == [False, False, False, True, False]  # BP missing
    assert m[2].tolist() == [True, False, True, True, True]  # G = 21.5 outside the calibration
    assert m[3].tolist() == [False, False, True, True, True]  # negative parallax kept, magnitudes missing
    assert np.isnan(v[m]).all()


def test_provider_extrapolate_constant_and_min_over_error(tmp_path: Path) -> None:
    path = _write(tmp_path)
    out = GaiaParallax({"zero_point": "lindegren2021", "zero_point_outside": "extrapolate"}).load([path])
    assert not out.missing[2].any()
    const = GaiaParallax({"zero_point": -0.017, "min_over_error": 5}).load([path])
    np.testing.assert_allclose(const.values[:, 0], [2.017, 0.517, 1.017, -0.183])
    assert const.missing[:, 2].tolist() == [False, True, True, True]  # 0.5/0.2 and 1/0.5 below 5
    none = GaiaParallax().load([path])
    np.testing.assert_allclose(none.values[0, 0], 2.0)


def test_missing_zero_point_columns_named(tmp_path: Path) -> None:
    path = tmp_path / "small.fits"
    Table(
        {
            "source_id": np.array([1], dtype=np.int64),
            "parallax": [1.0],
            "parallax_error": [0.1],
            "phot_g_mean_mag": [12.0],
        }
    ).write(path)
    with pytest.raises(MissingColumnError) as info:
        GaiaParallax({"zero_point": "lindegren2021"}).load([path])
    message = str(info.value)
    assert str(path) in message
    for name in ("nu_eff_used_in_astrometry", "pseudocolour", "ecl_lat", "astrometric_params_solved"):
        assert name in message
    assert GaiaParallax({"bands": ["g"]}).load([path]).values.shape == (1, 3)


def test_overrides_and_apogee_names(tmp_path: Path) -> None:
    path = tmp_path / "allstar_like.fits"
    Table(
        {
            "GAIAEDR3_SOURCE_ID": np.array([0, 5], dtype=np.int64),
            "GAIAEDR3_PARALLAX": [1.0, 10.0],
            "GAIAEDR3_PARALLAX_ERROR": [0.1, 0.1],
            "GAIAEDR3_PHOT_G_MEAN_MAG": [12.0, 10.0],
        }
    ).write(path)
    options = {"parallax_column": "gaiaedr3_parallax", "parallax_error_column": "gaiaedr3_parallax_error"}
    out = GaiaParallax(options).load([path])
    assert out.source_id.tolist() == [5]  # id 0 = no Gaia match
    np.testing.assert_allclose(out.values[0, :3], [10.0, 0.1, 5.0])
    assert out.missing[0, 3:].all()  # no BP/RP columns in the file
