from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from astropy.io import fits

from starlabel.fitspeek import column_names, peek_header


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
