"""apStar, aspcapStar and apVisit readers on generated files: exact round trips, options, bad input."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from starlabel.errors import DataFileError
from starlabel.testing import load_script

ID1 = "2M00000001+0000001"


def _ivar(sigma: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.zeros_like(sigma)
    out[~mask] = 1.0 / sigma[~mask] ** 2
    return out


def test_apstar_row0_round_trip(apogee_plugins, apogee_files: dict[str, Path], apogee_truth: dict[str, Any]) -> None:
    spectra = apogee_plugins.readers.get("apogee_apstar")().read(apogee_files[f"apstar:{ID1}"])
    want = apogee_truth["apstar"][ID1]
    assert spectra.source_id.tolist() == [ID1] and spectra.unit == "Angstrom" and spectra.medium == "vacuum"
    np.testing.assert_allclose(spectra.wavelength, apogee_truth["wavelength"], rtol=1e-9, atol=0)
    assert spectra.wavelength[0] == pytest.approx(15100.8015, abs=1e-4)
    np.testing.assert_array_equal(spectra.mask[0], want["mask"][0])
    np.testing.assert_array_equal(spectra.flux[0], want["flux"][0])
    np.testing.assert_allclose(spectra.ivar[0], _ivar(want["sigma"][0], want["mask"][0]), rtol=1e-12)
    assert spectra.meta["snr"].tolist() == [150.0] and spectra.meta["vhelio"].tolist() == [12.5]
    assert spectra.meta["nvisits"].tolist() == [3]
    # NaN gaps, BAD bits, error 2e5, error 0, flux 0 are all masked; warning bits alone are not
    bits = want["bitmask"][0]
    assert spectra.mask[0][np.isnan(want["flux"][0])].all()
    warn_only = (bits & ((1 << 9) | (1 << 12) | (1 << 13)) != 0) & (bits & 0x40FF == 0)
    assert warn_only.any() and not spectra.mask[0][warn_only].any()


def test_apstar_visit_row_and_bad_bits_option(apogee_plugins, apogee_files, apogee_truth) -> None:
    cls = apogee_plugins.readers.get("apogee_apstar")
    spectra = cls({"row": 3, "bad_bits": ["BADPIX", "SIG_SKYLINE", 13]}).read(apogee_files[f"apstar:{ID1}"])
    want = apogee_truth["apstar"][ID1]
    flux, sigma, bits = want["flux"][3], want["sigma"][3], want["bitmask"][3]
    mask = (flux == 0) | (sigma > 1e5) | ((bits & ((1 << 0) | (1 << 12) | (1 << 13))) != 0)
    np.testing.assert_array_equal(spectra.mask[0], mask)
    np.testing.assert_array_equal(spectra.flux[0], flux)
    assert spectra.meta["snr"][0] == pytest.approx(150 / 1.5 + 2)  # SNRVIS2: row 3 is the second visit
    assert spectra.meta["vhelio"][0] == pytest.approx(12.7)


def test_apstar_single_visit_and_missing_row(apogee_plugins, apogee_files) -> None:
    cls = apogee_plugins.readers.get("apogee_apstar")
    path = apogee_files["apstar:2M00000002+0000002"]
    assert cls({"row": 1}).read(path).mask.all()  # row 1 is all zero in single-visit files
    with pytest.raises(DataFileError, match="row=2 but HDU1 has 2 rows"):
        cls({"row": 2}).read(path)
    with pytest.raises(ValueError, match="unknown bit name"):
        cls({"bad_bits": ["BADPIXX"]})


def test_aspcapstar_round_trip(apogee_plugins, apogee_files, apogee_truth) -> None:
    spectra = apogee_plugins.readers.get("apogee_aspcapstar")().read(apogee_files["aspcapstar"])
    want = apogee_truth["aspcapstar"]
    assert spectra.source_id.tolist() == [ID1]
    np.testing.assert_allclose(spectra.wavelength, apogee_truth["wavelength"], rtol=1e-9, atol=0)
    np.testing.assert_array_equal(spectra.mask[0], want["mask"])
    np.testing.assert_array_equal(spectra.flux[0][~want["mask"]], want["flux"][~want["mask"]])
    np.testing.assert_allclose(spectra.ivar[0], _ivar(want["sigma"], want["mask"]), rtol=1e-12)
    assert np.isnan(want["flux"]).sum() == 3 and spectra.meta["snr"].tolist() == [150.0]


def test_apvisit_round_trip(apogee_plugins, apogee_files, apogee_truth, apogee_maker) -> None:
    spectra = apogee_plugins.readers.get("apogee_apvisit")().read(apogee_files["apvisit"])
    want = apogee_truth["apvisit"]
    assert spectra.source_id.tolist() == [apogee_maker.VISIT_ID]
    assert spectra.wavelength.shape == (3 * 4096,) and np.all(np.diff(spectra.wavelength) > 0)
    np.testing.assert_allclose(spectra.wavelength, want["wave"], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(spectra.flux[0], want["flux"])
    np.testing.assert_array_equal(spectra.mask[0], want["mask"])
    np.testing.assert_allclose(spectra.ivar[0], _ivar(want["sigma"], want["mask"]), rtol=1e-12)
    meta = {k: float(v[0]) for k, v in spectra.meta.items()}
    assert meta["vrel"] == pytest.approx(apogee_maker.VISIT_VREL)
    assert meta["vhelio"] == pytest.approx(meta["vrel"] + meta["bc"]) and meta["snr"] == pytest.approx(75.0)


def test_gaia_file_given_to_apstar_reader_names_the_layout(apogee_plugins, tmp_path: Path) -> None:

    gen = Path(__file__).resolve().parents[2] / "data" / "starlabel_gaia" / "make_xp_library.py"
    module = load_script(gen)
    path = module.write(tmp_path)
    for name in ("apogee_apstar", "apogee_apvisit", "apogee_aspcapstar"):
        with pytest.raises(DataFileError, match="Expected layout") as info:
            apogee_plugins.readers.get(name)().read(path)
        assert str(path) in str(info.value)


def test_truncated_and_missing_files(apogee_plugins, apogee_files, tmp_path: Path) -> None:
    data = apogee_files[f"apstar:{ID1}"].read_bytes()
    truncated = tmp_path / f"apStar-dr17-{ID1}.fits"
    truncated.write_bytes(data[: len(data) // 3])
    gz = tmp_path / "apVisit-cut.fits.gz"
    gz.write_bytes(gzip.compress(apogee_files["apvisit"].read_bytes())[:5000])
    reader = apogee_plugins.readers.get("apogee_apstar")()
    with pytest.raises(DataFileError, match=re.escape(truncated.name)):
        reader.read(truncated)
    with pytest.raises(DataFileError):
        apogee_plugins.readers.get("apogee_apvisit")().read(gz)
    with pytest.raises(DataFileError, match="no such file"):
        reader.read(tmp_path / "absent.fits")
