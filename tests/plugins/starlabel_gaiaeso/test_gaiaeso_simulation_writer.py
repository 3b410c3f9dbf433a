"""``eso_sdp_1d`` simulation methods: setup grids, CNAMEs, ADP-named SDP files that read back exactly."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from starlabel.containers import Population, Spectra
from starlabel.errors import DataFileError, SimulationError
from starlabel.identify import choose_reader
from starlabel_gaiaeso.cname import cnames
from starlabel_gaiaeso.sdp1d import EsoSdp1d
from starlabel_gaiaeso.sdp1d_write import adp_name
from starlabel_gaiaeso.setups import SETUPS

CNAME = re.compile(r"^\d{8}[+-]\d{7}$")
ADP = re.compile(r"^ADP\.\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\.fits$")


def population() -> Population:
    """Three made-up stars; stars 1 and 2 share coordinates to 0.01 s / 0.1″."""
    distance = np.array([800.0, 1500.0, 3000.0])
    return Population(
        source_id=np.array([101, 102, 103], dtype=np.int64),
        labels={
            "teff": np.array([4750.0, 5820.0, 6100.0]),
            "logg": np.array([2.45, 4.21, 4.05]),
            "m_h": np.array([-0.31, 0.05, -0.85]),
            "alpha_m": np.array([0.12, 0.0, 0.3]),
        },
        mass=np.array([1.2, 1.0, 0.9]),
        radius=np.array([11.0, 1.1, 1.4]),
        distance=distance,
        ra=np.array([222.8463, 10.0, 10.0]),
        dec=np.array([-40.4196, 5.0, 5.0]),
        parallax=1000.0 / distance,
        vrad=np.array([25.3, -40.0, 60.5]),
        component=np.array(["thin", "thick", "halo"]),
    )


def test_cnames_from_coordinates_unique() -> None:
    ids = EsoSdp1d({"setup": "HR15N"}).simulation_ids(population())
    # 222.8463 deg = 14h51m23.112s, -40.4196 deg = -40d25'10.56" (truncated)
    assert ids.tolist() == ["14512311-4025105", "00400000+0500000", "00400001+0500000"]
    assert all(CNAME.match(c) and len(c) == 16 for c in ids)
    with pytest.raises(SimulationError, match=r"star 0 has ra = 1.0, dec = 91.0"):
        cnames(np.array([1.0]), np.array([91.0]))


@pytest.mark.parametrize("setup", list(SETUPS))
def test_grid_per_setup(setup: str) -> None:
    grid = EsoSdp1d({"setup": setup}).simulation_grid()
    step = 0.005 if setup.startswith("HR") else 0.0025
    assert grid.wavelength[0] == SETUPS[setup].start
    assert grid.wavelength[-1] == pytest.approx(SETUPS[setup].stop, abs=1e-9)
    np.testing.assert_allclose(np.diff(grid.wavelength), step, rtol=1e-8)
    assert (grid.unit, grid.medium, grid.normalised, grid.observed_frame) == ("nm", "air", False, True)
    if setup == "HR15N":
        assert grid.wavelength.size == 6401


def test_setup_any_cannot_simulate() -> None:
    with pytest.raises(SimulationError, match=r"eso_sdp_1d.*setup 'any'.*HR10, HR15N, HR21, U520, U580"):
        EsoSdp1d().simulation_grid()


def spectra(reader: EsoSdp1d, pop: Population | None = None) -> Spectra:
    """Spectra on the reader's grid: ivar 0 at pixel 10 of star 0, mask at 20 of star 1, NaN flux at 30 of star 2."""
    pop = population() if pop is None else pop
    grid = reader.simulation_grid()
    rng = np.random.default_rng(7)
    n, p = len(pop), grid.wavelength.size
    flux = 50.0 + 10.0 * np.cos(grid.wavelength)[None, :] + rng.normal(0, 0.5, (n, p))
    ivar = rng.uniform(1.0, 4.0, (n, p))
    mask = np.zeros((n, p), dtype=bool)
    ivar[0, 10] = 0.0
    mask[1 % n, 20] = True
    flux[2 % n, 30] = np.nan
    return Spectra(
        source_id=reader.simulation_ids(pop),
        wavelength=grid.wavelength,
        flux=flux,
        ivar=ivar,
        mask=mask,
        unit=grid.unit,
        medium=grid.medium,
        meta={"vrad": pop.vrad, "snr": np.arange(1, n + 1) * 20.0, "ra": pop.ra, "dec": pop.dec},
    )


@pytest.mark.parametrize("setup", ["HR15N", "HR10", "U580"])
def test_write_read_round_trip(setup: str, tmp_path: Path, gaiaeso_plugins) -> None:  # type: ignore[no-untyped-def]
    options = {"setup": setup, "flux": "default", "medium": "air"}  # as the gaia_eso_giraffe descriptor
    reader = EsoSdp1d(options)
    sim = spectra(reader)
    paths = reader.write(sim, tmp_path / "spectra")
    assert len(set(paths)) == 3 and all(ADP.match(p.name) for p in paths)
    for row, path in enumerate(paths):
        assert EsoSdp1d.identify(path)
        assert choose_reader(path, gaiaeso_plugins.readers).name == "eso_sdp_1d"
        got = reader.read(path)  # also checks the setup found in the header
        assert got.source_id.tolist() == [sim.source_id[row]]
        assert (got.unit, got.medium) == ("nm", "air")
        np.testing.assert_array_equal(got.wavelength, sim.wavelength)  # float64 column: exact
        bad = sim.mask[row] | (sim.ivar[row] == 0) | ~np.isfinite(sim.flux[row])
        np.testing.assert_array_equal(got.mask[0], bad)
        np.testing.assert_array_equal(got.flux[0, ~bad], sim.flux[row, ~bad].astype(np.float32).astype(np.float64))
        np.testing.assert_allclose(got.ivar[0, ~bad], sim.ivar[row, ~bad], rtol=3e-7)
        assert np.all(got.ivar[0, bad] == 0)
        assert got.meta["vrad"][0] == sim.meta["vrad"][row]
        assert got.meta["snr"][0] == sim.meta["snr"][row]
        assert got.meta["spec_res"][0] == SETUPS[setup].resolution
        assert (got.meta["ra"][0], got.meta["dec"][0]) == (sim.meta["ra"][row], sim.meta["dec"][row])
    other = next(s for s in SETUPS if s != setup)
    with pytest.raises(DataFileError, match=rf"setup {setup} .*asks for setup: {other}"):
        EsoSdp1d({"setup": other}).read(paths[0])


def test_header_keywords(tmp_path: Path) -> None:
    from astropy.io import fits

    reader = EsoSdp1d({"setup": "HR15N"})
    path = reader.write(spectra(reader), tmp_path)[0]
    with fits.open(path) as hdul:
        hdul.verify("exception")  # standard-conforming headers and padding
        h0, h1 = hdul[0].header, hdul[1].header
        assert (h0["PRODCATG"], h0["INSTRUME"], h0["SETUP"], h0["CNAME"], h0["OBJECT"]) == (
            "SCIENCE.SPECTRUM", "GIRAFFE", "HR15N", "14512311-4025105", "14512311-4025105"
        )  # fmt: skip
        assert (h0["VRAD"], h0["CONTNORM"], h0["WAVELMIN"], h0["WAVELMAX"]) == (25.3, False, 647.0, 679.0)
        assert h0["SPEC_BIN"] == pytest.approx(0.005)
        assert (h1["NAXIS2"], h1["NELEM"], h1["TUCD1"], h1["TUNIT1"]) == (1, 6401, "em.wl;obs.atmos", "nm")
        assert [c.name for c in hdul[1].columns] == ["WAVE", "FLUX", "ERR", "QUAL"]
        assert hdul[1].data["QUAL"][0][10] == 1 and int(hdul[1].data["QUAL"][0].sum()) == 1


def test_names_never_collide_across_calls(tmp_path: Path) -> None:
    reader = EsoSdp1d({"setup": "HR15N"})
    sim = spectra(reader)
    first = reader.write(Spectra(sim.source_id[:2], sim.wavelength, sim.flux[:2], sim.ivar[:2], sim.mask[:2],
                                 "nm", "air", meta={"vrad": sim.meta["vrad"][:2]}), tmp_path)  # fmt: skip
    again = reader.write(sim, tmp_path)  # the same two stars and a third one
    assert again[:2] == first  # a star's file is rewritten in place, not duplicated
    assert len(list(tmp_path.iterdir())) == 3
    # a file of another star where star 2's name would be: star 2 goes to the next millisecond
    folder = tmp_path / "taken"
    folder.mkdir()
    taken = folder / adp_name("HR15N", str(sim.source_id[2]))
    shutil.copy(first[0], taken)
    path = reader.write(sim, folder)[2]
    assert path.name == adp_name("HR15N", str(sim.source_id[2]), 1) != taken.name
    assert reader.read(taken).source_id[0] == sim.source_id[0]  # untouched
    assert reader.read(path).source_id[0] == sim.source_id[2]


def test_write_refuses_spectra_off_the_setup_grid(tmp_path: Path) -> None:
    hr10 = EsoSdp1d({"setup": "HR10"})
    sim = spectra(EsoSdp1d({"setup": "HR15N"}))
    with pytest.raises(SimulationError, match=r"eso_sdp_1d.*6401 pixels.*5601 pixels, 533.900000-561.900000 nm, air"):
        hr10.write(sim, tmp_path)
