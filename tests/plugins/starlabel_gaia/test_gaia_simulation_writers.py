"""Simulation writers of ``gaia_rvs_dr3`` and ``gaia_xp_sampled``: grid, archive layout, exact round trip.

Precision of the round trip (the formats'): flux and flux_error are float32 in the files, so the flux
read back equals ``float32(flux)`` exactly, and ``ivar = 1 / float32(1/sqrt(ivar))²`` agrees with the
written ivar to 3e-7 (relative).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from astropy.table import Table

from starlabel.containers import Population, Spectra
from starlabel.errors import SimulationError
from starlabel.identify import choose_reader
from starlabel.testing import real_data
from starlabel_gaia.archive_write import ecsv_header
from starlabel_gaia.rvs import GaiaRvsDr3
from starlabel_gaia.rvs_write import COLUMNS as RVS_COLUMNS
from starlabel_gaia.rvs_write import write_rvs
from starlabel_gaia.xp_sampled import GaiaXpSampled
from starlabel_gaia.xp_write import write_xp_sampled

IVAR_RTOL = 3e-7


def population(n: int) -> Population:
    """A hand-made population of ``n`` stars with Gaia-like ids (HEALPix level-8 pixels 1000, 1100, ...)."""
    ids = (np.arange(1000, 1000 + 100 * n, 100, dtype=np.int64) << 43) + 12345
    teff = np.linspace(4500.0, 6500.0, n)
    distance = np.linspace(100.0, 900.0, n)
    return Population(
        source_id=ids,
        labels={"teff": teff, "logg": np.full(n, 4.4), "m_h": np.zeros(n), "alpha_m": np.zeros(n)},
        mass=np.ones(n),
        radius=np.ones(n),
        distance=distance,
        ra=np.linspace(10.0, 300.0, n),
        dec=np.linspace(-50.0, 50.0, n),
        parallax=1000.0 / distance,
        vrad=np.linspace(-40.0, 40.0, n),
        component=np.array(["thin"] * n),
    )


def spectra_for(reader: GaiaRvsDr3 | GaiaXpSampled, n: int, seed: int, **meta: np.ndarray) -> Spectra:
    """Spectra on the reader's simulation grid with known flux, ivar and mask, including the awkward pixels."""
    rng = np.random.default_rng(seed)
    grid = reader.simulation_grid()
    scale = 1.0 if grid.normalised else 2.0e-16
    p = grid.wavelength.size
    flux = scale * (1.0 + 0.02 * rng.standard_normal((n, p)))
    ivar = rng.uniform(0.5, 2.0, (n, p)) * 1e4 / scale**2
    mask = np.zeros((n, p), dtype=bool)
    flux[0, :3] = np.nan  # missing edge pixels, as in the archive
    ivar[min(1, n - 1), 5:9] = 0.0  # no error
    mask[min(2, n - 1), 20:25] = True  # masked, flux kept
    ivar[0, 40] = np.inf  # not a usable ivar
    return Spectra(
        source_id=reader.simulation_ids(population(n)),
        wavelength=grid.wavelength,
        flux=flux,
        ivar=ivar,
        mask=mask,
        unit=grid.unit,
        medium=grid.medium,
        meta={"vrad": np.zeros(n), "snr": np.full(n, 100.0), **meta},
    )


def expected_mask(spectra: Spectra) -> np.ndarray:
    return spectra.mask | ~np.isfinite(spectra.flux) | ~np.isfinite(spectra.ivar) | (spectra.ivar <= 0)


def assert_round_trip(written: Spectra, read: Spectra) -> None:
    np.testing.assert_array_equal(read.source_id, written.source_id)
    assert read.source_id.dtype == np.int64
    np.testing.assert_array_equal(read.wavelength, written.wavelength)
    assert read.unit == "nm" and read.medium == "vacuum"
    mask = expected_mask(written)
    np.testing.assert_array_equal(read.mask, mask)
    finite = np.isfinite(written.flux)
    np.testing.assert_array_equal(read.flux[finite], written.flux[finite].astype(np.float32).astype(np.float64))
    assert np.all(np.isnan(read.flux[~finite]))
    np.testing.assert_allclose(read.ivar[~mask], written.ivar[~mask], rtol=IVAR_RTOL)
    assert np.all(read.ivar[mask] == 0)


# ------------------------------------------------------------------------------------------------ grids
def test_rvs_simulation_grid() -> None:
    grid = GaiaRvsDr3().simulation_grid()
    assert grid.wavelength.shape == (2401,)
    assert grid.wavelength[0] == 846.0 and grid.wavelength[-1] == pytest.approx(870.0, abs=1e-9)
    np.testing.assert_allclose(np.diff(grid.wavelength), 0.01, atol=1e-9)
    assert (grid.unit, grid.medium, grid.normalised, grid.observed_frame, grid.flux_unit) == (
        "nm",
        "vacuum",
        True,
        False,
        "",
    )


def test_xp_simulation_grid() -> None:
    grid = GaiaXpSampled().simulation_grid()
    assert grid.wavelength.shape == (343,)
    assert (grid.wavelength[0], grid.wavelength[-1]) == (336.0, 1020.0)
    np.testing.assert_array_equal(np.diff(grid.wavelength), 2.0)
    assert (grid.unit, grid.medium, grid.normalised, grid.observed_frame, grid.flux_unit) == (
        "nm",
        "vacuum",
        False,
        False,
        "W m-2 nm-1",
    )


def test_default_ids_are_the_population_source_ids() -> None:
    people = population(3)
    for reader in (GaiaRvsDr3(), GaiaXpSampled()):
        np.testing.assert_array_equal(reader.simulation_ids(people), people.source_id)


# ---------------------------------------------------------------------------------------------- round trip
def test_rvs_round_trip(tmp_path: Path, gaia_plugins) -> None:  # type: ignore[no-untyped-def]
    reader = GaiaRvsDr3()
    spectra = spectra_for(reader, 4, seed=1)
    files = reader.write(spectra, tmp_path / "spectra")
    assert [f.name for f in files] == ["RvsMeanSpectrum_001000-001300.csv.gz"]  # HEALPix-8 range of the ids
    assert choose_reader(files[0], gaia_plugins.readers) is GaiaRvsDr3
    assert not GaiaXpSampled.identify(files[0])
    read = reader.read(files[0])
    assert read.problems == []
    assert_round_trip(spectra, read)
    np.testing.assert_array_equal(read.meta["solution_id"], -1)  # not in spectra.meta: left empty
    assert np.all(np.isnan(read.meta["ra"]))


def test_rvs_meta_written_when_given(tmp_path: Path) -> None:
    reader = GaiaRvsDr3()
    meta = {
        "ra": np.array([10.5, 200.25, 359.125]),
        "dec": np.array([-5.0, 0.0, 89.5]),
        "solution_id": np.full(3, 375316653866487564, dtype=np.int64),
        "combined_transits": np.array([12, 30, 7]),
    }
    spectra = spectra_for(reader, 3, seed=2, **meta)
    read = reader.read(reader.write(spectra, tmp_path)[0])
    for key, value in meta.items():
        np.testing.assert_array_equal(read.meta[key], value)
    np.testing.assert_array_equal(read.meta["combined_ccds"], -1)


def test_xp_round_trip(tmp_path: Path, gaia_plugins) -> None:  # type: ignore[no-untyped-def]
    reader = GaiaXpSampled()
    spectra = spectra_for(reader, 3, seed=3, ra=np.array([1.0, 2.0, 3.0]), dec=np.array([-1.0, 0.5, 80.0]))
    files = reader.write(spectra, tmp_path / "xp")
    assert [f.name for f in files] == ["XpSampledMeanSpectrum_001000-001200.csv.gz"]
    assert choose_reader(files[0], gaia_plugins.readers) is GaiaXpSampled
    assert not GaiaRvsDr3.identify(files[0])
    read = reader.read(files[0])
    assert_round_trip(spectra, read)
    np.testing.assert_array_equal(read.meta["ra"], [1.0, 2.0, 3.0])
    # the library convention on request: divided by the median finite flux
    median = GaiaXpSampled({"normalise_by_median": True}).read(files[0])
    np.testing.assert_allclose(median.meta["medflux"], np.nanmedian(read.flux, axis=1))


def test_files_are_valid_ecsv(tmp_path: Path) -> None:
    """astropy's own ECSV reader reads the written files: arrays of 2401 / 343 values, null = masked."""
    for reader in (GaiaRvsDr3(), GaiaXpSampled()):
        spectra = spectra_for(reader, 2, seed=4)
        path = reader.write(spectra, tmp_path / reader.name)[0]
        table = Table.read(gzip.decompress(path.read_bytes()).decode(), format="ascii.ecsv")
        assert list(table["source_id"]) == list(spectra.source_id)
        first = np.ma.filled(np.ma.asarray(table["flux"][0], dtype=np.float64), np.nan)
        assert first.shape == (spectra.flux.shape[1],)
        assert np.isnan(first[0]) and first[3] == np.float32(spectra.flux[0, 3])


# ------------------------------------------------------------------------------------------ several files
def test_writes_into_one_folder_never_collide(tmp_path: Path) -> None:
    reader = GaiaRvsDr3()
    first, second = spectra_for(reader, 3, seed=5), spectra_for(reader, 3, seed=6)
    files = reader.write(first, tmp_path) + reader.write(second, tmp_path) + reader.write(first, tmp_path)
    assert [f.name for f in files] == [
        "RvsMeanSpectrum_001000-001200.csv.gz",
        "RvsMeanSpectrum_001000-001200_2.csv.gz",
        "RvsMeanSpectrum_001000-001200_3.csv.gz",
    ]
    assert sorted(tmp_path.iterdir()) == sorted(files)  # no temporary file left behind
    assert_round_trip(second, reader.read(files[1]))
    assert files[0].read_bytes() == files[2].read_bytes()  # reproducible bytes (gzip mtime 0)


def test_many_rows_split_into_files(tmp_path: Path) -> None:
    reader = GaiaXpSampled()
    spectra = spectra_for(reader, 5, seed=7)
    files = write_xp_sampled(spectra, tmp_path, rows_per_file=2)
    assert [f.name for f in files] == [
        "XpSampledMeanSpectrum_001000-001100.csv.gz",
        "XpSampledMeanSpectrum_001200-001300.csv.gz",
        "XpSampledMeanSpectrum_001400-001400.csv.gz",
    ]
    parts = [reader.read(f) for f in files]
    assert [len(p) for p in parts] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([p.source_id for p in parts]), spectra.source_id)
    np.testing.assert_array_equal(
        np.concatenate([p.flux for p in parts])[:, 10:], spectra.flux[:, 10:].astype(np.float32)
    )


def test_no_spectra_no_file(tmp_path: Path) -> None:
    empty = spectra_for(GaiaRvsDr3(), 1, seed=8)
    empty = Spectra(empty.source_id[:0], empty.wavelength, empty.flux[:0], empty.ivar[:0], empty.mask[:0])
    assert write_rvs(empty, tmp_path / "none") == []
    assert not (tmp_path / "none").exists()


# ------------------------------------------------------------------------------------------------- errors
def test_wrong_grid_ids_and_medium_refused(tmp_path: Path) -> None:
    reader = GaiaRvsDr3()
    good = spectra_for(reader, 2, seed=9)
    other_grid = Spectra(good.source_id, good.wavelength[:-1], good.flux[:, :-1], good.ivar[:, :-1], good.mask[:, :-1])
    with pytest.raises(SimulationError, match=r"2400 pixels.*archive grid is 2401 pixels, 846-870 nm"):
        reader.write(other_grid, tmp_path)
    text_ids = Spectra(np.array(["a", "b"]), good.wavelength, good.flux, good.ivar, good.mask)
    with pytest.raises(SimulationError, match="positive int64 Gaia source_ids"):
        reader.write(text_ids, tmp_path)
    air = Spectra(good.source_id, good.wavelength, good.flux, good.ivar, good.mask, medium="air")
    with pytest.raises(SimulationError, match="air wavelengths"):
        reader.write(air, tmp_path)
    angstrom = Spectra(good.source_id, good.wavelength * 10, good.flux, good.ivar, good.mask, unit="Angstrom")
    assert_round_trip(good, reader.read(reader.write(angstrom, tmp_path)[0]))  # converted, same grid
    assert not list(tmp_path.glob(".*"))


def test_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SimulationError, match=r"file.*cannot write RvsMeanSpectrum files"):
        GaiaRvsDr3().write(spectra_for(GaiaRvsDr3(), 1, seed=10), blocker / "sub")


# ------------------------------------------------------------------------------------------ archive layout
def header_lines(path: Path) -> list[str]:
    """The ``#`` lines and the CSV header line of a (gzip) ECSV file."""
    with gzip.open(path, "rt") if path.name.endswith(".gz") else open(path) as handle:
        out = []
        for line in handle:
            out.append(line.rstrip("\n"))
            if not line.startswith("#"):
                return out
    return out


def test_rvs_header_matches_the_project_bulk_layout(tmp_path: Path, rvs_maker: ModuleType) -> None:
    made = rvs_maker.write_bulk(tmp_path / "made", n=2)
    written = write_rvs(spectra_for(GaiaRvsDr3(), 1, seed=11), tmp_path / "written")[0]
    assert header_lines(written) == header_lines(made)
    assert header_lines(written)[-1] == ",".join(c.name for c in RVS_COLUMNS)


def test_rvs_header_matches_a_real_bulk_file(tmp_path: Path) -> None:
    root = real_data(".")
    real = sorted(root.rglob("RvsMeanSpectrum_*.csv.gz"))
    if not real:
        pytest.skip(f"no real RvsMeanSpectrum_*.csv.gz bulk file under {root}: layout checked against make_rvs only")
    written = write_rvs(spectra_for(GaiaRvsDr3(), 1, seed=12), tmp_path)[0]
    assert header_lines(written) == header_lines(real[0])


def test_xp_header_matches_the_real_archive_ecsv(tmp_path: Path) -> None:
    real = real_data("gaiaxpy_tests_xp/xp_sampled/XP_SAMPLED_RAW_dr3int6.ecsv")
    written = write_xp_sampled(spectra_for(GaiaXpSampled(), 1, seed=13), tmp_path)[0]
    assert header_lines(written) == header_lines(real)


def test_ecsv_header_declares_arrays() -> None:
    text = ecsv_header(RVS_COLUMNS)
    assert text.startswith("# %ECSV 1.0\n# ---\n# delimiter: ','\n# datatype:\n# -\n#   name: source_id\n")
    assert text.count("subtype: 'float32[null]'") == 2
