"""``gaia_xp_coefficients`` on the real archive XP_CONTINUOUS files in every format, and on generated tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from starlabel.errors import DataFileError, MissingColumnError
from starlabel.testing import real_data
from starlabel_gaia.xp_continuous import GaiaXpCoefficients, coefficient_columns

WITH_MISSING_BP = [
    "XP_CONTINUOUS_RAW_with_missing_BP.csv",
    "XP_CONTINUOUS_RAW_with_missing_BP.ecsv",
    "XP_CONTINUOUS_RAW_with_missing_BP.fits",
    "XP_CONTINUOUS_RAW_with_missing_BP.xml",  # BINARY2
    "XP_CONTINUOUS_RAW_with_missing_BP_plain.xml",  # TABLEDATA
]
IDS = [5853498713190525696, 5405570973190252288, 5762406957886626816]
RP_ONLY = 5405570973190252288
DATALINK = [f"gaia_dr3_source_id_5937083312263887616_dl_products_{k}.zip" for k in ("csv", "ecsv", "fits", "vot")]


def _load(path: Path, normalise: str = "none"):  # type: ignore[no-untyped-def]
    return GaiaXpCoefficients({"normalise": normalise}).load([path])


@pytest.mark.realdata
def test_every_format_same_coefficients_and_rp_only_masks_bp() -> None:
    tables = [_load(real_data(f"gaiaxpy_tests_xp/xp_continuous/{name}")) for name in WITH_MISSING_BP]
    first = tables[0]
    assert first.columns == coefficient_columns() and len(first.columns) == 110
    for table in tables:
        assert table.source_id.dtype == np.int64 and table.source_id.tolist() == IDS
        np.testing.assert_array_equal(table.missing, first.missing)
        np.testing.assert_array_equal(table.values, first.values)  # float64 as stored: exact in every format
    row = IDS.index(RP_ONLY)
    assert first.missing[row, :55].all() and np.isnan(first.values[row, :55]).all()
    assert not first.missing[row, 55:].any()
    assert not first.missing[[0, 2]].any()
    # published values (GaiaXPy test file, first BP/RP coefficients of 5853498713190525696; RP-only source)
    assert first.values[0, 0] == 56947.03696840172 and first.values[0, 1] == 13812.466168611605
    assert first.values[row, 55] == 38.18018501664883


@pytest.mark.realdata
def test_datalink_zip_bundles_agree() -> None:
    tables = [_load(real_data(f"astroquery_gaia_datalink/{name}")) for name in DATALINK]
    for table in tables:
        assert table.source_id.tolist() == [5937083312263887616]
        np.testing.assert_array_equal(table.values, tables[0].values)
        assert not table.missing.any()
    np.testing.assert_allclose(tables[0].values[0, :2], [3325.74309396, -392.20328365], rtol=1e-10)


@pytest.mark.realdata
def test_normalisation_conventions() -> None:
    path = real_data("gaiaxpy_tests_xp/xp_continuous/XP_CONTINUOUS_RAW_with_missing_BP.fits")
    raw = _load(path)
    default = GaiaXpCoefficients().load([path])  # by_first_coefficient
    assert GaiaXpCoefficients().options.normalise == "by_first_coefficient"
    for row in (0, 2):
        np.testing.assert_allclose(default.values[row], raw.values[row] / raw.values[row, 0], rtol=1e-15)
        assert default.values[row, 0] == 1.0
    assert default.missing[1].all()  # RP only: no BP scale, every column missing


def test_by_g_flux_and_fixed_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    bp, rp = rng.uniform(1, 100, (3, 55)), rng.uniform(1, 100, (3, 55))
    rp[2] = np.nan
    path = tmp_path / "gaia_source_xp.fits"
    ids = np.array([2**62 + 1, 2**62 + 2, 2**62 + 3], dtype=np.int64)
    Table(
        {"source_id": ids, "phot_g_mean_flux": [1000.0, -1.0, 500.0], "bp_coefficients": bp, "rp_coefficients": rp}
    ).write(path)
    out = GaiaXpCoefficients({"normalise": "by_g_flux"}).load([path])
    assert out.source_id.tolist() == ids.tolist()
    np.testing.assert_allclose(out.values[0], np.concatenate([bp[0], rp[0]]) / 1000.0)
    assert out.missing[1].all()  # non-positive flux: no scale
    assert out.missing[2, 55:].all() and not out.missing[2, :55].any()
    with pytest.raises(MissingColumnError, match="phot_g_mean_flux"):
        GaiaXpCoefficients({"normalise": "by_g_flux", "g_flux_column": "phot_g_mean_flux_x"}).load([path])


def test_errors_name_file_and_column(tmp_path: Path) -> None:
    path = tmp_path / "short.fits"
    Table(
        {
            "source_id": np.array([1], dtype=np.int64),
            "bp_coefficients": np.ones((1, 54)),
            "rp_coefficients": np.ones((1, 54)),
        }
    ).write(path)
    with pytest.raises(DataFileError, match="54 values per row, expected 55"):
        _load(path)
    other = tmp_path / "none.csv"
    other.write_text("source_id,flux\n1,2\n")
    with pytest.raises(MissingColumnError, match="bp_coefficients"):
        _load(other)
