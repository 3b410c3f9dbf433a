"""``gaia_rvs_dr3.identify``: true for every RVS layout, false for XP products, the XP library and junk."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from starlabel.identify import choose_reader
from starlabel.testing import real_data
from starlabel_gaia.rvs import GaiaRvsDr3
from starlabel_gaia.xp_sampled import GaiaXpSampled

REAL_RVS = ("Kepler-93.csv", "GaiaDR3-1535964555128078720.csv", "HD176650.csv")
DATALINK_ZIPS = [
    f"gaia_dr3_source_id_5937083312263887616_dl_products_{kind}.zip" for kind in ("csv", "ecsv", "fits", "vot")
]
GAIAXPY_FILES = [
    "xp_continuous/XP_CONTINUOUS_RAW.csv",
    "xp_continuous/XP_CONTINUOUS_RAW.ecsv",
    "xp_continuous/XP_CONTINUOUS_RAW.fits",
    "xp_continuous/XP_CONTINUOUS_RAW.xml",
    "xp_continuous/XP_CONTINUOUS_RAW_plain.xml",
    "xp_sampled/XP_SAMPLED_RAW_dr3int6.csv",
    "xp_sampled/XP_SAMPLED_RAW_dr3int6.ecsv",
    "xp_sampled/XP_SAMPLED_RAW_dr3int6.fits",
    "xp_sampled/XP_SAMPLED_RAW_votable_dr3int6.xml",
    "xp_sampled/XP_SAMPLED_RAW_votable_plain_dr3int6.xml",
    "mini_files/XP_SPECTRA_RAW_mini.csv",
    "spss/SPSS_2nm.csv",
]


@pytest.fixture(scope="module")
def rvs_files(rvs_maker: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every generated RVS layout, by name."""
    out = tmp_path_factory.mktemp("rvs")
    csv = rvs_maker.write_datalink_csv(out / "csv", 0)
    gz = out / "gz" / (csv.name + ".gz")
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(csv.read_bytes(), mtime=0))
    return {
        "bulk.csv.gz": rvs_maker.write_bulk(out / "bulk"),
        "bulk.csv": rvs_maker.write_bulk(out / "plain", name="RvsMeanSpectrum_000000-003111.csv", compress=False),
        "bulk-wrong-lengths": rvs_maker.write_bulk(out / "wrong", n=3, wrong_length_rows=range(3)),
        "datalink.csv": csv,
        "datalink.csv.gz": gz,
        "datalink.ecsv": rvs_maker.write_datalink_ecsv(out / "ecsv", 0),
        "datalink.fits": rvs_maker.write_datalink_fits(out / "fits", 0),
        "datalink.xml": rvs_maker.write_datalink_votable(out / "xml", 0),
        "datalink-binary2.xml": rvs_maker.write_datalink_votable(out / "bin", 0, binary=True),
        "bundle.zip": rvs_maker.write_zip(out / "zip"),
    }


NAMES = [
    "bulk.csv.gz",
    "bulk.csv",
    "bulk-wrong-lengths",
    "datalink.csv",
    "datalink.csv.gz",
    "datalink.ecsv",
    "datalink.fits",
    "datalink.xml",
    "datalink-binary2.xml",
    "bundle.zip",
]


@pytest.mark.parametrize("name", NAMES)
def test_rvs_layouts_identified_and_chosen(rvs_files: dict[str, Path], gaia_plugins, name: str) -> None:  # type: ignore[no-untyped-def]
    path = rvs_files[name]
    assert GaiaRvsDr3.identify(path) is True
    assert GaiaXpSampled.identify(path) is False  # the XP library reader does not claim RVS files
    assert choose_reader(path, gaia_plugins.readers) is GaiaRvsDr3
    assert gaia_plugins.readers.get("gaia_rvs_dr3") is GaiaRvsDr3


def test_xp_library_is_not_rvs(xp_library: Path, gaia_plugins) -> None:  # type: ignore[no-untyped-def]
    assert GaiaRvsDr3.identify(xp_library) is False
    assert choose_reader(xp_library, gaia_plugins.readers) is GaiaXpSampled


def test_junk_and_near_misses(junk_files: list[Path], tmp_path: Path, rvs_files: dict[str, Path], rvs_maker) -> None:  # type: ignore[no-untyped-def]
    for path in junk_files:
        assert GaiaRvsDr3.identify(path) is False, path.name
    renamed = tmp_path / "spectrum.txt"
    renamed.write_bytes(rvs_files["datalink.csv"].read_bytes())
    assert GaiaRvsDr3.identify(renamed) is False  # not an archive suffix
    xp_like = tmp_path / "XpSampledMeanSpectrum_000000-003111.csv"
    values = ",".join(["1.0E-17"] * 343)
    xp_like.write_text(f'source_id,solution_id,ra,dec,flux,flux_error\n1,2,3.0,4.0,"[{values}]","[{values}]"\n')
    assert GaiaRvsDr3.identify(xp_like) is False  # 343-value arrays and no RVS-only column
    shifted = tmp_path / "shifted.csv"
    shifted.write_text("source_id,wavelength,flux,flux_error\n1,336.0,1.0,0.1\n")
    assert GaiaRvsDr3.identify(shifted) is False  # per-pixel, but not starting at 846 nm
    half = tmp_path / "RvsMeanSpectrum_000000-003111.csv.gz"
    half.write_bytes(rvs_files["bulk.csv.gz"].read_bytes()[:300])  # not even the header line
    assert GaiaRvsDr3.identify(half) is False
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("XP_SAMPLED-Gaia DR3 1.csv", "source_id\n1\n")
    assert GaiaRvsDr3.identify(bundle) is False


@pytest.mark.realdata
@pytest.mark.parametrize("name", REAL_RVS)
def test_real_rvs_csv_identified(name: str, gaia_plugins) -> None:  # type: ignore[no-untyped-def]
    path = real_data(f"gaiaspec_gaia_rvs/{name}")
    assert GaiaRvsDr3.identify(path) is True
    assert GaiaXpSampled.identify(path) is False
    assert choose_reader(path, gaia_plugins.readers) is GaiaRvsDr3


@pytest.mark.realdata
@pytest.mark.parametrize("name", DATALINK_ZIPS)
def test_real_xp_datalink_products_are_not_rvs(name: str, tmp_path: Path) -> None:
    bundle = real_data(f"astroquery_gaia_datalink/{name}")
    assert GaiaRvsDr3.identify(bundle) is False
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path)
    members = sorted(tmp_path.iterdir())
    assert {m.name.split("-")[0] for m in members} == {"MCMC_MSC", "XP_SAMPLED", "XP_CONTINUOUS"}
    for member in members:
        assert GaiaRvsDr3.identify(member) is False, member.name


@pytest.mark.realdata
@pytest.mark.parametrize("name", GAIAXPY_FILES)
def test_real_gaiaxpy_files_are_not_rvs(name: str) -> None:
    assert GaiaRvsDr3.identify(real_data(f"gaiaxpy_tests_xp/{name}")) is False


@pytest.mark.realdata
def test_real_xp_library_is_not_rvs(real_xp_library: Path) -> None:
    assert GaiaRvsDr3.identify(real_xp_library) is False
