"""Wavelength grids: construction, descriptor sections, serialisation, edges, unit and medium changes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from spectra_helpers import RVS

from starlabel.descriptor import GridSection
from starlabel.grid import WavelengthGrid
from starlabel.wavelengths import GridError


# ------------------------------------------------------------------------------------------------ grids
def test_from_section_equals_section_wavelength() -> None:
    for section in (
        GridSection(start=846.0, stop=870.0, step=0.01),
        GridSection(start=1514.0, stop=1514.0 * 10 ** (8000 * 6e-6), step=6e-6, spacing="log"),
        GridSection(start=8460.0, stop=8700.0, step=0.1, unit="Angstrom", medium="air"),
    ):
        grid = WavelengthGrid.from_section(section)
        assert np.array_equal(grid.wavelength, section.wavelength())
        assert (grid.unit, grid.medium, grid.spacing, len(grid)) == (
            section.unit,
            section.medium,
            section.spacing,
            section.n_pixels,
        )


def test_linear_and_log_constructors() -> None:
    assert len(RVS) == 2401 and RVS.wavelength[0] == 846.0 and abs(RVS.wavelength[-1] - 870.0) < 1e-9
    assert RVS == WavelengthGrid.from_section(GridSection(start=846.0, stop=870.0, step=0.01))
    log = WavelengthGrid.log(1500.0, 1700.0, 6e-6)
    assert np.allclose(np.diff(np.log10(log.wavelength)), 6e-6, rtol=1e-6, atol=0)
    assert log.wavelength[7] == 1500.0 * 10 ** (7 * 6e-6)
    assert not RVS.wavelength.flags.writeable


@pytest.mark.parametrize(
    "grid",
    [RVS, WavelengthGrid.log(1500.0, 1700.0, 6e-6, medium="air"), WavelengthGrid.explicit([500.0, 500.5, 502.0], "AA")],
)
def test_as_dict_round_trip_through_json(grid: WavelengthGrid) -> None:
    data = json.loads(json.dumps(grid.as_dict()))
    again = WavelengthGrid.from_dict(data)
    assert again == grid and hash(again) == hash(grid)
    assert np.array_equal(again.wavelength, grid.wavelength) and again.spacing == grid.spacing
    if grid.spacing != "explicit":
        assert "values" not in data and data["n_pixels"] == len(grid)


def test_edges_are_midpoints_with_half_pixel_ends() -> None:
    grid = WavelengthGrid.explicit([1.0, 2.0, 4.0, 8.0])
    assert np.array_equal(grid.edges(), [0.5, 1.5, 3.0, 6.0, 10.0])


def test_unit_and_medium_changes() -> None:
    in_aa = RVS.to_unit("Angstrom")
    assert in_aa.spacing == "linear" and in_aa.step == 0.1 and in_aa.unit == "Angstrom"
    assert np.allclose(in_aa.wavelength, RVS.wavelength * 10, rtol=1e-15, atol=0)
    assert np.allclose(in_aa.to_unit("nm").wavelength, RVS.wavelength, rtol=1e-15, atol=0)
    air = RVS.to_medium("air")
    assert air.medium == "air" and air.spacing == "explicit"
    assert np.allclose(air.to_medium("vacuum").wavelength, RVS.wavelength, rtol=0, atol=1e-9)
    assert RVS != in_aa and RVS.to_medium("vacuum") is RVS


# ------------------------------------------------------------------------------------------------ errors
def test_grid_errors() -> None:
    with pytest.raises(GridError) as info:
        WavelengthGrid.explicit([850.0, 851.0, 851.0])
    assert str(info.value) == "grid wavelengths are not strictly increasing at index 2 (duplicated value: 851 == 851)"
    with pytest.raises(GridError) as info:
        WavelengthGrid.explicit([850.0, np.nan, 852.0])
    assert str(info.value) == "grid wavelengths are not finite at index 1 (nan)"
    with pytest.raises(GridError, match=r"^grid wavelengths must be 1-D, got shape \(1, 3\)$"):
        WavelengthGrid.explicit([[850.0, 851.0, 852.0]])
    with pytest.raises(GridError) as info:
        WavelengthGrid.linear(846.0, 870.0, 0.01, medium="vac")  # type: ignore[arg-type]
    assert str(info.value) == "unknown medium 'vac'. Did you mean vacuum? Allowed: vacuum, air"


@pytest.mark.realdata
def test_real_4most_lrs_raster_as_an_explicit_grid() -> None:
    from starlabel.descriptor import GridSection
    from starlabel.testing import real_data

    path = real_data("fourmost_4gp_rasters/4most_raster_lrs.txt")
    section = GridSection(spacing="explicit", file=path.name, unit="Angstrom", medium="vacuum")
    grid = WavelengthGrid.from_section(section, [path.parent])
    assert len(grid) == 16385 and grid.spacing == "explicit"
    assert grid.wavelength[0] == pytest.approx(3676.21558293) and grid.wavelength[-1] == pytest.approx(9521.61078888)
    assert WavelengthGrid.from_dict(grid.as_dict()) == grid
