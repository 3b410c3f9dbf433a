"""Regressions found by the reader fuzzer (tests/contracts/test_fuzz_readers.py) in the Gaia readers."""

from __future__ import annotations

import gzip
import io
import re
import time
import tracemalloc
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from astropy.io import fits

from starlabel.errors import DataFileError
from starlabel.testing import edit_fits_card
from starlabel_gaia import rvs_pixels, xp_archive_sampled
from starlabel_gaia.rvs import GaiaRvsDr3
from starlabel_gaia.xp_sampled import GaiaXpSampled


def utf8_flagged_zip(path: Path, member: str, payload: bytes) -> Path:
    """A zip whose one member name is flagged UTF-8 (general purpose bit 11) but holds the byte 0xFF."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr(member, payload)
    data = bytearray(buffer.getvalue())
    entry = data.rfind(b"PK\x01\x02")  # the central directory entry, which zipfile reads names from
    data[entry + 8 : entry + 10] = (0x800).to_bytes(2, "little")
    data[entry + 46 + 3] = 0xFF  # 4th byte of the name
    path.write_bytes(bytes(data))
    return path


def test_rvs_fits_absurd_naxis2_is_refused_before_allocating(rvs_maker: ModuleType, tmp_path: Path) -> None:
    """Was an uncaught MemoryError: astropy allocated the 32 GiB the corrupt NAXIS2 declares."""
    original = rvs_maker.write_datalink_fits(tmp_path / "original", 0)
    path = tmp_path / original.name
    path.write_bytes(edit_fits_card(original.read_bytes(), 1, "NAXIS2", str(2**31)))
    with fits.open(original) as hdul:
        available = original.stat().st_size - hdul.fileinfo(1)["datLoc"]
    with pytest.raises(DataFileError) as caught:
        GaiaRvsDr3().read(path)
    assert str(caught.value) == (
        f"{path}: cannot read as FITS: HDU1 declares {16 * 2**31} bytes of data (BITPIX = 8, NAXIS1 = 16, "
        f"NAXIS2 = {2**31}) but only {available} bytes follow its header: the file is truncated or a dimension "
        "keyword is corrupt"
    )


def test_rvs_csv_field_over_the_csv_limit_is_a_data_file_error(rvs_maker: ModuleType, tmp_path: Path) -> None:
    """Was an uncaught _csv.Error ("field larger than field limit (131072)")."""
    path = rvs_maker.write_datalink_csv(tmp_path, 0)
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[5].split(",")
    fields[6] = "9" * 200_000
    lines[5] = ",".join(fields)
    path.write_text("".join(lines))
    with pytest.raises(DataFileError) as caught:
        GaiaRvsDr3().read(path)
    assert str(caught.value) == (
        f"{path}: data line 6 cannot be split into CSV fields (field larger than field limit (131072)): the file "
        f"is corrupt; {rvs_pixels.LAYOUT}"
    )


def test_xp_zip_with_undecodable_member_name_is_a_data_file_error(tmp_path: Path) -> None:
    """Was an uncaught UnicodeDecodeError from zipfile."""
    path = utf8_flagged_zip(tmp_path / "bundle.zip", "XP_SAMPLED-Gaia DR3 1.csv", b"source_id,flux\n")
    with pytest.raises(DataFileError) as caught:
        GaiaXpSampled().read_archive(path)
    assert str(caught.value) == (
        f"{path}: cannot read as a zip bundle: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in "
        "position 3: invalid start byte"
    )


def zip_with_empty_member_name(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A zip holding ``members`` and, last, a member whose name is empty."""
    with zipfile.ZipFile(path, "w") as bundle:
        for name, payload in members:
            bundle.writestr(name, payload)
        bundle.writestr(zipfile.ZipInfo(""), b"x")  # a ZipInfo: writestr refuses an empty name given as text
    return path


def test_rvs_zip_with_an_empty_member_name(rvs_maker: ModuleType, tmp_path: Path) -> None:
    """Was an uncaught IndexError from ZipInfo.is_dir() (Python 3.11) on the empty name."""
    name = rvs_maker.datalink_name(int(rvs_maker.truth()["source_id"][0]), "csv")
    path = zip_with_empty_member_name(tmp_path / "bundle.zip", [(name, rvs_maker.datalink_csv_text(0))])
    spectra = GaiaRvsDr3().read(path)
    assert len(spectra) == 1
    assert f"{path}: ignored 1 members that are not RVS products: " in spectra.problems


def test_xp_zip_with_an_empty_member_name(tmp_path: Path) -> None:
    """Was an uncaught IndexError from ZipInfo.is_dir() (Python 3.11) on the empty name."""
    rows = "".join(f"4,{336 + 2 * i}.0,1.0,0.1\n" for i in range(343))
    path = zip_with_empty_member_name(
        tmp_path / "bundle.zip",
        [("XP_SAMPLED-Gaia DR3 4.csv", ("source_id,wavelength,flux,flux_error\n" + rows).encode())],
    )
    spectra = GaiaXpSampled().read(path)
    assert spectra.source_id.tolist() == [4]


def flagged_zip(path: Path, member: str, payload: bytes, flags: int) -> Path:
    """A zip of one member whose central-directory entry has general purpose ``flags`` (1: encrypted)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(member, payload)
    data = bytearray(buffer.getvalue())
    entry = data.rfind(b"PK\x01\x02")
    data[entry + 8 : entry + 10] = flags.to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("flags", "why"),
    [(1, "is encrypted, password required for extraction"), (1 << 5, "compressed patched data (flag bit 5)")],
)
def test_rvs_zip_member_flagged_encrypted_or_patched(
    rvs_maker: ModuleType, tmp_path: Path, flags: int, why: str
) -> None:
    """Was an uncaught RuntimeError / NotImplementedError from ZipFile.read."""
    name = rvs_maker.datalink_name(int(rvs_maker.truth()["source_id"][0]), "csv")
    path = flagged_zip(tmp_path / "bundle.zip", name, rvs_maker.datalink_csv_text(0), flags)
    with pytest.raises(DataFileError) as caught:
        GaiaRvsDr3().read(path)
    label = f"{path}[{name}]"
    assert str(caught.value).startswith(f"{path}: no RVS member could be read: {label}: cannot be extracted (")
    assert str(caught.value).endswith(f"{why}); member skipped")


def test_xp_zip_member_flagged_encrypted(tmp_path: Path) -> None:
    """Was an uncaught RuntimeError from ZipFile.read."""
    path = flagged_zip(tmp_path / "bundle.zip", "XP_SAMPLED-Gaia DR3 4.csv", b"source_id,flux\n", 1)
    with pytest.raises(DataFileError) as caught:
        GaiaXpSampled().read(path)
    assert str(caught.value).startswith(f"{path}: cannot read as a zip bundle: RuntimeError: File <ZipInfo ")
    assert str(caught.value).endswith("is encrypted, password required for extraction")


def test_rvs_bulk_source_id_beyond_int64_skips_the_row(rvs_maker: ModuleType, tmp_path: Path) -> None:
    """Was an uncaught OverflowError when the ids became an int64 array."""
    path = rvs_maker.write_bulk(tmp_path, n=3, compress=False)
    lines = path.read_text().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line[:1].isdigit())
    lines[first] = "9" * 30 + lines[first][lines[first].index(",") :]
    path.write_text("".join(lines))
    spectra = GaiaRvsDr3({"min_valid_pixels": 0}).read(path)
    assert len(spectra) == 2
    assert spectra.problems[0] == (
        f"{path}: line {first + 1}: source_id b'{'9' * 30}' does not fit in 64 bits; row skipped"
    )


def test_rvs_source_id_from_a_file_name_beyond_int64(rvs_maker: ModuleType, tmp_path: Path) -> None:
    """Was an uncaught OverflowError: the id in 'RVS-Gaia DR3 <id>.ecsv' (no id in the metadata) exceeded int64."""
    text = rvs_maker.datalink_ecsv_text(0).decode()
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("#   source_id:")]
    path = tmp_path / ("RVS-Gaia DR3 " + "9" * 20 + ".ecsv")
    path.write_text("".join(lines))
    with pytest.raises(DataFileError) as caught:
        GaiaRvsDr3().read(path)
    assert str(caught.value) == (
        f"{path}: no source with the 2401 RVS pixels ({path}: rows 1-2401: no source_id; skipped); {rvs_pixels.LAYOUT}"
    )


@pytest.mark.parametrize("digits", [30, 5000])
def test_xp_raw_source_id_beyond_int64_skips_the_row(tmp_path: Path, digits: int) -> None:
    """Was an uncaught OverflowError (30 digits) or ValueError (over Python's 4300-digit int limit)."""
    cells = ",".join(["1.0"] * 343)
    path = tmp_path / "XP_SAMPLED_RAW.csv"
    path.write_text(
        "source_id,solution_id,flux,flux_error\n"
        f'{"9" * digits},1,"({cells})","({cells})"\n4,1,"({cells})","({cells})"\n'
    )
    spectra = GaiaXpSampled().read(path)
    assert spectra.source_id.tolist() == [4]
    assert spectra.problems == [f"{path}: row 1: no source_id; skipped"]


def test_xp_raw_csv_array_cell_that_is_not_numbers(tmp_path: Path) -> None:
    """Was an uncaught ValueError ("could not convert string to float: '1. 5'")."""
    path = tmp_path / "XP_SAMPLED_RAW.csv"
    path.write_text('source_id,solution_id,flux,flux_error\n4,1,"(1. 5, 2.0)","(1.0, 2.0)"\n')
    with pytest.raises(DataFileError) as caught:
        GaiaXpSampled().read(path)
    assert str(caught.value) == f"{path}: row 1: column 'flux' holds '(1. 5, 2.0)', not a list of numbers"


def test_xp_per_pixel_csv_with_text_in_a_number_column(tmp_path: Path) -> None:
    """Was an uncaught ValueError ("could not convert string to float: np.str_('abc')")."""
    path = tmp_path / "XP_SAMPLED-Gaia DR3 4.csv"
    path.write_text("source_id,wavelength,flux,flux_error\n4,336.0,1.0,0.1\n4,abc,1.0,0.1\n")
    with pytest.raises(DataFileError) as caught:
        GaiaXpSampled().read(path)
    assert str(caught.value) == f"{path}: column 'wavelength' holds 'abc', not a number; {xp_archive_sampled.LAYOUT}"


@pytest.mark.parametrize(("offset", "card", "hdu"), [(10, "SIMPLE", 0), (2902, "XTENSION", 1)])
def test_xp_library_gzip_with_unparsable_structural_card_does_not_hang(
    xp_maker: ModuleType, tmp_path: Path, offset: int, card: str, hdu: int
) -> None:
    """Was a hang: astropy took the HDU as corrupt and hunted for the next header block by block, rewinding
    and re-inflating the gzip stream each time."""
    original = xp_maker.write(tmp_path / "original")
    inner = bytearray(gzip.decompress(original.read_bytes()))
    inner[offset] = 0  # a NUL inside the card's value field
    path = tmp_path / original.name
    path.write_bytes(gzip.compress(bytes(inner), compresslevel=1, mtime=0))
    image = inner[hdu * 2880 : hdu * 2880 + 80].decode("ascii").rstrip()
    started = time.perf_counter()
    with pytest.raises(DataFileError) as caught:
        GaiaXpSampled().read(path)
    assert time.perf_counter() - started < 5
    assert str(caught.value) == (
        f"{path}: cannot read as fits table: HDU{hdu} card {card} cannot be parsed ({image!r}): the header is corrupt"
    )


def test_xp_huge_text_cell_in_a_number_column_does_not_take_gigabytes(tmp_path: Path) -> None:
    """Was a 2 GB peak: numpy's astype(float64) of a column holding a 4 MB string (then a ValueError)."""
    cells = ",".join(["1.0"] * 343)
    path = tmp_path / "XP_SAMPLED_RAW.csv"
    path.write_text(f'source_id,ra,dec,flux,flux_error\n4,1.0,{"x" * 4_000_000},"({cells})","({cells})"\n')
    tracemalloc.start()
    try:
        with pytest.raises(DataFileError) as caught:
            GaiaXpSampled().read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 512 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert str(caught.value) == f"{path}: column 'dec' holds {'x' * 40!r}, not a number; {xp_archive_sampled.LAYOUT}"


def test_xp_library_gzip_with_a_damaged_stream_is_refused(xp_maker: ModuleType, tmp_path: Path) -> None:
    """Was a hang: random bytes inside the deflate stream decompressed to a garbage HDU1 header (and a CRC
    failure at the end); astropy took the garbage for HDUs block by block, rewinding the gzip stream each
    time. The garbage depends on zlib's output, so the damage here is a wrong CRC, refused the same way."""
    original = xp_maker.write(tmp_path / "original")
    packed = bytearray(original.read_bytes())
    packed[-8] ^= 0xFF  # the CRC in the gzip trailer
    path = tmp_path / original.name
    path.write_bytes(bytes(packed))
    with pytest.raises(DataFileError) as caught:
        GaiaXpSampled().read(path)
    prefix = f"{path}: cannot read as fits table: the gzip stream is corrupt or truncated (BadGzipFile: "
    assert re.fullmatch(re.escape(prefix) + r"CRC check failed 0x[0-9a-f]+ != 0x[0-9a-f]+\)", str(caught.value))


def test_xp_library_gzip_with_simple_false_does_not_hang(xp_maker: ModuleType, tmp_path: Path) -> None:
    """Was a hang: for SIMPLE = F astropy hunts through a gzip stream block by block (rewinding each time)."""
    original = xp_maker.write(tmp_path / "original")
    inner = edit_fits_card(gzip.decompress(original.read_bytes()), 0, "SIMPLE", "F")
    path = tmp_path / original.name
    path.write_bytes(gzip.compress(inner, compresslevel=1, mtime=0))
    started = time.perf_counter()
    with pytest.raises(DataFileError) as caught:
        GaiaXpSampled().read(path)
    assert time.perf_counter() - started < 5
    assert str(caught.value) == (
        f"{path}: cannot read as fits table: HDU0 SIMPLE = F: the file says it does not conform to the FITS standard"
    )


def test_xp_library_absurd_naxis2_is_refused_before_allocating(xp_maker: ModuleType, tmp_path: Path) -> None:
    """Was a DataFileError quoting a MemoryError: astropy allocated the declared 5.6 TiB first."""
    original = xp_maker.write(tmp_path / "original", name="xp_library.fits")
    path = tmp_path / original.name
    path.write_bytes(edit_fits_card(original.read_bytes(), 1, "NAXIS2", str(2**31)))
    with fits.open(original) as hdul:
        width, available = hdul[1].header["NAXIS1"], original.stat().st_size - hdul.fileinfo(1)["datLoc"]
    with pytest.raises(DataFileError) as caught:
        GaiaXpSampled().read(path)
    assert str(caught.value) == (
        f"{path}: cannot read as fits table: HDU1 declares {width * 2**31} bytes of data (BITPIX = 8, "
        f"NAXIS1 = {width}, NAXIS2 = {2**31}) but only {available} bytes follow its header: the file is "
        "truncated or a dimension keyword is corrupt"
    )
    assert "MemoryError" not in str(caught.value)


def test_sound_library_still_reads(xp_maker: ModuleType, tmp_path: Path) -> None:
    spectra = GaiaXpSampled().read(xp_maker.write(tmp_path))
    assert len(spectra) == 40 and np.all(np.isfinite(spectra.ivar))


def test_rvs_fits_column_without_ttype_is_a_missing_column(rvs_maker: ModuleType, tmp_path: Path) -> None:
    """Was an uncaught AttributeError: a BINTABLE column whose TTYPE card is gone has the name None."""
    original = rvs_maker.write_datalink_fits(tmp_path / "original", 0)
    data = original.read_bytes()
    card = re.search(rb"TTYPE3  = 'flux_error'[ ]*", data)
    assert card is not None and card.end() - card.start() == 80
    path = tmp_path / original.name
    path.write_bytes(data[: card.start()] + b" " * 80 + data[card.end() :])  # a blank card: TTYPE3 removed
    with pytest.raises(DataFileError) as caught:
        GaiaRvsDr3().read(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "flux" in str(caught.value) and "no binary table with flux and flux_error" in str(caught.value)
