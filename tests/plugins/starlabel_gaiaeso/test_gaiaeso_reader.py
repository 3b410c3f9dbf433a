"""eso_sdp_1d reads generated SDP files exactly and refuses other layouts with messages naming the layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from starlabel.errors import DataFileError
from starlabel.testing import load_script


def _reader(plugins: Any, **options: Any) -> Any:
    return plugins.readers.get("eso_sdp_1d")(options)


@pytest.mark.parametrize("key", ["hr15n:A", "hr15n:B", "hr15n:C", "hr15n:D"])
def test_round_trip(gaiaeso_plugins, gaiaeso_files: dict[str, Path], gaiaeso_truth: dict, key: str) -> None:
    spectra = _reader(gaiaeso_plugins, setup="HR15N").read(gaiaeso_files[key])
    t = gaiaeso_truth[key]
    assert spectra.source_id.tolist() == [t["id"]] and spectra.source_id.dtype.kind == "U"
    assert spectra.unit == t["unit"] and spectra.medium == "air"
    np.testing.assert_array_equal(spectra.wavelength, t["wave"])
    np.testing.assert_array_equal(spectra.mask[0], t["mask"])
    good = ~t["mask"]
    np.testing.assert_array_equal(spectra.flux[0][good], t["flux"][good])
    np.testing.assert_allclose(spectra.ivar[0][good], 1 / t["sigma"][good] ** 2, rtol=1e-12)
    assert (spectra.ivar[0][t["mask"]] == 0).all()
    assert spectra.meta["vrad"].tolist() == [t["vrad"]] and spectra.meta["snr"].tolist() == [t["snr"]]
    assert spectra.meta["spec_res"].tolist() == [17000.0] and spectra.meta["mjd_obs"].tolist() == [56789.125]


def test_masks(gaiaeso_plugins, gaiaeso_files: dict[str, Path]) -> None:
    a = _reader(gaiaeso_plugins).read(gaiaeso_files["hr15n:A"])
    assert np.flatnonzero(a.mask[0]).tolist() == [100, 200]  # NaN flux, ERR = 0
    c = _reader(gaiaeso_plugins).read(gaiaeso_files["hr15n:C"])
    assert np.flatnonzero(c.mask[0]).tolist() == [300, 301, 302, 303, 304]  # QUAL != 0
    assert not _reader(gaiaeso_plugins, use_qual=False).read(gaiaeso_files["hr15n:C"]).mask.any()


def test_uves_reduced_and_default_flux(gaiaeso_plugins, gaiaeso_files: dict[str, Path], gaiaeso_truth: dict) -> None:
    t = gaiaeso_truth["uves"]
    reduced = _reader(gaiaeso_plugins, setup="U580", flux="reduced").read(gaiaeso_files["uves"])
    default = _reader(gaiaeso_plugins, setup="U580").read(gaiaeso_files["uves"])
    assert reduced.unit == default.unit == "Angstrom" and reduced.source_id.tolist() == [t["id"]]
    np.testing.assert_array_equal(reduced.wavelength, t["wave"])
    np.testing.assert_array_equal(reduced.flux[0], t["flux_reduced"])
    np.testing.assert_array_equal(default.flux[0], t["flux"])


def test_medium_option(gaiaeso_plugins, gaiaeso_files: dict[str, Path]) -> None:
    assert _reader(gaiaeso_plugins, medium="header").read(gaiaeso_files["hr15n:A"]).medium == "air"
    assert _reader(gaiaeso_plugins, medium="vacuum").read(gaiaeso_files["hr15n:A"]).medium == "vacuum"


def test_id_keyword_and_fallback(gaiaeso_plugins, gaiaeso_files: dict[str, Path]) -> None:
    assert _reader(gaiaeso_plugins, id_keyword="OBJECT").read(gaiaeso_files["hr15n:A"]).source_id.tolist() == [
        "GES_MW_A"
    ]
    # file B has no CNAME keyword: OBJECT holds the CNAME
    assert _reader(gaiaeso_plugins).read(gaiaeso_files["hr15n:B"]).source_id.tolist() == ["14512398-4026011"]


@pytest.mark.parametrize(
    ("key", "setup", "found"),
    [("hr10", "HR15N", "setup HR10 (from SETUP = 'HR10')"), ("uves", "HR15N", "setup U580 (from ESO INS GRAT2 WLEN"),
     ("hr15n:C", "HR10", "setup HR15N (from WAVELMIN/WAVELMAX"), ("hr15n:B", "U520", "setup HR15N (from ESO INS EXP MODE")],
)  # fmt: skip
def test_setup_mismatch(gaiaeso_plugins, gaiaeso_files: dict[str, Path], key: str, setup: str, found: str) -> None:
    with pytest.raises(DataFileError) as error:
        _reader(gaiaeso_plugins, setup=setup).read(gaiaeso_files[key])
    message = str(error.value)
    assert message.startswith(str(gaiaeso_files[key])) and found in message
    assert f"asks for setup: {setup}" in message


def _rewrite(source: Path, target: Path, **changes: Any) -> Path:
    from astropy.io import fits

    with fits.open(source) as hdul:
        for hdu, key, value in changes.get("cards", []):
            if value is None:
                del hdul[hdu].header[key]
            else:
                hdul[hdu].header[key] = value
        hdul.writeto(target)
    return target


def test_wrong_unit(gaiaeso_plugins, gaiaeso_files: dict[str, Path], tmp_path: Path) -> None:
    nm_says_angstrom = _rewrite(gaiaeso_files["hr15n:A"], tmp_path / "a.fits", cards=[(1, "TUNIT1", "Angstrom")])
    with pytest.raises(DataFileError, match=r"WAVELMIN/WAVELMAX say 647–679 nm: TUNIT is probably wrong"):
        _reader(gaiaeso_plugins).read(nm_says_angstrom)
    assert _reader(gaiaeso_plugins, check_range=False).read(nm_says_angstrom).unit == "Angstrom"
    not_length = _rewrite(gaiaeso_files["hr15n:A"], tmp_path / "b.fits", cards=[(1, "TUNIT1", "km/s")])
    with pytest.raises(DataFileError, match=r"TUNIT 'km/s', not a wavelength unit"):
        _reader(gaiaeso_plugins).read(not_length)
    no_unit = _rewrite(gaiaeso_files["hr15n:B"], tmp_path / "c.fits", cards=[(1, "TUNIT1", None)])
    with pytest.raises(DataFileError, match="TUNIT is probably wrong"):  # Å values read as the default nm
        _reader(gaiaeso_plugins).read(no_unit)
    assert _reader(gaiaeso_plugins, default_unit="Angstrom").read(no_unit).unit == "Angstrom"


def test_missing_id(gaiaeso_plugins, gaiaeso_files: dict[str, Path], tmp_path: Path) -> None:
    path = _rewrite(gaiaeso_files["hr15n:A"], tmp_path / "x.fits", cards=[(0, "CNAME", None), (0, "OBJECT", None)])
    with pytest.raises(DataFileError, match="no CNAME or OBJECT keyword"):
        _reader(gaiaeso_plugins).read(path)


def test_other_survey_file_names_layout(gaiaeso_plugins, gaiaeso_files: dict[str, Path], tmp_path: Path) -> None:

    generator = Path(__file__).resolve().parents[2] / "data" / "starlabel_apogee" / "make_apogee.py"
    module = load_script(generator)
    apstar = module.write_apstar(tmp_path, "2M00000001+0000001")
    for path in (apstar, gaiaeso_files["catalogue"]):
        with pytest.raises(DataFileError) as error:
            _reader(gaiaeso_plugins).read(path)
        assert str(path) in str(error.value) and "Expected layout (ESO SDP 1D spectrum)" in str(error.value)


def test_truncated_file(gaiaeso_plugins, gaiaeso_files: dict[str, Path], tmp_path: Path) -> None:
    data = gaiaeso_files["hr15n:A"].read_bytes()
    for cut in (len(data) // 2, 2880 * 2, 100):
        path = tmp_path / f"cut{cut}.fits"
        path.write_bytes(data[:cut])
        with pytest.raises(DataFileError, match=str(path)):
            _reader(gaiaeso_plugins).read(path)
    with pytest.raises(DataFileError, match="no such file"):
        _reader(gaiaeso_plugins).read(tmp_path / "missing.fits")
