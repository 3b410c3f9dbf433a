"""Regressions found by the reader fuzzer (tests/contracts/test_fuzz_readers.py) in the APOGEE readers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from starlabel.errors import DataFileError
from starlabel.testing import edit_fits_card
from starlabel_apogee import apstar, aspcapstar
from starlabel_apogee.apstar import ApogeeApStar
from starlabel_apogee.apvisit import ApogeeApVisit
from starlabel_apogee.aspcapstar import ApogeeAspcapStar


def mutated(original: Path, folder: Path, hdu: int, key: str, value: str | None) -> Path:
    """A copy of ``original`` (same name) with one header card rewritten."""
    path = folder / original.name
    path.write_bytes(edit_fits_card(original.read_bytes(), hdu, key, value))
    return path


def test_unparsable_header_card_is_a_data_file_error(apogee_files: dict[str, Path], tmp_path: Path) -> None:
    """Was an uncaught astropy VerifyError, raised where the reader first looked the keyword up."""
    path = mutated(apogee_files["aspcapstar"], tmp_path, 0, "OBJID", "'unterminated")
    expected = (
        re.escape(f"{path}: HDU0 card 'OBJID' cannot be parsed (")
        + ".+"
        + re.escape(f"): the header is corrupt. {aspcapstar.LAYOUT}")
    )
    with pytest.raises(DataFileError, match=f"^{expected}$"):
        ApogeeAspcapStar().read(path)


def test_absurd_naxis_is_refused_before_astropy(apogee_files: dict[str, Path], tmp_path: Path) -> None:
    """Was a hang: astropy builds a list of NAXIS = 10**18 axis lengths (and eats memory) before any check."""
    path = mutated(apogee_files["aspcapstar"], tmp_path, 3, "NAXIS", "1000000000000000000")
    started = time.perf_counter()
    with pytest.raises(DataFileError) as caught:
        ApogeeAspcapStar().read(path)
    assert time.perf_counter() - started < 5
    assert str(caught.value) == (
        f"{path}: cannot read as FITS: HDU3 NAXIS = 1000000000000000000: the FITS standard allows an integer "
        f"from 0 to 999. {aspcapstar.LAYOUT}"
    )


def test_absurd_naxis2_is_refused_before_allocating(apogee_files: dict[str, Path], tmp_path: Path) -> None:
    path = mutated(apogee_files["apstar:2M00000002+0000002"], tmp_path, 1, "NAXIS2", "1000000000000")
    with pytest.raises(DataFileError) as caught:
        ApogeeApStar().read(path)
    message = str(caught.value)
    assert message.startswith(
        f"{path}: cannot read as FITS: HDU1 declares 34300000000000000 bytes of data (BITPIX = -32, "
        "NAXIS1 = 8575, NAXIS2 = 1000000000000) but only "
    )
    assert message.endswith(
        f" bytes follow its header: the file is truncated or a dimension keyword is corrupt. {apstar.LAYOUT}"
    )


def test_overflowing_wavelength_keywords_are_refused(apogee_files: dict[str, Path], tmp_path: Path) -> None:
    """Was a Spectra with infinite wavelengths on good pixels (10**(1e10 + ...))."""
    path = mutated(apogee_files["apstar:2M00000002+0000002"], tmp_path, 1, "CRVAL1", "1E10")
    with pytest.raises(DataFileError) as caught:
        ApogeeApStar().read(path)
    assert str(caught.value) == (
        f"{path}: wavelength keywords CRVAL1=10000000000.0, CDELT1=6e-06, CRPIX1=1.0 give wavelengths "
        "10**(CRVAL1 + CDELT1 * (i + 1 - CRPIX1)) that overflow or vanish (APOGEE: CRVAL1 = 4.179, "
        f"CDELT1 = 6e-6). {apstar.LAYOUT}"
    )


def test_apvisit_table_id_column_turned_into_numbers(apogee_files: dict[str, Path], tmp_path: Path) -> None:
    """Was an uncaught ValueError (truth value of an array): a corrupt TFORM1 made HDU11's APOGEE_ID an array."""
    path = mutated(apogee_files["apvisit"], tmp_path, 11, "TFORM1", "'18E'")
    spectra = ApogeeApVisit().read(path)
    assert spectra.source_id.tolist() == ["2M00000004+0000004"]  # from the HDU0 OBJID keyword


def test_sound_files_still_read(apogee_files: dict[str, Path]) -> None:
    spectra = ApogeeApStar().read(apogee_files["apstar:2M00000002+0000002"])
    assert np.all(np.isfinite(spectra.wavelength))
