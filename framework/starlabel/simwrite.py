"""Checks and small helpers shared by the simulation writers of instrument readers (`InstrumentReader.write`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from starlabel.containers import NativeGrid, Spectra
from starlabel.errors import SimulationError


def meta_values(spectra: Spectra, key: str) -> np.ndarray:
    """``spectra.meta[key]`` as float64, or NaN for every row when absent.

    Raises
    ------
    SimulationError
        The values are not numbers.
    """
    value = spectra.meta.get(key)
    if value is None:
        return np.full(len(spectra), np.nan)
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise SimulationError(
            f"spectra.meta[{key!r}] holds {np.asarray(value).dtype} values, expected numbers (km/s for vrad)"
        ) from None


def median_snr(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> float:
    """Median ``|flux|·sqrt(ivar)`` over good pixels (NaN when there is none)."""
    flux, ivar = np.asarray(flux, np.float64), np.asarray(ivar, np.float64)
    with np.errstate(invalid="ignore"):
        good = ~np.asarray(mask, bool) & np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    return float(np.median(np.abs(flux[good]) * np.sqrt(ivar[good]))) if good.any() else float("nan")


def star_snr(spectra: Spectra) -> np.ndarray:
    """Per-spectrum S/N: ``spectra.meta["snr"]`` where finite, else :func:`median_snr` of the row (NaN if none)."""
    snr = meta_values(spectra, "snr")
    for i in np.flatnonzero(~np.isfinite(snr)):
        snr[i] = median_snr(spectra.flux[i], spectra.ivar[i], spectra.mask[i])
    return snr


def prepare_writing(spectra: Spectra, grid: NativeGrid, folder: Path, reader: str) -> list[str]:
    """Checks shared by the one-file-per-star writers, then ``folder`` created; return the ids as text.

    Raises
    ------
    SimulationError
        The spectra are not on ``grid`` (:func:`check_on_grid`), an id is empty, repeated or not a valid
        file name (:func:`check_ids`), or ``folder`` cannot be created.
    """
    check_on_grid(spectra, grid, reader)
    ids = [str(value).strip() for value in spectra.source_id.tolist()]
    check_ids(ids, reader)
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SimulationError(f"{folder}: cannot create the folder for the simulated spectra ({error})") from None
    return ids


def check_on_grid(spectra: Spectra, grid: NativeGrid, reader: str) -> None:
    """Refuse spectra that are not on ``grid``: same unit, medium and wavelengths (to 1e-9 relative).

    Raises
    ------
    SimulationError
        Naming the reader, what differs and what is expected.
    """
    import astropy.units as u

    wave = np.asarray(spectra.wavelength, dtype=np.float64)
    try:
        same_unit = u.Unit(spectra.unit) == u.Unit(grid.unit)
    except (ValueError, TypeError):
        same_unit = False
    if not same_unit:
        problem = f"wavelength unit {spectra.unit!r}"
    elif spectra.medium != grid.medium:
        problem = f"medium {spectra.medium!r}"
    elif wave.shape[-1] != grid.wavelength.size:
        problem = f"{wave.shape[-1]} pixels"
    elif not np.allclose(wave, grid.wavelength, rtol=1e-9, atol=0.0):
        problem = "wavelengths that differ from the archive grid"
    else:
        return
    expected = (
        f"{grid.wavelength.size} pixels, {grid.wavelength[0]:.6f}-{grid.wavelength[-1]:.6f} {grid.unit}, {grid.medium}"
    )
    raise SimulationError(
        f"reader {reader!r} cannot write spectra with {problem}: its files hold spectra on its simulation grid "
        f"({expected}); put the spectra on reader.simulation_grid() first"
    )


def check_ids(ids: list[str], reader: str) -> None:
    """Refuse empty, repeated or path-like ids (they name the files).

    Raises
    ------
    SimulationError
        Naming the reader, the row and the id.
    """
    seen: dict[str, int] = {}
    for row, value in enumerate(ids):
        if not value or "/" in value or "\\" in value or value in (".", ".."):
            raise SimulationError(
                f"reader {reader!r}: source_id {value!r} of row {row} cannot name a file; ids must be non-empty "
                "and contain no path separator (use reader.simulation_ids(population))"
            )
        if value in seen:
            raise SimulationError(
                f"reader {reader!r}: source_id {value!r} of row {row} repeats row {seen[value]}; each star needs "
                "its own id and file (use reader.simulation_ids(population))"
            )
        seen[value] = row


_RA_UNITS = 24 * 3600 * 100
"""Right-ascension steps of 0.01 s in 24 h."""
_DEC_UNITS_MAX = 90 * 3600 * 10
"""Declination steps of 0.1″ in 90°."""
_EPS = 1e-6
"""Added before truncating, so that 0.1° (stored as 0.09999…) gives 00002400 and not 00002399."""


def _sexagesimal(ra_units: int, dec_units: int, negative: bool) -> str:
    """``HHMMSSss±DDMMSSs`` from right ascension in 0.01 s and |declination| in 0.1″."""
    hours, rest = divmod(ra_units, 360_000)
    minutes, cs = divmod(rest, 6_000)
    degrees, rest = divmod(dec_units, 36_000)
    arcmin, ds = divmod(rest, 600)
    return f"{hours:02d}{minutes:02d}{cs:04d}{'-' if negative else '+'}{degrees:02d}{arcmin:02d}{ds:03d}"


def coordinate_names(ra: np.ndarray, dec: np.ndarray, *, prefix: str, kind: str, what: str) -> np.ndarray:
    """Names ``<prefix>HHMMSSss±DDMMSSs`` of stars at ICRS ``ra``, ``dec`` (degrees), unique.

    Right ascension in hours, minutes and seconds to 0.01 s, then the signed declination in degrees,
    arcminutes and arcseconds to 0.1″, each truncated (never rounded) to the last digit shown, as 2MASS
    designations are. Stars whose truncated coordinates coincide would share a name: the first (in input
    order) keeps it, each later one has its right ascension stepped by +0.01 s, +0.02 s, … (wrapping at
    24 h) until the name is unused. Deterministic: the result depends only on the coordinates and their order.

    Parameters
    ----------
    prefix : str
        Put before each name (``"2M"`` for APOGEE_IDs, ``""`` for CNAMEs).
    kind, what : str
        What the names are and whose stars they name, for messages.

    Raises
    ------
    SimulationError
        A coordinate is not finite or the declination lies outside [−90°, 90°].
    """
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    bad = ~np.isfinite(ra) | ~np.isfinite(dec) | (np.abs(dec) > 90.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SimulationError(
            f"{what}: star {i} has ra = {ra[i]}, dec = {dec[i]}; {kind} are built from finite ICRS coordinates "
            "with -90 <= dec <= 90 degrees"
        )
    ra_units = np.floor(np.mod(ra, 360.0) * (_RA_UNITS / 360.0) + _EPS).astype(np.int64) % _RA_UNITS
    dec_units = np.minimum(np.floor(np.abs(dec) * 36_000.0 + _EPS).astype(np.int64), _DEC_UNITS_MAX)
    names: list[str] = []
    seen: set[str] = set()
    for r, d, negative in zip(ra_units.tolist(), dec_units.tolist(), (dec < 0).tolist(), strict=True):
        name, step = prefix + _sexagesimal(r, d, negative), 0
        while name in seen:
            step += 1
            name = prefix + _sexagesimal((r + step) % _RA_UNITS, d, negative)
        seen.add(name)
        names.append(name)
    return np.array(names, dtype=str)
