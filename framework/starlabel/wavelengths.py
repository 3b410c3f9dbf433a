"""Wavelength units, air/vacuum and Doppler conversions, and the checks every grid module shares.

Native wavelengths are brought to the grid's frame with :func:`convert_wavelength` (unit and medium)
and, where a velocity is given, :func:`doppler_shift_to_rest`; see DESIGN.md, "Data flow".

Conventions
-----------
Units
    Any astropy length unit (``"nm"``, ``"Angstrom"``, ``"um"``, ...); conversion factors are rounded
    to 15 significant digits (:func:`unit_factor`).
Media
    ``"vacuum"`` or ``"air"``: standard air after the IAU convention (Morton 2000), which leaves
    wavelengths below :data:`AIR_MIN_ANGSTROM` unchanged.
Velocities
    km/s, positive receding; the Doppler shift is relativistic.
Errors
    :class:`GridError` is raised for every invalid wavelength, grid, unit, medium, velocity or
    resolution, here and in :mod:`starlabel.grid`, :mod:`starlabel.resample` and :mod:`starlabel.lsf`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import numpy as np

from starlabel.errors import StarlabelError
from starlabel.suggest import did_you_mean

Medium = Literal["vacuum", "air"]

C_KMS = 299792.458
"""Speed of light in km/s."""

AIR_MIN_ANGSTROM = 2000.0
"""Air/vacuum conversion applies at and above this wavelength (IAU convention; below it both are equal)."""

_MEDIA = ("vacuum", "air")
_UNIT_EXAMPLES = ("nm", "Angstrom", "AA", "um", "micron", "m")


class GridError(StarlabelError, ValueError):
    """A wavelength grid, unit, medium, velocity or resolution is invalid; says what is wrong and where."""

    exit_code = 2


# --------------------------------------------------------------------------------------------- validation
def _fmt(value: float) -> str:
    return f"{value:.10g}"


def check_increasing(values: np.ndarray, what: str = "input wavelengths") -> None:
    """Raise :class:`GridError` unless ``values`` (1-D) are finite and strictly increasing.

    Parameters
    ----------
    values : numpy.ndarray
        (P,) wavelengths.
    what : str
        How the message names the values, e.g. ``"input wavelengths of spectrum 3"``.

    Raises
    ------
    GridError
        Naming the first offending index: ``"input wavelengths are not strictly increasing at index
        17 (duplicated value: 846.2 == 846.2)"``.
    """
    finite = np.isfinite(values)
    if not finite.all():
        i = int(np.argmin(finite))
        raise GridError(f"{what} are not finite at index {i} ({values[i]})")
    wrong = np.diff(values) <= 0
    if wrong.any():
        i = int(np.argmax(wrong)) + 1
        before, here = values[i - 1], values[i]
        why = (
            f"duplicated value: {_fmt(before)} == {_fmt(here)}"
            if before == here
            else f"decreasing: {_fmt(before)} > {_fmt(here)}"
        )
        raise GridError(f"{what} are not strictly increasing at index {i} ({why})")


def _check_rows_increasing(wave: np.ndarray, what: str) -> None:
    """Row-wise :func:`check_increasing` for (N, P) wavelengths; names the first bad spectrum."""
    ok = np.isfinite(wave).all(axis=1) & (np.diff(wave, axis=1) > 0).all(axis=1)
    if not ok.all():
        row = int(np.argmin(ok))
        check_increasing(wave[row], f"{what} of spectrum {row}")


def _check_medium(medium: str) -> None:
    if medium not in _MEDIA:
        raise GridError(f"unknown medium {medium!r}.{did_you_mean(str(medium), _MEDIA)} Allowed: vacuum, air")


# --------------------------------------------------------------------------------------------------- units
@lru_cache(maxsize=64)
def _length_unit(unit: str) -> Any:
    import astropy.units as u

    allowed = f"Allowed: any astropy length unit, e.g. {', '.join(_UNIT_EXAMPLES)}"
    try:
        parsed = u.Unit(unit)
    except (ValueError, TypeError):
        raise GridError(
            f"unknown wavelength unit {unit!r}.{did_you_mean(str(unit), _UNIT_EXAMPLES)} {allowed}"
        ) from None
    if parsed.physical_type != "length":
        raise GridError(f"{unit!r} is a {parsed.physical_type} unit, not a wavelength unit. {allowed}")
    return parsed


@lru_cache(maxsize=64)
def unit_factor(unit_from: str, unit_to: str) -> float:
    """Return the factor that converts wavelengths from ``unit_from`` to ``unit_to``.

    Rounded to 15 significant digits so that decimal factors are exact (astropy gives 9.999999999999998
    for nm → Angstrom).

    Raises
    ------
    GridError
        When either unit is not an astropy length unit.
    """
    factor = float(_length_unit(unit_from).to(_length_unit(unit_to)))
    return float(f"{factor:.15g}")


# ------------------------------------------------------------------------------------------- air / vacuum
def _index_of_vacuum(vacuum_aa: np.ndarray) -> np.ndarray:
    """Refractive index of standard air at vacuum wavelength (Å), IAU / Morton (2000); 1 below 2000 Å."""
    s2 = (1e4 / vacuum_aa) ** 2
    n = 1.0 + 0.0000834254 + 0.02406147 / (130.0 - s2) + 0.00015998 / (38.9 - s2)
    return np.where(vacuum_aa >= AIR_MIN_ANGSTROM, n, 1.0)


def _index_of_air(air_aa: np.ndarray) -> np.ndarray:
    """Refractive index at air wavelength (Å), N. Piskunov's inverse formula (VALD); 1 below 2000 Å."""
    s2 = (1e4 / air_aa) ** 2
    n = (
        1.0
        + 0.00008336624212083
        + 0.02408926869968 / (130.1065924522 - s2)
        + 0.0001599740894897 / (38.92568793293 - s2)
    )
    return np.where(air_aa >= AIR_MIN_ANGSTROM, n, 1.0)


def vacuum_to_air(wave: Any, unit: str = "nm") -> np.ndarray:
    """Convert vacuum wavelengths to standard air (IAU standard, Morton 2000).

    ``s = 10⁴/λ_vac[Å]``, ``n = 1 + 0.0000834254 + 0.02406147/(130 − s²) + 0.00015998/(38.9 − s²)``,
    ``λ_air = λ_vac / n``. Wavelengths below 2000 Å are returned unchanged (IAU convention).

    Parameters
    ----------
    wave : array_like
        Vacuum wavelengths, any shape.
    unit : str
        Their astropy length unit.

    Returns
    -------
    numpy.ndarray
        Air wavelengths in ``unit`` (float64).
    """
    wave = np.asarray(wave, dtype=np.float64)
    return wave / _index_of_vacuum(wave * unit_factor(unit, "Angstrom"))


def air_to_vacuum(wave: Any, unit: str = "nm", *, max_iterations: int = 20) -> np.ndarray:
    """Convert standard-air wavelengths to vacuum, the exact inverse of :func:`vacuum_to_air`.

    Starts from Piskunov's formula (VALD) and iterates ``λ_vac = λ_air · n(λ_vac)`` with the
    :func:`vacuum_to_air` index until it no longer changes, so the round trip is exact to rounding.
    Wavelengths below 2000 Å are returned unchanged.

    Parameters
    ----------
    wave : array_like
        Air wavelengths, any shape.
    unit : str
        Their astropy length unit.
    max_iterations : int
        Upper bound on fixed-point iterations (3 suffice in practice).

    Returns
    -------
    numpy.ndarray
        Vacuum wavelengths in ``unit`` (float64).
    """
    air = np.asarray(wave, dtype=np.float64)
    to_aa = unit_factor(unit, "Angstrom")
    convert = air * to_aa >= AIR_MIN_ANGSTROM
    vacuum = air * _index_of_air(air * to_aa)
    for _ in range(max_iterations):
        updated = np.where(convert, air * _index_of_vacuum(vacuum * to_aa), air)
        if np.array_equal(updated, vacuum):
            break
        vacuum = updated
    return vacuum


def convert_wavelength(wave: Any, unit_from: str, medium_from: str, unit_to: str, medium_to: str) -> np.ndarray:
    """Bring wavelengths from one unit and medium to another (e.g. a reader's native frame to the grid's).

    Parameters
    ----------
    wave : array_like
        Wavelengths, any shape.
    unit_from, unit_to : str
        Astropy length units.
    medium_from, medium_to : {"vacuum", "air"}
        Media.

    Returns
    -------
    numpy.ndarray
        Wavelengths in ``unit_to`` and ``medium_to`` (float64, a new array).

    Raises
    ------
    GridError
        For an unknown unit or medium.
    """
    _check_medium(medium_from)
    _check_medium(medium_to)
    factor = unit_factor(unit_from, unit_to)
    wave = np.array(wave, dtype=np.float64)
    if medium_from != medium_to:
        wave = vacuum_to_air(wave, unit_from) if medium_to == "air" else air_to_vacuum(wave, unit_from)
    return wave * factor if factor != 1.0 else wave


def doppler_shift_to_rest(wave: Any, velocity_kms: Any) -> np.ndarray:
    """Move observed wavelengths to the rest frame, relativistically.

    ``λ_rest = λ_obs · sqrt((1 − β)/(1 + β))`` with ``β = v/c``; positive ``v`` is receding (red-shifted).

    Parameters
    ----------
    wave : array_like
        (P,) shared or (N, P) per-spectrum observed wavelengths.
    velocity_kms : array_like
        (N,) radial velocities in km/s (a scalar counts as N = 1).

    Returns
    -------
    numpy.ndarray
        (N, P) rest-frame wavelengths.

    Raises
    ------
    GridError
        For a non-finite velocity, ``|v| ≥ c``, or mismatched shapes.
    """
    wave = np.asarray(wave, dtype=np.float64)
    velocity = np.atleast_1d(np.asarray(velocity_kms, dtype=np.float64))
    if velocity.ndim != 1:
        raise GridError(f"velocities must be 1-D (N,), got shape {velocity.shape}")
    if wave.ndim not in (1, 2) or (wave.ndim == 2 and wave.shape[0] != velocity.size):
        raise GridError(
            f"wavelengths of shape {wave.shape} fit neither (P,) nor ({velocity.size}, P) for {velocity.size} velocities"
        )
    usable = np.isfinite(velocity) & (np.abs(velocity) < C_KMS)
    if not usable.all():
        i = int(np.argmin(usable))
        raise GridError(
            f"velocity of spectrum {i} is unusable ({velocity[i]} km/s); it must be finite and below c in size"
        )
    beta = velocity / C_KMS
    factor = np.sqrt((1.0 - beta) / (1.0 + beta))[:, None]
    return wave[None, :] * factor if wave.ndim == 1 else wave * factor
