"""Regressions found by the reader fuzzer (tests/contracts/test_fuzz_readers.py) in ``eso_sdp_1d``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from starlabel.errors import DataFileError
from starlabel.testing import edit_fits_card
from starlabel_gaiaeso.sdp1d import EsoSdp1d
from starlabel_gaiaeso.sdpfile import LAYOUT


def test_error_so_small_that_its_square_underflows_gives_ivar_0(gaiaeso_files: dict[str, Path], tmp_path: Path) -> None:
    """Was an infinite ivar on an unmasked pixel (ERR = 1e-300: 1/ERR² overflows)."""
    path = tmp_path / gaiaeso_files["hr15n:B"].name
    with fits.open(gaiaeso_files["hr15n:B"]) as hdul:  # star B: float64 columns
        hdul[1].data["err"][0, 7] = 1e-300
        hdul.writeto(path)
    spectra = EsoSdp1d().read(path)
    assert np.all(np.isfinite(spectra.ivar))
    assert spectra.ivar[0, 7] == 0.0 and spectra.ivar[0, 8] > 0


def test_absurd_tfields_neither_hangs_identify_nor_reaches_astropy(
    gaiaeso_files: dict[str, Path], tmp_path: Path
) -> None:
    """Was a hang: identify listed the names of TFIELDS = 2**31 - 1 columns."""
    path = tmp_path / gaiaeso_files["hr15n:C"].name
    path.write_bytes(edit_fits_card(gaiaeso_files["hr15n:C"].read_bytes(), 1, "TFIELDS", "2147483647"))
    started = time.perf_counter()
    assert EsoSdp1d.identify(path) is False
    with pytest.raises(DataFileError) as caught:
        EsoSdp1d().read(path)
    assert time.perf_counter() - started < 5
    assert str(caught.value) == (
        f"{path}: cannot read as FITS: HDU1 TFIELDS = 2147483647: the FITS standard allows an integer from 0 "
        f"to 999. {LAYOUT}"
    )


def test_unparsable_header_card_is_a_data_file_error(gaiaeso_files: dict[str, Path], tmp_path: Path) -> None:
    """The same lazily parsed card problem as in the APOGEE readers (VerifyError wherever a key is read)."""
    path = tmp_path / gaiaeso_files["hr15n:A"].name
    path.write_bytes(edit_fits_card(gaiaeso_files["hr15n:A"].read_bytes(), 0, "CNAME", "junk"))
    with pytest.raises(DataFileError, match=r"HDU0 card 'CNAME' cannot be parsed \(.+\): the header is corrupt\."):
        EsoSdp1d().read(path)
