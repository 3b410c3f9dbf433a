"""apogee_dr17_allstar: cuts, joins and ok flags on the generated allStar table, and a real DR12 table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from starlabel.errors import MissingColumnError

LABELS = ["teff", "logg", "m_h", "alpha_m", "mg_fe", "fe_h"]


def _load(plugins, path: Path, options: dict | None = None, columns=LABELS, **cuts):  # type: ignore[no-untyped-def]
    cls = plugins.label_sources.get("apogee_dr17_allstar")
    return cls(options or {"join_by": "apogee_id"}).load(path, columns, cls.Cuts(**cuts))


def _ids(n: int) -> str:
    return f"2M{n:08d}+{n:07d}"


def test_default_cuts(apogee_plugins, apogee_files) -> None:
    table = _load(apogee_plugins, apogee_files["allstar"])
    # dropped: row 1 duplicate, row 3 STAR_BAD, row 6 BAD_PIXELS, row 10 STAR_BAD, row 11 BAD_RV_COMBINATION
    assert table.source_id.tolist() == [_ids(n) for n in (1, 2, 5, 6, 8, 9, 10)]
    assert table.names == LABELS
    assert table.units == {"teff": "K", "logg": "dex", "m_h": "dex", "alpha_m": "dex", "mg_fe": "dex", "fe_h": "dex"}
    assert table.values[0, 0] == 4800.0 and table.errors[0, 0] == 50.0  # the primary (F1), not the duplicate
    ok = dict(zip(table.source_id.tolist(), table.ok[:, LABELS.index("mg_fe")].tolist(), strict=True))
    assert ok[_ids(2)] is False  # MG_FE_FLAG = 2
    assert ok[_ids(8)] is False  # MG_FE NaN
    assert table.ok[:, :4].all()


def test_snr_teff_logg_any(apogee_plugins, apogee_files) -> None:
    path = apogee_files["allstar"]
    snr = _load(apogee_plugins, path, snr_min=70)
    assert snr.source_id.tolist() == [_ids(n) for n in (1, 2, 6, 8, 9, 10)]
    hot = _load(apogee_plugins, path, snr_min=70, teff_range=(None, 7000), logg_range=(2.2, None))
    assert hot.source_id.tolist() == [_ids(n) for n in (1, 2, 6, 8)]
    everything = _load(apogee_plugins, path, aspcapflag="any", extratarg="any", starflag_bad_bits=[])
    assert everything.source_id.tolist() == [_ids(n) for n in range(1, 13) if n != 4]
    # the duplicate APOGEE_ID is collapsed onto its highest-S/N row
    assert everything.values[0, 0] == 4800.0 and len(everything.source_id) == 11
    only_bad = _load(apogee_plugins, path, starflag_bad_bits=["BRIGHT_NEIGHBOR"], extratarg="any")
    assert _ids(10) not in only_bad.source_id.tolist() and _ids(7) in only_bad.source_id.tolist()


def test_join_by_gaia_drops_zero(apogee_plugins, apogee_files) -> None:
    table = _load(apogee_plugins, apogee_files["allstar"], {"join_by": "gaia"}, columns=["teff"])
    assert table.source_id.dtype == np.int64
    assert 0 not in table.source_id.tolist()
    assert table.source_id.tolist() == [4_000_000_000_000_000_000 + n for n in (1, 2, 5, 8, 9, 10)]


def test_errors_name_what_is_missing(apogee_plugins, tmp_path: Path, apogee_files) -> None:
    from astropy.table import Table

    table = Table.read(apogee_files["allstar"])
    table.remove_column("ASPCAPFLAG")
    path = tmp_path / "small.fits"
    table.write(path)
    with pytest.raises(MissingColumnError, match="ASPCAPFLAG.*aspcapflag: any"):
        _load(apogee_plugins, path)
    assert len(_load(apogee_plugins, path, aspcapflag="any").source_id) == 9
    with pytest.raises(ValueError, match="unknown label"):
        _load(apogee_plugins, path, columns=["tef"], aspcapflag="any")
    with pytest.raises(ValueError, match="unknown bit name"):
        apogee_plugins.label_sources.get("apogee_dr17_allstar").Cuts(starflag_bad_bits=["NOPE"])


@pytest.mark.realdata
@pytest.mark.filterwarnings("ignore::astropy.units.UnitsWarning")
def test_real_dr12_allstar_table(apogee_plugins) -> None:
    """APOGEE-allStar-v603-Hipparcos: DR12 columns (PARAM_M_H, -9999 fill), 3244 rows."""
    from starlabel.tables import read_table
    from starlabel.testing import real_data

    path = real_data("apogee_label_catalogs/APOGEE-allStar-v603-Hipparcos.fits.gz")
    raw = read_table(path)
    table = _load(apogee_plugins, path, columns=["teff", "logg", "m_h", "fe_h"], snr_min=70)
    star_bad = (np.asarray(raw["ASPCAPFLAG"]).astype(np.int64) & (1 << 23)) != 0
    assert 0 < len(table.source_id) < len(raw) - star_bad.sum()
    assert len(set(table.source_id.tolist())) == len(table.source_id)
    ok = table.ok[:, 0]
    assert ok.any() and np.all(np.isfinite(table.values[ok, 0])) and np.all(table.values[ok, 0] > 3000)
    assert not np.any(table.values[:, :] <= -9999)
