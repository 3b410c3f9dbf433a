"""The ``gaia_photometry`` auxiliary provider."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from starlabel.errors import MissingColumnError
from starlabel_gaia.photometry import GaiaPhotometry

KEEP = np.array([i for i in range(42) if i not in (5, 17)])
BIG_IDS = [5853418002145112704, 791885458491547264, 1853702563498233600]


def _magnitudes(truth: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(truth[f"gaiaedr3_phot_{b}_mean_mag"][KEEP].astype(np.float64) for b in ("g", "bp", "rp"))


def test_registered(gaia_plugins) -> None:
    assert gaia_plugins.auxiliary.get("gaia_photometry") is GaiaPhotometry
    assert gaia_plugins.auxiliary.entry("gaia_photometry").plugin == "starlabel_gaia"


def test_library_values_and_colours(xp_library: Path, xp_maker: ModuleType) -> None:
    truth = xp_maker.make_columns()
    provider = GaiaPhotometry()
    assert provider.columns() == ["g", "bp", "rp", "bp_rp", "g_rp"]
    table = provider.load([xp_library])
    assert table.columns == provider.columns()
    np.testing.assert_array_equal(table.source_id, truth["gaiaedr3_source_id"][KEEP])  # null ids dropped
    g, bp, rp = _magnitudes(truth)
    np.testing.assert_array_equal(table.values[:, 0], g)
    np.testing.assert_array_equal(table.values[:, 1], bp)
    np.testing.assert_array_equal(table.values[:, 2], rp)
    np.testing.assert_array_equal(table.values[:, 3], bp - rp)
    np.testing.assert_array_equal(table.values[:, 4], g - rp)


def test_missing_bp_is_masked_not_zero(xp_library: Path) -> None:
    table = GaiaPhotometry().load([xp_library])
    # generator row 3 has BP = NaN; rows before it are all kept
    assert table.missing[3].tolist() == [False, True, False, True, False]
    assert np.isnan(table.values[3, 1]) and np.isnan(table.values[3, 3])
    assert np.isfinite(table.values[3, 4])
    assert table.missing.sum() == 2 and not (table.values == 0).any()


def test_colours_off(xp_library: Path) -> None:
    provider = GaiaPhotometry({"colours": False})
    assert provider.columns() == ["g", "bp", "rp"]
    table = provider.load([xp_library])
    assert table.values.shape == (40, 3) and table.missing.shape == (40, 3)


def _write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_archive_names_auto_detected_and_files_concatenated(tmp_path: Path) -> None:
    header = "source_id,ra,phot_g_mean_mag,phot_bp_mean_mag,phot_rp_mean_mag"
    first = _write_csv(tmp_path / "a.csv", header, [f"{BIG_IDS[0]},1.0,12.5,13.0,11.9", f"{BIG_IDS[1]},2.0,15.0,,14.2"])
    second = _write_csv(tmp_path / "b.csv", header, [f"{BIG_IDS[2]},3.0,9.25,9.5,8.75", ",4.0,10,10.5,9.5"])
    table = GaiaPhotometry().load([first, second])
    assert table.source_id.dtype == np.int64 and table.source_id.tolist() == BIG_IDS  # exact, null id dropped
    np.testing.assert_allclose(table.values[0], [12.5, 13.0, 11.9, 1.1, 0.6])
    assert table.missing[1].tolist() == [False, True, False, True, False]  # empty BP field
    assert np.isnan(table.values[1, 1])
    np.testing.assert_allclose(table.values[2], [9.25, 9.5, 8.75, 0.75, 0.5])


def test_column_overrides(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "mine.csv", "star,G,BP,RP", ["7,10.0,10.5,9.4", "8,11.0,11.6,10.3"])
    provider = GaiaPhotometry({"id_column": "star", "g_column": "G", "bp_column": "BP", "rp_column": "RP"})
    table = provider.load([path])
    assert table.source_id.tolist() == [7, 8]
    np.testing.assert_allclose(table.values[:, 3], [1.1, 1.3])
    np.testing.assert_allclose(table.values[:, 4], [0.6, 0.7])


def test_upper_case_sdss_names_zero_id_and_placeholder(tmp_path: Path) -> None:
    from astropy.table import Table

    path = tmp_path / "allstar_like.fits"
    Table(
        {
            "APOGEE_ID": ["2M1", "2M2", "2M3"],
            "GAIAEDR3_SOURCE_ID": np.array([BIG_IDS[0], 0, BIG_IDS[1]], np.int64),
            "GAIAEDR3_PHOT_G_MEAN_MAG": np.array([12.0, 13.0, 14.0], np.float32),
            "GAIAEDR3_PHOT_BP_MEAN_MAG": np.array([12.5, 13.5, -9999.0], np.float32),
            "GAIAEDR3_PHOT_RP_MEAN_MAG": np.array([11.4, 12.4, 13.4], np.float32),
        }
    ).write(path)
    table = GaiaPhotometry().load([path])
    assert table.source_id.tolist() == [BIG_IDS[0], BIG_IDS[1]]  # 0 = "no Gaia match" dropped
    assert table.missing[1].tolist() == [False, True, False, True, False]  # -9999 placeholder


def test_unknown_columns_name_what_exists_and_the_option(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "no_bp.csv", "source_id,phot_g_mean_mag,phot_rp_mean_mag", ["1,12,11"])
    with pytest.raises(MissingColumnError) as error:
        GaiaPhotometry().load([path])
    message = str(error.value)
    assert str(path) in message and "phot_bp_mean_mag" in message and "bp_column" in message
    assert "Columns in the file: source_id, phot_g_mean_mag, phot_rp_mean_mag" in message

    with pytest.raises(MissingColumnError) as error:
        GaiaPhotometry({"g_column": "Gmag"}).load([path])
    assert "'Gmag'" in str(error.value) and "g_column" in str(error.value)

    no_id = _write_csv(tmp_path / "no_id.csv", "id,phot_g_mean_mag", ["1,12"])
    with pytest.raises(MissingColumnError, match="id_column"):
        GaiaPhotometry().load([no_id])


@pytest.mark.realdata
def test_real_library_photometry(real_xp_library: Path) -> None:
    table = GaiaPhotometry().load([real_xp_library])
    assert len(table.source_id) == 2012
    assert table.source_id[:3].tolist() == BIG_IDS
    assert (~table.missing).mean(axis=0).min() > 0.95
    good = ~table.missing[:, 0]
    assert np.all((table.values[good, 0] > 3) & (table.values[good, 0] < 21))
