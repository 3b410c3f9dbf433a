"""``gaia_xp_sampled`` on the archive's XP_SAMPLED layouts (real DataLink and GaiaXPy files), identify both ways."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pytest

from starlabel.errors import DataFileError
from starlabel.testing import real_data
from starlabel_gaia.grid import xp_sampled_wavelength
from starlabel_gaia.rvs import GaiaRvsDr3
from starlabel_gaia.xp_sampled import GaiaXpSampled

DATALINK = [f"gaia_dr3_source_id_5937083312263887616_dl_products_{k}.zip" for k in ("csv", "ecsv", "fits", "vot")]
RAW = [
    "XP_SAMPLED_RAW_dr3int6.csv",
    "XP_SAMPLED_RAW_dr3int6.ecsv",
    "XP_SAMPLED_RAW_dr3int6.fits",
    "XP_SAMPLED_RAW_votable_dr3int6.xml",
    "XP_SAMPLED_RAW_votable_plain_dr3int6.xml",
]
SOURCE = 5937083312263887616


@pytest.mark.realdata
def test_datalink_bundles_and_members(tmp_path: Path) -> None:
    reader = GaiaXpSampled()
    spectra = []
    for name in DATALINK:
        bundle = real_data(f"astroquery_gaia_datalink/{name}")
        assert GaiaXpSampled.identify(bundle) and not GaiaRvsDr3.identify(bundle)
        spectra.append(reader.read(bundle))
        with zipfile.ZipFile(bundle) as archive:
            member = next(n for n in archive.namelist() if n.startswith("XP_SAMPLED-"))
            single = tmp_path / member
            single.write_bytes(archive.read(member))
            continuous = next(n for n in archive.namelist() if n.startswith("XP_CONTINUOUS-"))
            (tmp_path / continuous).write_bytes(archive.read(continuous))
        assert GaiaXpSampled.identify(single) and not GaiaRvsDr3.identify(single)
        assert not GaiaXpSampled.identify(tmp_path / continuous)
        np.testing.assert_array_equal(reader.read(single).flux, spectra[-1].flux)
    for s in spectra:
        assert s.source_id.tolist() == [SOURCE] and s.source_id.dtype == np.int64
        assert s.flux.shape == (1, 343) and not s.mask.any()
        np.testing.assert_array_equal(s.wavelength, xp_sampled_wavelength())
        # float32 values as published (the CSV text parses to the same float32)
        np.testing.assert_array_equal(s.flux.astype(np.float32), spectra[1].flux.astype(np.float32))
        assert s.meta["solution_id"].tolist() == [4545469030156206081]
        np.testing.assert_allclose(s.meta["ra"], [251.51920772923995])
    assert np.float32(spectra[0].flux[0, 0]) == np.float32(4.3137092e-17)  # W m-2 nm-1, first pixel (336 nm)


@pytest.mark.realdata
def test_raw_layouts_agree() -> None:
    reader = GaiaXpSampled()
    out = [reader.read(real_data(f"gaiaxpy_tests_xp/xp_sampled/{name}")) for name in RAW]
    for path_name, s in zip(RAW, out, strict=True):
        assert GaiaXpSampled.identify(real_data(f"gaiaxpy_tests_xp/xp_sampled/{path_name}"))
        assert s.source_id.tolist() == [6, 4]  # anonymised in the GaiaXPy test files
        np.testing.assert_array_equal(s.flux.astype(np.float32), out[2].flux.astype(np.float32))
        np.testing.assert_array_equal(s.ivar > 0, ~s.mask)


@pytest.mark.realdata
def test_normalise_by_median_and_gzip(tmp_path: Path) -> None:
    path = real_data("gaiaxpy_tests_xp/xp_sampled/XP_SAMPLED_RAW_dr3int6.csv")
    plain = GaiaXpSampled().read(path)
    scaled = GaiaXpSampled({"normalise_by_median": True}).read(path)
    median = np.median(plain.flux, axis=1)
    np.testing.assert_allclose(scaled.meta["medflux"], median)
    np.testing.assert_allclose(scaled.flux, plain.flux / median[:, None])
    np.testing.assert_allclose(scaled.ivar, plain.ivar * median[:, None] ** 2, rtol=1e-12)
    gz = tmp_path / "XpSampledMeanSpectrum_000000-003111.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    assert GaiaXpSampled.identify(gz) and not GaiaRvsDr3.identify(gz)
    np.testing.assert_array_equal(GaiaXpSampled().read(gz).flux, plain.flux)


def test_generated_rvs_files_are_not_xp(rvs_maker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = [
        rvs_maker.write_bulk(tmp_path / "bulk"),
        rvs_maker.write_datalink_csv(tmp_path / "csv", 0),
        rvs_maker.write_datalink_ecsv(tmp_path / "ecsv", 0),
        rvs_maker.write_datalink_fits(tmp_path / "fits", 0),
        rvs_maker.write_datalink_votable(tmp_path / "xml", 0),
        rvs_maker.write_datalink_votable(tmp_path / "bin", 0, binary=True),
    ]
    for path in files:
        assert not GaiaXpSampled.identify(path), path


def test_other_grid_refused(tmp_path: Path) -> None:
    path = tmp_path / "XP_SAMPLED-Gaia DR3 42.csv"
    rows = ["source_id,solution_id,ra,dec,wavelength,flux,flux_error"]
    rows += [f"42,1,10.0,20.0,{400 + 2 * i}.0,1E-17,1E-18" for i in range(343)]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataFileError, match="343 default XP sampled wavelengths"):
        GaiaXpSampled().read(path)
