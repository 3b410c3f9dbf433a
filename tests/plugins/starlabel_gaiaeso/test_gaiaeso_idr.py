"""gaia_eso_idr: labels, units, cuts and joins give exactly the expected stars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from starlabel.errors import MissingColumnError

A, B, C = "14512312-4025107", "14512398-4026011", "14513055-4024459"
D, E, F, H = "14513301-4027300", "14514000-4030000", "14515000-4031000", "14516000-4032000"
LABELS = ["teff", "logg", "feh", "alpha_fe"]


def _load(plugins: Any, path: Path, options: dict | None = None, **cuts: Any) -> Any:
    cls = plugins.label_sources.get("gaia_eso_idr")
    return cls(options or {}).load(path, LABELS, cls.Cuts(**cuts))


def test_default_cuts_and_values(gaiaeso_plugins, gaiaeso_files: dict[str, Path]) -> None:
    table = _load(gaiaeso_plugins, gaiaeso_files["catalogue"])
    ids = table.source_id.tolist()
    assert ids == [A, B, C, F, H]  # D (TECH) and E (PECULI) dropped, the empty CNAME dropped
    assert table.units == {"teff": "K", "logg": "dex", "feh": "dex", "alpha_fe": "dex"}
    row = {i: k for k, i in enumerate(ids)}
    np.testing.assert_allclose(table.values[row[A]], [4750, 2.45, -0.31, 0.12], rtol=1e-6)  # best-S/N duplicate
    np.testing.assert_allclose(table.errors[row[A]], [60, 0.12, 0.08, 0.05], rtol=1e-6)
    assert table.ok[row[A]].all()
    assert table.ok[row[B]].tolist() == [True, True, True, False] and np.isnan(table.values[row[B], 3])
    assert table.ok[row[H]].tolist() == [False, True, True, True] and np.isnan(table.values[row[H], 0])


def test_snr_min(gaiaeso_plugins, gaiaeso_files: dict[str, Path]) -> None:
    assert _load(gaiaeso_plugins, gaiaeso_files["catalogue"], snr_min=50).source_id.tolist() == [A, B, F, H]


def test_flag_cuts(gaiaeso_plugins, gaiaeso_files: dict[str, Path]) -> None:
    path = gaiaeso_files["catalogue"]
    assert _load(gaiaeso_plugins, path, reject_flags=[]).source_id.tolist() == [A, B, C, D, E, F, H]
    assert _load(gaiaeso_plugins, path, reject_flags=["TECH"]).source_id.tolist() == [A, B, C, E, F, H]
    assert _load(gaiaeso_plugins, path, reject_flags=["REMARK", "PECULI", "TECH"]).source_id.tolist() == [A, B, C, H]
    assert _load(gaiaeso_plugins, path, reject_flags=[], require_flags=["2010"]).source_id.tolist() == [E]
    with pytest.raises(MissingColumnError, match="no column 'WG14_FLAGS'"):
        _load(gaiaeso_plugins, path, reject_flags=["WG14_FLAGS"])


def test_setup_cut(gaiaeso_plugins, gaiaeso_files: dict[str, Path]) -> None:
    assert _load(gaiaeso_plugins, gaiaeso_files["catalogue"], setup="hr15n").source_id.tolist() == [A, B, C, H]


def test_join_by_gaia(gaiaeso_plugins, gaiaeso_files: dict[str, Path], gaiaeso_maker: Any) -> None:
    g = gaiaeso_maker.G
    table = _load(gaiaeso_plugins, gaiaeso_files["catalogue"], {"join_by": "gaia"})
    assert table.source_id.dtype == np.int64
    assert table.source_id.tolist() == [g[1], g[2], g[3], g[7], g[8]]  # F has no Gaia match (0)
    with pytest.raises(MissingColumnError, match="no column 'GAIA_ID'"):
        _load(gaiaeso_plugins, gaiaeso_files["catalogue"], {"join_by": "gaia", "gaia_column": "GAIA_ID"})


def test_unknown_label_and_wrong_table(gaiaeso_plugins, gaiaeso_files: dict[str, Path]) -> None:
    cls = gaiaeso_plugins.label_sources.get("gaia_eso_idr")
    with pytest.raises(ValueError, match="unknown label"):
        cls().load(gaiaeso_files["catalogue"], ["m_h"], cls.Cuts())
    with pytest.raises(MissingColumnError, match="no column .CNAME.*Expected a Gaia-ESO recommended-parameter table"):
        cls().load(gaiaeso_files["hr15n:A"], LABELS, cls.Cuts())
