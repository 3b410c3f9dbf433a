"""Wavelength units, air/vacuum and Doppler conversions against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from spectra_helpers import RVS

from starlabel.grid import WavelengthGrid
from starlabel.wavelengths import (
    C_KMS,
    GridError,
    air_to_vacuum,
    convert_wavelength,
    doppler_shift_to_rest,
    vacuum_to_air,
)


# ----------------------------------------------------------------------------------------- air / vacuum
def test_air_vacuum_round_trip_is_exact() -> None:
    vacuum = np.linspace(300.0, 2500.0, 100_001)
    assert np.max(np.abs(air_to_vacuum(vacuum_to_air(vacuum)) - vacuum)) <= 1e-6
    assert np.max(np.abs(vacuum_to_air(air_to_vacuum(vacuum)) - vacuum)) <= 1e-6


@pytest.mark.parametrize(("vacuum", "air"), [(850.035, 849.802), (656.461, 656.280)])
def test_air_vacuum_known_lines(vacuum: float, air: float) -> None:
    assert abs(vacuum_to_air(vacuum) - air) < 0.002
    assert abs(air_to_vacuum(air) - vacuum) < 0.002
    assert abs(vacuum_to_air(vacuum * 10, "Angstrom") / 10 - vacuum_to_air(vacuum)) < 1e-9
    assert convert_wavelength(vacuum, "nm", "vacuum", "Angstrom", "air") == pytest.approx(vacuum_to_air(vacuum) * 10)


def test_no_air_conversion_below_200_nm() -> None:
    assert vacuum_to_air(150.0) == 150.0 and air_to_vacuum(150.0) == 150.0


# ---------------------------------------------------------------------------------------------- doppler
def test_doppler_shift_returns_line_to_rest() -> None:
    rest = 850.035
    beta = 100.0 / C_KMS
    relativistic = rest * math.sqrt((1 + beta) / (1 - beta))
    back = doppler_shift_to_rest(np.array([relativistic, rest * (1 + beta)]), np.array([100.0]))
    assert back.shape == (1, 2)
    assert abs(back[0, 0] / rest - 1) < 1e-12
    assert abs(back[0, 1] / rest - 1) < 1e-6
    per_row = doppler_shift_to_rest(np.array([[rest * (1 + beta)], [rest * (1 - beta)]]), [100.0, -100.0])
    assert np.allclose(per_row[:, 0], rest, rtol=1e-6, atol=0)


def test_doppler_shift_rejects_unusable_velocity() -> None:
    with pytest.raises(GridError, match=r"^velocity of spectrum 1 is unusable \(nan km/s\)"):
        doppler_shift_to_rest(RVS.wavelength, [1.0, np.nan])


# ------------------------------------------------------------------------------------------------ errors
def test_unknown_unit_lists_examples() -> None:
    with pytest.raises(GridError) as info:
        vacuum_to_air(850.0, unit="nmm")
    assert str(info.value) == (
        "unknown wavelength unit 'nmm'. Did you mean nm? Allowed: any astropy length unit, e.g. nm, Angstrom, AA, "
        "um, micron, m"
    )
    with pytest.raises(GridError) as info:
        WavelengthGrid.linear(846.0, 870.0, 0.01, unit="s")
    assert str(info.value) == (
        "'s' is a time unit, not a wavelength unit. Allowed: any astropy length unit, e.g. nm, Angstrom, AA, um, micron, m"
    )
