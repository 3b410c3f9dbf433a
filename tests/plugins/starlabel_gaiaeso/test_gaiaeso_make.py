"""The seeded generator is deterministic and writes the ESO SDP 1D layout."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType


def test_md5_stable_between_runs(tmp_path: Path, gaiaeso_maker: ModuleType) -> None:
    first = gaiaeso_maker.data_md5(gaiaeso_maker.write(tmp_path / "one"))
    second = gaiaeso_maker.data_md5(gaiaeso_maker.write(tmp_path / "two"))
    assert first == second == gaiaeso_maker.EXPECTED_MD5


def test_sdp_layout(gaiaeso_files: dict[str, Path]) -> None:
    from astropy.io import fits

    with fits.open(gaiaeso_files["hr15n:A"]) as hdul:
        assert len(hdul) == 2 and hdul[0].header["NAXIS"] == 0
        h0, h1 = hdul[0].header, hdul[1].header
        assert (h0["PRODCATG"], h0["WAVELMIN"], h0["WAVELMAX"], h0["SPEC_RES"]) == (
            "SCIENCE.SPECTRUM",
            647.0,
            679.0,
            17000.0,
        )
        assert h1["NAXIS2"] == 1 and h1["TFORM1"] == "6401E" and h1["TUNIT1"] == "nm"
        assert h1["TUCD1"] == "em.wl;obs.atmos" and h1["NELEM"] == 6401
    with fits.open(gaiaeso_files["uves"]) as hdul:
        assert hdul[1].columns.names == ["WAVE", "FLUX_REDUCED", "ERR_REDUCED", "FLUX", "ERR"]


def test_li_line_in_air_observed_frame(gaiaeso_truth: dict) -> None:
    import numpy as np

    t = gaiaeso_truth["hr15n:A"]
    near = (t["wave"] > 670.5) & (t["wave"] < 671.2)
    lowest = t["wave"][near][np.nanargmin(np.where(t["mask"][near], np.nan, t["flux"][near]))]
    assert abs(lowest - 670.78 * (1 + 25.3 / 299792.458)) < 0.02
