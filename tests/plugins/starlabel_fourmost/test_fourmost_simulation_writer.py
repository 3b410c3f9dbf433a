"""``fourmost_lr_l1`` (stub) simulation methods: log-linear grid, text ids, L1 files that read back exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from starlabel.containers import Population, Spectra
from starlabel.errors import SimulationError
from starlabel.identify import choose_reader
from starlabel_fourmost.l1 import FourmostLrL1

BIG = 4_000_000_000_000_000_123
"""An id above 2**53: must survive as text."""


def population() -> Population:
    distance = np.array([700.0, 2500.0])
    return Population(
        source_id=np.array([BIG, 7], dtype=np.int64),
        labels={
            "teff": np.array([4750.0, 5820.0]),
            "logg": np.array([2.45, 4.21]),
            "m_h": np.array([-0.31, 0.05]),
            "alpha_m": np.array([0.12, 0.0]),
        },
        mass=np.array([1.2, 1.0]),
        radius=np.array([11.0, 1.1]),
        distance=distance,
        ra=np.array([222.8, 10.0]),
        dec=np.array([-40.4, 5.0]),
        parallax=1000.0 / distance,
        vrad=np.array([25.3, -40.0]),
        component=np.array(["thin", "thick"]),
    )


def test_grid_log_linear_vacuum_rest_frame() -> None:
    grid = FourmostLrL1().simulation_grid()
    assert grid.wavelength.size == 15324
    assert grid.wavelength[0] == 3700.0 and 9499.9 < grid.wavelength[-1] <= 9500.0
    np.testing.assert_allclose(np.diff(np.log(grid.wavelength)), 1 / (2.5 * 6500), rtol=1e-9)
    assert (grid.unit, grid.medium, grid.normalised, grid.observed_frame) == ("Angstrom", "vacuum", False, False)


def test_ids_are_source_ids_as_text() -> None:
    ids = FourmostLrL1().simulation_ids(population())
    assert ids.tolist() == [str(BIG), "7"]


def spectra(reader: FourmostLrL1) -> Spectra:
    pop = population()
    grid = reader.simulation_grid()
    rng = np.random.default_rng(11)
    n, p = len(pop), grid.wavelength.size
    flux = rng.uniform(5.0, 500.0, (n, p))
    ivar = rng.uniform(0.01, 1.0, (n, p))
    mask = np.zeros((n, p), dtype=bool)
    ivar[0, 3] = 0.0
    mask[1, 4] = True
    return Spectra(
        source_id=reader.simulation_ids(pop),
        wavelength=grid.wavelength,
        flux=flux,
        ivar=ivar,
        mask=mask,
        unit=grid.unit,
        medium=grid.medium,
        meta={"vrad": pop.vrad, "snr": np.array([80.0, 30.0])},
    )


@pytest.mark.parametrize("options", [{}, {"medium": "vacuum", "id_keyword": "OBJ_NAME"}, {"id_keyword": "TRG_NME"}])
def test_write_read_round_trip(options: dict[str, str], tmp_path: Path, fourmost_plugins) -> None:  # type: ignore[no-untyped-def]
    reader = FourmostLrL1(options)
    sim = spectra(reader)
    paths = reader.write(sim, tmp_path)
    assert [p.name for p in paths] == [f"L1_{BIG}.fits", "L1_7.fits"]
    for row, path in enumerate(paths):
        assert FourmostLrL1.identify(path)
        assert choose_reader(path, fourmost_plugins.readers).name == "fourmost_lr_l1"  # wins over eso_sdp_1d
        got = reader.read(path)
        assert got.source_id.tolist() == [sim.source_id[row]]
        assert (got.unit, got.medium) == ("Angstrom", "vacuum")
        np.testing.assert_array_equal(got.wavelength, sim.wavelength)
        bad = sim.mask[row] | (sim.ivar[row] == 0)
        np.testing.assert_array_equal(got.mask[0], bad)
        np.testing.assert_array_equal(got.flux[0, ~bad], sim.flux[row, ~bad].astype(np.float32).astype(np.float64))
        np.testing.assert_allclose(got.ivar[0, ~bad], sim.ivar[row, ~bad], rtol=3e-7)
        assert got.meta["snr"][0] == sim.meta["snr"][row]
        assert np.isnan(got.meta["vrad"][0])  # rest frame: the stub layout keeps no velocity


def test_header_names_the_id_keyword_and_lrs(tmp_path: Path) -> None:
    from astropy.io import fits

    reader = FourmostLrL1({"id_keyword": "TRG_NME"})
    path = reader.write(spectra(reader), tmp_path)[1]
    with fits.open(path) as hdul:
        hdul.verify("exception")  # standard-conforming headers and padding
        h0 = hdul[0].header
        assert (h0["INSTRUME"], h0["TRG_NME"], h0["OBJECT"], h0["SPECSYS"]) == ("4MOST-LRS", "7", "7", "SOURCE")
        assert "OBJ_NAME" not in h0 and "VRAD" not in h0
        assert (h0["WAVELMIN"], h0["SPEC_RES"]) == (370.0, 6500.0)
        assert hdul[1].header["TUCD1"] == "em.wl" and hdul[1].header["TUNIT1"] == "Angstrom"


def test_write_refuses_other_grids(tmp_path: Path) -> None:
    reader = FourmostLrL1()
    sim = spectra(reader)
    in_nm = Spectra(sim.source_id, sim.wavelength / 10, sim.flux, sim.ivar, sim.mask, "nm", "vacuum")
    with pytest.raises(SimulationError, match=r"fourmost_lr_l1.*wavelength unit 'nm'.*15324 pixels"):
        reader.write(in_nm, tmp_path)
