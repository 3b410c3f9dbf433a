"""identify(): eso_sdp_1d claims SDP 1D spectra only, never raises, and no other reader claims them."""

from __future__ import annotations

from pathlib import Path

from starlabel.testing import load_script

DATA = Path(__file__).resolve().parents[2] / "data"


def _load(folder: str, script: str) -> object:
    return load_script(DATA / folder / script)


def _other_survey_files(tmp_path: Path) -> list[Path]:
    files = list(_load("starlabel_apogee", "make_apogee.py").write(tmp_path / "apogee").values())  # type: ignore[attr-defined]
    for script, call in (("make_xp_library.py", "write"), ("make_rvs.py", "write_bulk")):
        out = getattr(_load("starlabel_gaia", script), call)(tmp_path / script[:-3])
        files += out if isinstance(out, list) else [out]
    return files


def test_identify_matrix(gaiaeso_plugins, gaiaeso_files: dict[str, Path]) -> None:
    reader = gaiaeso_plugins.readers.get("eso_sdp_1d")
    for key, path in gaiaeso_files.items():
        assert reader.identify(path) is (key != "catalogue"), key


def test_no_other_reader_claims_sdp_files(gaiaeso_plugins, gaiaeso_files: dict[str, Path]) -> None:
    from starlabel.identify import choose_reader, matching_readers

    for key, path in gaiaeso_files.items():
        if key == "catalogue":
            continue
        claims = [cls.name for cls in matching_readers(path, gaiaeso_plugins.readers)]
        assert claims == ["eso_sdp_1d"], (key, claims)
        assert choose_reader(path, gaiaeso_plugins.readers).name == "eso_sdp_1d"


def test_content_not_name(gaiaeso_plugins, gaiaeso_files: dict[str, Path], tmp_path: Path) -> None:
    from astropy.io import fits

    renamed = tmp_path / "spectrum.dat"
    renamed.write_bytes(gaiaeso_files["hr15n:B"].read_bytes())
    assert gaiaeso_plugins.readers.get("eso_sdp_1d").identify(renamed)
    with fits.open(gaiaeso_files["hr15n:A"]) as hdul:
        hdul[0].header["PRODCATG"] = "SCIENCE.IMAGE"
        hdul.writeto(tmp_path / "image.fits")
    assert not gaiaeso_plugins.readers.get("eso_sdp_1d").identify(tmp_path / "image.fits")


def test_other_surveys_and_junk_are_refused(gaiaeso_plugins, tmp_path: Path, junk_files: list[Path]) -> None:
    reader = gaiaeso_plugins.readers.get("eso_sdp_1d")
    for path in [*_other_survey_files(tmp_path), *junk_files]:
        assert reader.identify(path) is False, path


def test_truncated_file_is_refused(gaiaeso_plugins, gaiaeso_files: dict[str, Path], tmp_path: Path) -> None:
    data = gaiaeso_files["hr15n:A"].read_bytes()
    for cut in (100, 2880, 2880 + 1000):
        path = tmp_path / f"cut{cut}.fits"
        path.write_bytes(data[:cut])
        assert gaiaeso_plugins.readers.get("eso_sdp_1d").identify(path) is False, cut
