"""The seeded generator of library-layout files is deterministic and mimics the real layout."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest


def test_md5_stable_between_runs(tmp_path: Path, xp_maker: ModuleType) -> None:
    first = xp_maker.data_md5(xp_maker.write(tmp_path / "one"))
    second = xp_maker.data_md5(xp_maker.write(tmp_path / "two"))
    assert first == second == xp_maker.EXPECTED_MD5


def test_layout_matches_the_library(xp_library: Path, xp_maker: ModuleType) -> None:
    from astropy.io import fits

    header = fits.getheader(xp_library, 1)
    assert header["NAXIS2"] == 42 and header["TFIELDS"] == 21 and header["NAXIS1"] == 2850
    assert [header[f"TTYPE{i}"] for i in range(1, 22)] == [name for name, _ in xp_maker.LAYOUT]
    assert (header["TFORM1"], header["TFORM7"], header["TNULL7"]) == ("30A", "K", 999999)
    assert (header["TFORM19"], header["TDIM19"], header["TFORM20"]) == ("343E", "(343)", "343E")


@pytest.mark.realdata
def test_same_header_as_real_file(xp_library: Path, real_xp_library: Path) -> None:
    from astropy.io import fits

    ours, real = fits.getheader(xp_library, 1), fits.getheader(real_xp_library, 1)
    for key in ("NAXIS1", "TFIELDS", *(f"{k}{i}" for k in ("TTYPE", "TFORM") for i in range(1, 22)), "TNULL7"):
        assert ours[key] == real[key], key
