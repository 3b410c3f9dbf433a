"""The ``gaia_rvs_dr3`` reader: generated bulk/DataLink/zip files round-trip exactly; damage is reported."""

from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from pydantic import ValidationError

from starlabel.errors import DataFileError, MissingColumnError
from starlabel.testing import real_data
from starlabel_gaia.rvs import GaiaRvsDr3

REAL_RVS = "gaiaspec_gaia_rvs"
REAL_IDS = {
    "Kepler-93.csv": 2052747119115620352,
    "GaiaDR3-1535964555128078720.csv": 1535964555128078720,
    "KOI-001.csv": 2131314401800665344,
    "HD176650.csv": 4268620287278693120,
    "GaiaDR3-3174658066485297152.csv": 3174658066485297152,
    "Kepler-409.csv": 2128215909315876352,
}
"""The six real DataLink CSVs and their source ids (per the folder's README)."""


@pytest.fixture(scope="module")
def truth(rvs_maker: ModuleType) -> dict[str, np.ndarray]:
    return rvs_maker.truth()


@pytest.fixture(scope="module")
def bulk(rvs_maker: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rvs_maker.write_bulk(tmp_path_factory.mktemp("bulk"))


def read_all(path: Path, **options: object):  # type: ignore[no-untyped-def]
    return GaiaRvsDr3({"min_valid_pixels": 0, **options}).read(path)


def assert_matches(spectra, truth: dict[str, np.ndarray], rows: np.ndarray | list[int]) -> None:  # type: ignore[no-untyped-def]
    """Ids, grid, flux, ivar, mask and meta exactly as written for ``rows`` of the truth."""
    rows = np.asarray(rows)
    assert spectra.source_id.dtype == np.int64
    np.testing.assert_array_equal(spectra.source_id, truth["source_id"][rows])
    assert spectra.wavelength.shape == (2401,) and spectra.wavelength.dtype == np.float64
    np.testing.assert_array_equal(spectra.wavelength, 846.0 + 0.01 * np.arange(2401))
    assert (spectra.unit, spectra.medium) == ("nm", "vacuum")
    flux = truth["flux"][rows].astype(np.float64)
    sigma = truth["flux_error"][rows].astype(np.float64)
    np.testing.assert_array_equal(spectra.flux, flux)  # NaN where NaN was written
    good = np.isfinite(flux) & np.isfinite(sigma) & (sigma > 0)
    np.testing.assert_array_equal(spectra.ivar[good], 1.0 / sigma[good] ** 2)
    assert np.all(spectra.ivar[~good] == 0)
    np.testing.assert_array_equal(spectra.mask, ~good)
    for key in ("solution_id", "combined_transits", "combined_ccds", "deblended_ccds"):
        np.testing.assert_array_equal(spectra.meta[key], truth[key][rows].astype(np.int64))
    for key in ("ra", "dec"):
        np.testing.assert_array_equal(spectra.meta[key], truth[key][rows])


# --------------------------------------------------------------------------------------------------- bulk
def test_bulk_round_trips_exactly(bulk: Path, truth: dict[str, np.ndarray]) -> None:
    spectra = read_all(bulk)
    assert len(spectra) == 50 and spectra.problems == []
    assert_matches(spectra, truth, np.arange(50))
    assert np.all(spectra.source_id > 2**53)
    np.testing.assert_array_equal(spectra.source_id >> 43 <= 3111, True)  # in the file's HEALPix range


def test_bulk_spellings_of_missing_and_exponents(bulk: Path, rvs_maker: ModuleType, truth: dict) -> None:
    text = gzip.decompress(bulk.read_bytes())
    assert b"NaN," in text and b"null," in text and b"9.5E-4" in text
    spectra = read_all(bulk)
    row, pixel = rvs_maker.EXPONENT_CELL
    assert spectra.ivar[row, pixel] == 1.0 / np.float64(np.float32(9.5e-4)) ** 2
    edges = np.flatnonzero(~np.isfinite(truth["flux"]).all(axis=1))
    assert edges.size > 5 and np.all(spectra.mask[edges].any(axis=1))
    assert not np.any(spectra.mask[:, 2000:2300])  # never interior (except the sparse row's hole below)


def test_bulk_default_skips_sparse_spectra(bulk: Path, rvs_maker: ModuleType, truth: dict) -> None:
    spectra = GaiaRvsDr3().read(bulk)
    low = rvs_maker.LOW_VALID_ROW
    keep = [i for i in range(50) if i != low]
    assert_matches(spectra, truth, keep)
    assert len(spectra.problems) == 1
    assert f"source_id {truth['source_id'][low]} has 901 valid pixels" in spectra.problems[0]
    assert str(bulk) in spectra.problems[0] and "min_valid_pixels = 1000" in spectra.problems[0]


def test_bulk_plain_text_and_without_prefetch(rvs_maker: ModuleType, tmp_path: Path, truth: dict) -> None:
    plain = rvs_maker.write_bulk(tmp_path, name="RvsMeanSpectrum_000000-003111.csv", compress=False)
    assert_matches(read_all(plain), truth, np.arange(50))
    gz = rvs_maker.write_bulk(tmp_path)
    assert_matches(read_all(gz, prefetch=False), truth, np.arange(50))


def test_wrong_pixel_count_row_is_skipped_and_reported(rvs_maker: ModuleType, tmp_path: Path, truth: dict) -> None:
    path = rvs_maker.write_bulk(tmp_path, wrong_length_rows=(7, 30))
    spectra = read_all(path)
    assert_matches(spectra, truth, [i for i in range(50) if i not in (7, 30)])
    lines = gzip.decompress(path.read_bytes()).split(b"\n")
    for row in (7, 30):
        number = next(i + 1 for i, line in enumerate(lines) if line.startswith(b"%d," % truth["source_id"][row]))
        assert any(
            f"{path}: line {number} (source_id {truth['source_id'][row]}): flux has 2400 values and flux_error "
            "2400 values, expected 2401 each; row skipped" == p
            for p in spectra.problems
        ), spectra.problems


def test_file_of_wrong_length_rows_raises(rvs_maker: ModuleType, tmp_path: Path) -> None:
    path = rvs_maker.write_bulk(tmp_path, n=4, wrong_length_rows=range(4))
    with pytest.raises(
        DataFileError, match=r"every row has flux/flux_error arrays of 2400 and 2400 values, not 2401"
    ) as error:
        GaiaRvsDr3().read(path)
    assert str(path) in str(error.value) and "RvsMeanSpectrum_NNNNNN-MMMMMM.csv.gz" in str(error.value)


def complete_rows(compressed: bytes) -> int:
    """Data rows that end with a newline in the decompressible part of a (truncated) gzip stream."""
    text = zlib.decompressobj(wbits=31).decompress(compressed)
    return sum(1 for line in text.split(b"\n")[:-1] if line[:1].isdigit())


@pytest.mark.parametrize("fraction", [0.3, 0.77, 0.999])
def test_truncated_gzip_keeps_complete_rows(bulk: Path, tmp_path: Path, truth: dict, fraction: float) -> None:
    data = bulk.read_bytes()
    cut = tmp_path / bulk.name
    cut.write_bytes(data[: int(len(data) * fraction)])
    expected = complete_rows(cut.read_bytes())
    assert 0 < expected < 50
    spectra = read_all(cut)
    assert_matches(spectra, truth, np.arange(expected))
    (problem,) = [p for p in spectra.problems if "truncated" in p]
    assert problem.startswith(f"{cut}: gzip stream truncated after") and f"read the {expected} complete rows" in problem


def test_truncated_before_any_row_raises(bulk: Path, tmp_path: Path) -> None:
    data = bulk.read_bytes()
    size = next(
        n
        for n in range(100, len(data), 50)
        if b"combined_ccds,deblended_ccds\n" in zlib.decompressobj(wbits=31).decompress(data[:n])
    )
    assert complete_rows(data[:size]) == 0
    cut = tmp_path / bulk.name
    cut.write_bytes(data[:size])
    assert GaiaRvsDr3.identify(cut)  # the header is enough to recognise it
    with pytest.raises(DataFileError, match="truncated after .* before the first complete row"):
        GaiaRvsDr3().read(cut)


def test_truncated_plain_text_reports_the_partial_row(rvs_maker: ModuleType, tmp_path: Path, truth: dict) -> None:
    text = gzip.decompress(rvs_maker.write_bulk(tmp_path).read_bytes())
    path = tmp_path / "RvsMeanSpectrum_000000-003111.csv"
    path.write_bytes(text[: int(len(text) * 0.5)])
    lines = path.read_bytes().split(b"\n")
    expected = sum(1 for line in lines[:-1] if line[:1].isdigit())
    spectra = read_all(path)
    assert_matches(spectra, truth, np.arange(expected))
    (problem,) = spectra.problems  # the unterminated last line cannot be told from a complete one: reported
    assert problem.startswith(f"{path}: line {len(lines)}: ") and problem.endswith("row skipped")


def test_corrupt_gzip_never_escapes_as_another_error(bulk: Path, tmp_path: Path) -> None:
    data = bytearray(bulk.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path = tmp_path / bulk.name
    path.write_bytes(bytes(data))
    try:
        spectra = read_all(path)
    except DataFileError as error:
        assert str(path) in str(error)
    else:
        assert 0 < len(spectra) < 50 and spectra.problems


def test_missing_column_names_the_layout(tmp_path: Path) -> None:
    path = tmp_path / "RvsMeanSpectrum_000000-003111.csv"
    values = ",".join(["1.0"] * 2401)
    path.write_text(f'source_id,flux,combined_transits\n4,"[{values}]",3\n')
    with pytest.raises(MissingColumnError, match="no column 'flux_error'.*expected layout"):
        GaiaRvsDr3().read(path)


def test_options() -> None:
    assert GaiaRvsDr3().options.min_valid_pixels == 1000
    with pytest.raises(ValidationError):
        GaiaRvsDr3({"min_valid_pixels": 2402})
    with pytest.raises(ValidationError):
        GaiaRvsDr3({"keep_edges": True})


# ----------------------------------------------------------------------------------------------- DataLink
@pytest.mark.parametrize("index", [0, 1, 2, 6])  # plain, NaN head, NaN tail, NaN head (row 6)
def test_datalink_csv_round_trips(rvs_maker: ModuleType, tmp_path: Path, truth: dict, index: int) -> None:
    path = rvs_maker.write_datalink_csv(tmp_path, index)
    assert path.name == f"RVS-Gaia DR3 {truth['source_id'][index]}.csv"
    spectra = read_all(path)
    assert spectra.problems == []
    assert_matches(spectra, truth, [index])


@pytest.mark.parametrize(
    "write",
    [
        lambda m, d: m.write_datalink_ecsv(d, 1),
        lambda m, d: m.write_datalink_fits(d, 1),
        lambda m, d: m.write_datalink_votable(d, 1),
        lambda m, d: m.write_datalink_votable(d, 1, binary=True),
    ],
    ids=["ecsv", "fits", "votable", "votable-binary2"],
)
def test_datalink_metadata_variants_round_trip(rvs_maker: ModuleType, tmp_path: Path, truth: dict, write) -> None:  # type: ignore[no-untyped-def]
    spectra = read_all(write(rvs_maker, tmp_path))
    assert spectra.problems == []
    rows = np.array([1])
    np.testing.assert_array_equal(spectra.source_id, truth["source_id"][rows])
    np.testing.assert_array_equal(spectra.flux, truth["flux"][rows].astype(np.float64))
    np.testing.assert_array_equal(spectra.mask, ~np.isfinite(truth["flux"][rows]))
    np.testing.assert_array_equal(spectra.meta["solution_id"], truth["solution_id"][rows])
    np.testing.assert_array_equal(spectra.meta["ra"], truth["ra"][rows])
    assert spectra.meta["combined_transits"][0] == -1  # not in these layouts' metadata


def test_datalink_csv_with_a_missing_pixel_row_is_refused(rvs_maker: ModuleType, tmp_path: Path) -> None:
    path = rvs_maker.write_datalink_csv(tmp_path, 0)
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:100] + lines[101:]))
    with pytest.raises(DataFileError, match="2400 rows that are not the 2401 pixels of the RVS grid"):
        GaiaRvsDr3().read(path)


# ---------------------------------------------------------------------------------------------------- zip
def test_zip_bundle_reads_every_rvs_member(rvs_maker: ModuleType, tmp_path: Path, truth: dict) -> None:
    path = rvs_maker.write_zip(tmp_path, (0, 1, 2), ecsv_indices=(3,))
    with zipfile.ZipFile(path) as bundle:
        names = bundle.namelist()
    assert names[1].startswith("XP_SAMPLED-Gaia DR3 ")
    spectra = read_all(path)
    np.testing.assert_array_equal(spectra.source_id, truth["source_id"][[0, 1, 2, 3]])
    np.testing.assert_array_equal(spectra.flux, truth["flux"][[0, 1, 2, 3]].astype(np.float64))
    assert spectra.problems == [f"{path}: ignored 1 members that are not RVS products: {names[1]}"]


def test_zip_member_failure_is_reported(rvs_maker: ModuleType, tmp_path: Path, truth: dict) -> None:
    path = rvs_maker.write_zip(tmp_path, (0,), with_xp=False)
    with zipfile.ZipFile(path, "a") as bundle:
        bundle.writestr("RVS-Gaia DR3 42.csv", "source_id,flux\n1,2\n")
    spectra = read_all(path)
    np.testing.assert_array_equal(spectra.source_id, truth["source_id"][[0]])
    (problem,) = spectra.problems
    assert problem.startswith(f"{path}[RVS-Gaia DR3 42.csv]: ") and problem.endswith("member skipped")


def test_zip_without_readable_rvs_member_raises(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("RVS-Gaia DR3 42.csv", "not a spectrum\n")
    with pytest.raises(DataFileError, match="no RVS member could be read"):
        GaiaRvsDr3().read(path)


# ------------------------------------------------------------------------------------------------- errors
def test_not_rvs_raises_with_the_layouts(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataFileError, match="not a Gaia DR3 RVS mean-spectrum file; expected .*RvsMeanSpectrum"):
        GaiaRvsDr3().read(path)
    with pytest.raises(DataFileError, match="no such file"):
        GaiaRvsDr3().read(tmp_path / "absent.csv.gz")


# ---------------------------------------------------------------------------------------------- real data
@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(REAL_IDS))
def test_real_datalink_csv(name: str) -> None:
    path = real_data(f"{REAL_RVS}/{name}")
    grid = real_data(f"{REAL_RVS}/gaia_rvs_wavelength.fits")
    from astropy.io import fits

    published = fits.getdata(grid).astype(np.float64)
    spectra = GaiaRvsDr3().read(path)
    assert len(spectra) == 1 and spectra.problems == []
    assert spectra.source_id.dtype == np.int64 and spectra.source_id[0] == REAL_IDS[name]
    first = path.read_text().splitlines()[1]
    assert spectra.source_id[0] == int(first.split(",")[0])  # exact, never through float64
    assert published.shape == (2401,)
    np.testing.assert_allclose(spectra.wavelength, published, rtol=0, atol=1e-9)

    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    empty = np.array([row[5] == "" for row in rows])
    np.testing.assert_array_equal(spectra.mask[0], empty)  # NaN edge pixels masked, nothing else
    assert empty.sum() <= 18 and not empty[100:2300].any()
    flux = np.array([np.float32(row[5]) if row[5] else np.nan for row in rows], dtype=np.float64)
    np.testing.assert_array_equal(spectra.flux[0], flux)
    assert spectra.meta["combined_transits"][0] == int(rows[0][7])
    assert spectra.meta["ra"][0] == float(rows[0][2])


# ------------------------------------------------------------------------------- RAW and COMBINED (unconfirmed)
def test_raw_csv_with_parenthesised_arrays(truth: dict, tmp_path: Path) -> None:
    """DataLink RAW CSV style: ``"(v1, v2, ...)"`` with spaces (the fallback parser), no ECSV header."""
    lines = ["source_id,solution_id,ra,dec,flux,flux_error,combined_transits,combined_ccds,deblended_ccds"]
    for row in (0, 1):
        arrays = [
            ", ".join("" if np.isnan(v) else repr(float(v)) for v in truth[k][row]) for k in ("flux", "flux_error")
        ]
        lines.append(
            f"{truth['source_id'][row]},{truth['solution_id'][row]},{float(truth['ra'][row])!r},"
            f'{float(truth["dec"][row])!r},"({arrays[0]})","({arrays[1]})",{truth["combined_transits"][row]},'
            f"{truth['combined_ccds'][row]},{truth['deblended_ccds'][row]}"
        )
    path = tmp_path / "RVS_RAW.csv"
    path.write_text("\n".join(lines) + "\n")
    assert GaiaRvsDr3.identify(path)
    spectra = read_all(path)
    assert spectra.problems == []
    assert_matches(spectra, truth, [0, 1])


def test_raw_fits_with_array_columns(truth: dict, tmp_path: Path) -> None:
    from astropy.io import fits

    rows = [3, 4, 5]
    columns = [
        fits.Column(name="source_id", format="K", array=truth["source_id"][rows]),
        fits.Column(name="solution_id", format="K", array=truth["solution_id"][rows]),
        fits.Column(name="ra", format="D", array=truth["ra"][rows]),
        fits.Column(name="dec", format="D", array=truth["dec"][rows]),
        fits.Column(name="flux", format="2401E", array=truth["flux"][rows]),
        fits.Column(name="flux_error", format="2401E", array=truth["flux_error"][rows]),
    ] + [
        fits.Column(name=k, format="I", array=truth[k][rows])
        for k in ("combined_transits", "combined_ccds", "deblended_ccds")
    ]
    path = tmp_path / "RVS_RAW.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(path)
    assert GaiaRvsDr3.identify(path)
    spectra = read_all(path)
    assert spectra.problems == []
    assert_matches(spectra, truth, rows)


def test_combined_datalink_csv(rvs_maker: ModuleType, truth: dict, tmp_path: Path) -> None:
    first = rvs_maker.datalink_csv_text(0)
    second = rvs_maker.datalink_csv_text(2).split(b"\n", 1)[1]
    path = tmp_path / "RVS_COMBINED.csv"
    path.write_bytes(first + second)
    spectra = read_all(path)
    assert spectra.problems == []
    assert_matches(spectra, truth, [0, 2])
