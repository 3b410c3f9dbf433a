"""The ``gaia_xp_sampled`` reader on generated library-layout files and on the real library subset."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from pydantic import ValidationError

from starlabel.errors import DataFileError, MissingColumnError
from starlabel_gaia.xp_sampled import GaiaXpSampled

KEEP = np.array([i for i in range(42) if i not in (5, 17)])


# ----------------------------------------------------------------------------------------- generated file
def test_registered_and_chosen_for_the_library(gaia_plugins, xp_library: Path) -> None:
    from starlabel.identify import choose_reader

    assert gaia_plugins.readers.get("gaia_xp_sampled") is GaiaXpSampled
    assert gaia_plugins.readers.entry("gaia_xp_sampled").plugin == "starlabel_gaia"
    assert choose_reader(xp_library, gaia_plugins.readers) is GaiaXpSampled


def test_ids_grid_and_meta(xp_library: Path, xp_maker: ModuleType) -> None:
    truth = xp_maker.make_columns()
    spectra = GaiaXpSampled().read(xp_library)
    assert len(spectra) == 40
    assert spectra.source_id.dtype == np.int64
    np.testing.assert_array_equal(spectra.source_id, truth["gaiaedr3_source_id"][KEEP])
    assert spectra.wavelength.shape == (343,) and spectra.wavelength.dtype == np.float64
    assert spectra.wavelength[0] == 336.0 and spectra.wavelength[-1] == 1020.0
    np.testing.assert_array_equal(np.diff(spectra.wavelength), 2.0)
    assert (spectra.unit, spectra.medium) == ("nm", "vacuum")
    np.testing.assert_array_equal(spectra.meta["medflux"], truth["medflux"][KEEP].astype(np.float64))
    np.testing.assert_array_equal(spectra.meta["snr"], truth["snr"][KEEP].astype(np.float64))


def test_flux_ivar_mask_as_written(xp_library: Path, xp_maker: ModuleType) -> None:
    truth = xp_maker.make_columns()
    spectra = GaiaXpSampled().read(xp_library)
    flux = truth["flux"][KEEP].astype(np.float64)
    sigma = truth["flux_error"][KEEP].astype(np.float64)
    assert spectra.flux.dtype == np.float64 and spectra.flux.shape == (40, 343)
    np.testing.assert_array_equal(spectra.flux, flux)  # NaN where NaN was written
    good = np.isfinite(sigma) & (sigma > 0)
    np.testing.assert_array_equal(spectra.ivar[good], 1.0 / sigma[good] ** 2)
    assert spectra.ivar[2, 20] == 0.0 and spectra.ivar[2, 21] == 0.0  # error 0 and NaN
    expected_mask = np.zeros((40, 343), bool)
    expected_mask[1, 10] = expected_mask[2, 20] = expected_mask[2, 21] = True
    np.testing.assert_array_equal(spectra.mask, expected_mask)


def test_null_ids_skipped_and_reported(xp_library: Path, xp_maker: ModuleType) -> None:
    truth = xp_maker.make_columns()
    spectra = GaiaXpSampled().read(xp_library)
    problems = spectra.problems
    assert xp_maker.TNULL not in spectra.source_id
    assert len(problems) == 2
    for line, row in zip(problems, (5, 17), strict=True):
        assert str(xp_library) in line and f"row {row}" in line and "null" in line and "skipped" in line
        assert truth["apogee_id"][row] in line


def test_apogee_id_option_gives_string_ids(xp_library: Path, xp_maker: ModuleType) -> None:
    truth = xp_maker.make_columns()
    spectra = GaiaXpSampled({"id_column": "apogee_id"}).read(xp_library)
    problems = spectra.problems
    assert spectra.source_id.dtype.kind == "U"
    np.testing.assert_array_equal(spectra.source_id, truth["apogee_id"])
    assert problems == []
    with pytest.raises(ValidationError):
        GaiaXpSampled({"id_column": "source_id"})


def test_wrong_array_length(tmp_path: Path, xp_maker: ModuleType) -> None:
    path = xp_maker.write(tmp_path, n_pixels=300)
    assert GaiaXpSampled.identify(path)  # the right reader, so the user sees the real problem
    with pytest.raises(DataFileError) as error:
        GaiaXpSampled().read(path)
    message = str(error.value)
    assert str(path) in message and "'flux'" in message and "300" in message and "343" in message


@pytest.mark.parametrize("column", ["medflux", "gaiaedr3_source_id", "flux_error"])
def test_missing_column(tmp_path: Path, xp_maker: ModuleType, column: str) -> None:
    path = xp_maker.write(tmp_path, drop=[column])
    with pytest.raises(MissingColumnError) as error:
        GaiaXpSampled().read(path)
    message = str(error.value)
    assert str(path) in message and repr(column) in message
    assert "Expected layout" in message and "343-element 'flux'" in message
    assert "Columns in the file: apogee_id" in message


# ------------------------------------------------------------------------------------------ identification
def _junk_files(folder: Path, library: Path) -> dict[str, Path]:
    from astropy.io import fits
    from astropy.table import Table

    files = {
        "nonexistent": folder / "absent.fits.gz",
        "directory": folder / "a_folder.fits",
        "empty": folder / "empty.fits",
        "junk": folder / "junk.fits",
        "gz_junk": folder / "junk.fits.gz",
        "truncated_gz": folder / "truncated.fits.gz",
        "csv": folder / "table.csv",
        "image_only": folder / "image.fits",
        "other_table": folder / "other.fits",
    }
    files["directory"].mkdir()
    files["empty"].write_bytes(b"")
    files["junk"].write_bytes(np.random.default_rng(1).bytes(5000))
    files["gz_junk"].write_bytes(b"\x1f\x8b" + np.random.default_rng(2).bytes(5000))
    files["truncated_gz"].write_bytes(library.read_bytes()[:300])
    files["csv"].write_text("source_id,flux,flux_error,medflux\n1,2,3,4\n")
    fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(files["image_only"])
    Table({"source_id": [1], "flux": [[1.0, 2.0]], "flux_error": [[0.1, 0.1]]}).write(files["other_table"])
    return files


def test_identify_rejects_everything_else_without_raising(tmp_path: Path, xp_library: Path) -> None:
    for what, path in _junk_files(tmp_path, xp_library).items():
        assert GaiaXpSampled.identify(path) is False, what
        assert GaiaXpSampled.identify(str(path)) is False, what


def test_identify_accepts_library_compressed_or_not(tmp_path: Path, xp_library: Path) -> None:
    assert GaiaXpSampled.identify(xp_library) is True
    plain = tmp_path / "plain.fits"
    with gzip.open(xp_library, "rb") as source, open(plain, "wb") as target:
        shutil.copyfileobj(source, target)
    assert GaiaXpSampled.identify(plain) is True
    assert len(GaiaXpSampled().read(plain)) == 40


# ----------------------------------------------------------------------------------------------- real file
@pytest.mark.realdata
def test_real_library_subset(real_xp_library: Path) -> None:
    assert GaiaXpSampled.identify(real_xp_library)
    spectra = GaiaXpSampled().read(real_xp_library)
    problems = spectra.problems
    assert len(spectra) == 2012 and spectra.flux.shape == (2012, 343)
    assert spectra.source_id.dtype == np.int64
    assert spectra.source_id[:3].tolist() == [5853418002145112704, 791885458491547264, 1853702563498233600]
    assert spectra.flux[0, 0] == pytest.approx(0.20497893, rel=1e-7)
    assert np.all(spectra.ivar > 0) and not spectra.mask.any()
    # Fact about this file worth pinning: its 'snr' is the median XP S/N of the row, not APOGEE's S/N.
    xp_snr = np.median(spectra.flux * np.sqrt(spectra.ivar), axis=1)
    np.testing.assert_allclose(spectra.meta["snr"], xp_snr, rtol=1e-5)
    # One star appears twice in the subset (the full library repeats 321 source ids); reported, kept.
    assert len(problems) == 1 and "478940672292105856" in problems[0]
