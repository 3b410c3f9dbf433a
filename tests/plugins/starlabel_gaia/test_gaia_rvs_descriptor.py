"""The shipped ``gaia_rvs_dr3`` descriptor: validates, and ingests generated RVS + gaia_source + allStar files."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from starlabel.descriptor import load_descriptor
from starlabel.ingest import ingest
from starlabel.store import Store
from starlabel.testing import load_script
from starlabel_gaia.parallax_zeropoint import zero_point

DESCRIPTOR = Path(__file__).resolve().parents[3] / "surveys" / "gaia_rvs_dr3.yaml"
GENERATOR = Path(__file__).resolve().parents[2] / "data" / "starlabel_gaia" / "make_gaia_source.py"


@pytest.fixture(scope="module")
def gaia_source_maker() -> ModuleType:
    """``tests/data/starlabel_gaia/make_gaia_source.py``, imported by path."""
    return load_script(GENERATOR)


@pytest.fixture(scope="module")
def ingested(
    tmp_path_factory: pytest.TempPathFactory, rvs_maker: ModuleType, gaia_source_maker: ModuleType, gaia_plugins
):  # type: ignore[no-untyped-def]
    """Ingest of 50 generated RVS spectra, a 42-row gaia_source table and a 30-row allStar table."""
    root = tmp_path_factory.mktemp("gaia_rvs_dr3")
    truth = rvs_maker.truth()
    ids = truth["source_id"]
    rvs_maker.write_bulk(root)
    extra = np.array([ids.max() + 1, ids.max() + 2], dtype=np.int64)  # gaia_source rows without a spectrum
    gaia_ids = np.concatenate([ids[: gaia_source_maker.N_GAIA], extra])
    gaia_source_maker.write_gaia_source(root, gaia_ids)
    gaia_source_maker.write_allstar(root, ids[: gaia_source_maker.N_LABELS])
    resolved = load_descriptor(DESCRIPTOR, gaia_plugins)
    report = ingest(resolved, gaia_plugins, root / "store.zarr", data_root=root)
    store = Store.open(root / "store.zarr")
    names = store.row_arrays()
    arrays = {name: np.asarray(store.array(name)[:]) for name in names}
    columns = gaia_source_maker.gaia_columns(gaia_ids)
    return report, arrays, truth, columns


def test_descriptor_validates(gaia_plugins) -> None:  # type: ignore[no-untyped-def]
    resolved = load_descriptor(DESCRIPTOR, gaia_plugins)
    model = resolved.model
    assert model.instrument.reader == "gaia_rvs_dr3" and model.instrument.resolution == 11500
    assert [e.provider for e in model.auxiliary] == ["gaia_photometry", "gaia_parallax", "gaia_xp_coefficients"]
    assert resolved.options["auxiliary[1]"].zero_point == "lindegren2021"
    assert model.labels is not None and model.labels.source == "apogee_dr17_allstar"


def test_rows_and_ids(ingested) -> None:  # type: ignore[no-untyped-def]
    _, arrays, truth, _ = ingested
    assert arrays["source_id"].dtype == np.int64
    keep = np.array(
        [truth["flux"][i][np.isfinite(truth["flux"][i])].size >= 1000 for i in range(len(truth["source_id"]))]
    )
    assert sorted(arrays["source_id"].tolist()) == sorted(truth["source_id"][keep].tolist())
    assert arrays["flux"].shape[1] == 2401


def _rows(arrays: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    where = {int(v): i for i, v in enumerate(arrays["source_id"])}
    return np.array([where.get(int(v), -1) for v in ids])


def test_parallax_column_and_masks(ingested) -> None:  # type: ignore[no-untyped-def]
    _, arrays, _, columns = ingested
    values, missing = arrays["aux/gaia_parallax"], arrays["aux/gaia_parallax_missing"]
    assert values.shape[1] == 5  # parallax, parallax_error, abs_g, abs_bp, abs_rp
    rows = _rows(arrays, columns["source_id"])
    z, valid = zero_point(
        columns["phot_g_mean_mag"],
        columns["nu_eff_used_in_astrometry"],
        columns["pseudocolour"],
        columns["ecl_lat"],
        columns["astrometric_params_solved"],
    )
    for i, row in enumerate(rows):
        if row < 0:
            continue
        corrected = columns["parallax"][i] - z[i]
        if i in (3, 4, 5, 8):  # null parallax, 2p, G and nu_eff outside the calibration
            assert missing[row, 0] and missing[row, 2:].all(), i
            continue
        assert valid[i]
        np.testing.assert_allclose(values[row, 0], corrected, rtol=1e-6)
        if i == 2:  # negative parallax: kept, absolute magnitudes missing
            assert values[row, 0] < 0 and missing[row, 2:].all()
            continue
        expected_g = columns["phot_g_mean_mag"][i] + 5 * np.log10(corrected / 100)
        np.testing.assert_allclose(values[row, 2], expected_g, rtol=1e-6)
        assert missing[row, 3] == (i == 6)  # abs_bp missing where BP is
        assert not missing[row, 4]


def test_xp_coefficients_and_photometry(ingested) -> None:  # type: ignore[no-untyped-def]
    _, arrays, truth, columns = ingested
    xp, xp_missing = arrays["aux/gaia_xp_coefficients"], arrays["aux/gaia_xp_coefficients_missing"]
    assert xp.shape[1] == 110
    rows = _rows(arrays, columns["source_id"])
    row0 = rows[0]
    np.testing.assert_allclose(xp[row0, :55], columns["bp_coefficients"][0] / columns["bp_coefficients"][0, 0])
    np.testing.assert_allclose(xp[row0, 55:], columns["rp_coefficients"][0] / columns["bp_coefficients"][0, 0])
    assert xp_missing[rows[6]].all()  # no BP: no scale for by_first_coefficient
    assert xp_missing[rows[7], 55:].all() and not xp_missing[rows[7], :55].any()
    assert not np.isnan(xp[~xp_missing]).any()
    phot_missing = arrays["aux/gaia_photometry_missing"]
    assert phot_missing[rows[6]].tolist() == [False, True, False, True, False]  # g, bp, rp, bp_rp, g_rp
    no_gaia = _rows(arrays, truth["source_id"][40:])
    no_gaia = no_gaia[no_gaia >= 0]
    assert no_gaia.size > 0
    for name in ("gaia_photometry", "gaia_parallax", "gaia_xp_coefficients"):
        assert arrays[f"aux/{name}_missing"][no_gaia].all(), name


def test_labels_joined_by_gaia_id(ingested, gaia_source_maker: ModuleType) -> None:  # type: ignore[no-untyped-def]
    report, arrays, truth, _ = ingested
    rows = _rows(arrays, truth["source_id"])
    labelled = set(range(gaia_source_maker.N_LABELS)) - {gaia_source_maker.LOW_SNR_ROW}
    for i, row in enumerate(rows):
        if row < 0:
            continue
        assert bool(arrays["labels/teff_ok"][row]) == (i in labelled), i
    assert report.to_dict()["aux_matched"]["gaia_parallax"] > 0
