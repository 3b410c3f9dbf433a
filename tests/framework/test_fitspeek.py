from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from starlabel.fitspeek import column_names, fits_structure_problem, peek_header
from starlabel.testing import edit_fits_card


def write(tmp_path: Path) -> Path:
    primary = fits.PrimaryHDU(np.zeros((3, 5), dtype=np.float32))
    primary.header["OBJECT"] = ("it's a star", "a quoted string")
    primary.header["EXPTIME"] = 1.5e3
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="source_id", format="K", array=np.arange(4)),
            fits.Column(name="flux", format="8E", array=np.ones((4, 8))),
        ]
    )
    path = tmp_path / "two.fits"
    fits.HDUList([primary, table]).writeto(path)
    return path


def test_primary_and_extension_headers_plain_and_gzip(tmp_path: Path) -> None:
    plain = write(tmp_path)
    packed = tmp_path / "two.fits.gz.renamed"  # compression is recognised from the bytes, not the name
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        primary = peek_header(path, hdu=0)
        assert primary is not None
        assert (primary["NAXIS1"], primary["NAXIS2"], primary["BITPIX"]) == (5, 3, -32)
        assert primary["OBJECT"] == "it's a star" and primary["EXPTIME"] == 1500.0 and primary["SIMPLE"] is True
        table = peek_header(path, hdu=1)
        assert table is not None and table["XTENSION"] == "BINTABLE"
        assert column_names(table) == ["source_id", "flux"]
        assert peek_header(path, hdu=2) is None


def test_junk_gives_none(tmp_path: Path, junk_files: list[Path]) -> None:
    for path in junk_files:
        assert peek_header(path, hdu=0) is None
    truncated = tmp_path / "cut.fits"
    truncated.write_bytes(write(tmp_path).read_bytes()[: 2880 + 100])
    assert peek_header(truncated, hdu=0) is not None
    assert peek_header(truncated, hdu=1) is None


def test_column_names_of_an_absurd_tfields_is_empty_not_a_hang() -> None:
    assert column_names({"TFIELDS": 2**31 - 1, "TTYPE1": "flux"}) == []
    assert column_names({"TFIELDS": -1}) == []


def test_structure_of_sound_files_plain_gzip_and_bytes(tmp_path: Path) -> None:
    plain = write(tmp_path)
    packed = tmp_path / "two.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for source in (plain, packed, plain.read_bytes(), packed.read_bytes()):
        assert fits_structure_problem(source) is None
    for not_fits in (tmp_path / "missing.fits", tmp_path, b"", b"junk" * 1000, gzip.compress(b"x")):
        assert fits_structure_problem(not_fits) is None


@pytest.mark.parametrize(
    ("hdu", "key", "value", "problem"),
    [
        (
            1,
            "NAXIS",
            "1000000000000000000",
            "HDU1 NAXIS = 1000000000000000000: the FITS standard allows an integer from 0 to 999",
        ),
        (1, "TFIELDS", "2147483647", "HDU1 TFIELDS = 2147483647: the FITS standard allows an integer from 0 to 999"),
        (0, "NAXIS2", "-3", "HDU0 NAXIS2 = -3: an axis length must be an integer >= 0"),
        (0, "BITPIX", "'x'", "HDU0 BITPIX = 'x' is not an integer"),
        (1, "PCOUNT", "-1", "HDU1 PCOUNT = -1: must be an integer >= 0"),
        (1, "GCOUNT", "0", "HDU1 GCOUNT = 0: must be an integer >= 1"),
        (0, "SIMPLE", "F", "HDU0 SIMPLE = F: the file says it does not conform to the FITS standard"),
        (
            1,
            "NAXIS2",
            "1000000000000",
            "HDU1 declares 40000000000000 bytes of data (BITPIX = 8, NAXIS1 = 40, NAXIS2 = 1000000000000) but only "
            "2880 bytes follow its header: the file is truncated or a dimension keyword is corrupt",
        ),
    ],
)
def test_structure_problems(tmp_path: Path, hdu: int, key: str, value: str, problem: str) -> None:
    data = edit_fits_card(write(tmp_path).read_bytes(), hdu, key, value)
    assert fits_structure_problem(data) == problem
    assert fits_structure_problem(gzip.compress(data)) == problem


@pytest.mark.parametrize(
    ("hdu", "key", "value"), [(0, "SIMPLE", "junk"), (1, "XTENSION", "'BINTABLE"), (1, "NAXIS1", "40 junk")]
)
def test_unparsable_structural_card_is_a_structure_problem(tmp_path: Path, hdu: int, key: str, value: str) -> None:
    data = edit_fits_card(write(tmp_path).read_bytes(), hdu, key, value)
    card = f"{key:<8}= {value:>20}"  # as edit_fits_card writes it
    assert fits_structure_problem(data) == f"HDU{hdu} card {key} cannot be parsed ({card!r}): the header is corrupt"


def test_truncated_data_unit_is_a_structure_problem(tmp_path: Path) -> None:
    data = write(tmp_path).read_bytes()
    assert fits_structure_problem(data[:-2880]) == (
        "HDU1 declares 160 bytes of data (BITPIX = 8, NAXIS1 = 40, NAXIS2 = 4) but only 0 bytes follow its header: "
        "the file is truncated or a dimension keyword is corrupt"
    )
    assert fits_structure_problem(data[:-100]) is None  # the padding of the last block may be missing


def test_damaged_gzip_stream_is_a_structure_problem(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(write(tmp_path).read_bytes()))
    packed[-8] ^= 0xFF  # the CRC in the trailer
    assert re.fullmatch(
        r"the gzip stream is corrupt or truncated \(BadGzipFile: CRC check failed 0x[0-9a-f]+ != 0x[0-9a-f]+\)",
        fits_structure_problem(bytes(packed)) or "",
    )
    assert fits_structure_problem(bytes(packed[:-100])) == (
        "the gzip stream is corrupt or truncated (EOFError: Compressed file ended before the end-of-stream marker "
        "was reached)"
    )


def test_extension_header_without_end_is_a_structure_problem(tmp_path: Path) -> None:
    data = bytearray(write(tmp_path).read_bytes())
    end = data.index(b"END" + b" " * 77, 2880)  # the END card of HDU1
    data[end : end + 3] = b"   "
    assert fits_structure_problem(bytes(data)) == "HDU1 header has no END card: the file is truncated or corrupt"
