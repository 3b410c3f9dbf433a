"""Wavelength grids: the pixel centres every spectrum is resampled onto, and their pixel edges.

A :class:`WavelengthGrid` is built from a descriptor's ``grid:`` section (or from explicit values)
and carries its unit, medium and spacing; see DESIGN.md, "Data flow". Units, media and Doppler
shifts live in :mod:`starlabel.wavelengths`, resampling in :mod:`starlabel.resample` and the
Gaussian line-spread function in :mod:`starlabel.lsf`.

Conventions
-----------
Pixel centres
    1-D, finite, positive and strictly increasing; linear (``start + i·step``) and log
    (``start·10^(i·step)``) grids are computed from the index, never accumulated.
Pixel edges
    Midpoints between neighbouring centres; the two outer edges lie half a neighbouring step
    beyond the first and last centres (:func:`pixel_edges`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from starlabel.wavelengths import (
    GridError,
    Medium,
    _check_medium,
    _fmt,
    _length_unit,
    check_increasing,
    convert_wavelength,
    unit_factor,
)

if TYPE_CHECKING:
    from starlabel.descriptor import GridSection

Spacing = Literal["linear", "log", "explicit"]

_SPACINGS = ("linear", "log", "explicit")


# --------------------------------------------------------------------------------------------- validation
def _check_grid_values(wave: Any, what: str) -> np.ndarray:
    wave = np.array(wave, dtype=np.float64)
    if wave.ndim != 1:
        raise GridError(f"{what} must be 1-D, got shape {wave.shape}")
    if wave.size < 2:
        raise GridError(f"{what} need at least 2 pixels, got {wave.size}")
    check_increasing(wave, what)
    if wave[0] <= 0:
        raise GridError(f"{what} must be positive, got {_fmt(wave[0])} at index 0")
    return wave


# ----------------------------------------------------------------------------------------------------- grid
def pixel_edges(wave: np.ndarray) -> np.ndarray:
    """Return pixel boundaries along the last axis: (..., P) centres → (..., P+1) edges.

    Inner edges are midpoints between neighbouring centres; the outer edges lie half the neighbouring
    step beyond the first and last centres.
    """
    wave = np.asarray(wave, dtype=np.float64)
    mid = 0.5 * (wave[..., 1:] + wave[..., :-1])
    first = wave[..., :1] - 0.5 * (wave[..., 1:2] - wave[..., :1])
    last = wave[..., -1:] + 0.5 * (wave[..., -1:] - wave[..., -2:-1])
    return np.concatenate([first, mid, last], axis=-1)


def _spaced(spacing: str, start: float, step: float, n: int) -> np.ndarray:
    """Pixel centres ``start + i·step`` or ``start·10^(i·step)``, never accumulated (as GridSection builds them)."""
    index = np.arange(n, dtype=np.float64)
    return start * 10.0 ** (index * step) if spacing == "log" else start + index * step


def _steps(span: float, step: float) -> int:
    """Whole steps in ``span``; a stop within 1e-6 step of the grid counts as on it."""
    if not (math.isfinite(step) and step > 0):
        raise GridError(f"step must be finite and positive, got {step}")
    if not (math.isfinite(span) and span > 0):
        raise GridError("stop must be greater than start")
    return int(math.floor(span / step + 1e-6))


@dataclass(frozen=True, eq=False)
class WavelengthGrid:
    """The wavelength grid spectra are resampled onto.

    Attributes
    ----------
    wavelength : numpy.ndarray
        (P,) pixel centres, float64, strictly increasing, read-only.
    unit : str
        Astropy length unit of ``wavelength``.
    medium : {"vacuum", "air"}
        Medium of ``wavelength``.
    spacing : {"linear", "log", "explicit"}
        How ``wavelength`` was built; linear and log grids are stored compactly by :meth:`as_dict`.
    step : float or None
        Pixel step (in ``unit`` for linear, dex of log10 λ for log); None for explicit grids.
    """

    wavelength: np.ndarray
    unit: str = "nm"
    medium: Medium = "vacuum"
    spacing: Spacing = "explicit"
    step: float | None = None

    def __post_init__(self) -> None:
        wave = _check_grid_values(self.wavelength, "grid wavelengths")
        _length_unit(self.unit)
        _check_medium(self.medium)
        self._check_spacing(wave)
        wave.setflags(write=False)
        object.__setattr__(self, "wavelength", wave)

    def _check_spacing(self, wave: np.ndarray) -> None:
        if self.spacing not in _SPACINGS:
            raise GridError(f"unknown grid spacing {self.spacing!r}. Allowed: {', '.join(_SPACINGS)}")
        if self.spacing == "explicit":
            if self.step is not None:
                raise GridError("an explicit grid has no step; give spacing='linear' or 'log' with a step")
            return
        if self.step is None or not self.step > 0:
            raise GridError(f"a {self.spacing} grid needs a positive step, got {self.step}")
        expected = _spaced(self.spacing, float(wave[0]), float(self.step), wave.size)
        if not np.array_equal(expected, wave):
            i = int(np.argmax(expected != wave))
            raise GridError(
                f"grid wavelengths do not follow {self.spacing} spacing with step {self.step} at index {i} "
                f"({_fmt(wave[i])} != {_fmt(expected[i])}); use WavelengthGrid.explicit for arbitrary values"
            )

    # ------------------------------------------------------------------------------------- constructors
    @classmethod
    def linear(
        cls, start: float, stop: float, step: float, unit: str = "nm", medium: Medium = "vacuum"
    ) -> WavelengthGrid:
        """Grid ``start + i·step`` up to ``stop`` (included when it lies on the grid within 1e-6 step)."""
        n = _steps(float(stop) - float(start), float(step)) + 1
        return cls(_spaced("linear", float(start), float(step), n), unit, medium, "linear", float(step))

    @classmethod
    def log(
        cls, start: float, stop: float, step_dex: float, unit: str = "nm", medium: Medium = "vacuum"
    ) -> WavelengthGrid:
        """Grid ``start·10^(i·step_dex)`` up to ``stop`` (included when on the grid within 1e-6 step)."""
        if not (start > 0 and stop > 0):
            raise GridError(f"a log grid needs positive start and stop, got {start} and {stop}")
        n = _steps(math.log10(float(stop) / float(start)), float(step_dex)) + 1
        return cls(_spaced("log", float(start), float(step_dex), n), unit, medium, "log", float(step_dex))

    @classmethod
    def explicit(cls, values: Any, unit: str = "nm", medium: Medium = "vacuum") -> WavelengthGrid:
        """Grid of the given pixel centres: 1-D, finite, positive and strictly increasing.

        Raises
        ------
        GridError
            Naming what is wrong and the first offending index.
        """
        return cls(np.array(values, dtype=np.float64), unit, medium)

    @classmethod
    def from_section(cls, section: GridSection, search: Sequence[Path] = ()) -> WavelengthGrid:
        """Grid of a descriptor's ``grid:`` section.

        Linear and log grids equal ``section.wavelength()`` exactly. An explicit grid reads
        ``section.file`` from the first folder of ``search`` that holds it (text columns, ``.npy``, or
        FITS: a table column or the primary array).

        Raises
        ------
        GridError
            The file is in none of the folders, unreadable, or not strictly increasing.
        """
        if section.spacing != "explicit":
            return cls(section.wavelength(), section.unit, section.medium, section.spacing, float(section.step or 0))
        name = str(section.file)
        found = next((Path(d) / name for d in search if (Path(d) / name).is_file()), None)
        if found is None and Path(name).is_absolute() and Path(name).is_file():
            found = Path(name)
        if found is None:
            where = ", ".join(str(d) for d in search) or "(no folder given)"
            raise GridError(
                f"explicit grid file {name!r} not found in {where}; put it beside the descriptor or in the data folder"
            )
        return cls.explicit(_read_grid_file(found, section.column), section.unit, section.medium)

    # ------------------------------------------------------------------------------------------ methods
    def __len__(self) -> int:
        return int(self.wavelength.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WavelengthGrid):
            return NotImplemented
        return (self.unit, self.medium) == (other.unit, other.medium) and np.array_equal(
            self.wavelength, other.wavelength
        )

    def __hash__(self) -> int:
        return hash((self.unit, self.medium, self.wavelength.tobytes()))

    def edges(self) -> np.ndarray:
        """(P+1,) pixel boundaries; see :func:`pixel_edges`."""
        return pixel_edges(self.wavelength)

    def to_unit(self, unit: str) -> WavelengthGrid:
        """The same grid in another length unit; linear and log grids are rebuilt from converted start and step."""
        if unit == self.unit:
            return self
        factor = unit_factor(self.unit, unit)
        if self.spacing == "explicit":
            return WavelengthGrid(self.wavelength * factor, unit, self.medium)
        assert self.step is not None
        step = self.step * factor if self.spacing == "linear" else self.step
        wave = _spaced(self.spacing, float(self.wavelength[0]) * factor, step, len(self))
        return WavelengthGrid(wave, unit, self.medium, self.spacing, step)

    def to_medium(self, medium: Medium) -> WavelengthGrid:
        """The same pixels in another medium; the result is an explicit grid (the conversion is not linear)."""
        _check_medium(medium)
        if medium == self.medium:
            return self
        wave = convert_wavelength(self.wavelength, self.unit, self.medium, self.unit, medium)
        return WavelengthGrid(wave, self.unit, medium)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe description for zarr attrs and model cards; :meth:`from_dict` rebuilds an equal grid.

        Linear and log grids give ``spacing, start, step, n_pixels, stop`` (``stop`` is informative);
        explicit grids give ``spacing: explicit`` and every ``values``.
        """
        out: dict[str, Any] = {"spacing": self.spacing, "unit": self.unit, "medium": self.medium}
        if self.spacing == "explicit":
            out["values"] = self.wavelength.tolist()
        else:
            out |= {
                "start": float(self.wavelength[0]),
                "step": self.step,
                "n_pixels": len(self),
                "stop": float(self.wavelength[-1]),
            }
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WavelengthGrid:
        """Rebuild a grid from :meth:`as_dict` output.

        Raises
        ------
        GridError
            For an unknown spacing or a missing key.
        """
        spacing = data.get("spacing", "explicit")
        if spacing not in _SPACINGS:
            raise GridError(f"unknown grid spacing {spacing!r}. Allowed: {', '.join(_SPACINGS)}")
        need = ("values",) if spacing == "explicit" else ("start", "step", "n_pixels")
        missing = [key for key in need if key not in data]
        if missing:
            raise GridError(f"a {spacing} grid needs keys {', '.join(need)}; missing: {', '.join(missing)}")
        unit, medium = data.get("unit", "nm"), data.get("medium", "vacuum")
        if spacing == "explicit":
            return cls.explicit(data["values"], unit, medium)
        wave = _spaced(spacing, float(data["start"]), float(data["step"]), int(data["n_pixels"]))
        return cls(wave, unit, medium, spacing, float(data["step"]))


def _grid_values(grid: WavelengthGrid | Any) -> np.ndarray:
    if isinstance(grid, WavelengthGrid):
        return grid.wavelength
    return _check_grid_values(grid, "output grid wavelengths")


def _read_grid_file(path: Path, column: int) -> np.ndarray:
    """Wavelengths from a text file (whitespace or comma columns, ``#`` comments), ``.npy`` or FITS."""
    name = path.name.lower()
    try:
        if name.endswith(".npy"):
            values = np.load(path, allow_pickle=False)
        elif name.endswith((".fits", ".fits.gz", ".fit")):
            from astropy.io import fits

            with fits.open(path) as hdul:
                table = next((h for h in hdul[1:] if getattr(h, "columns", None) is not None), None)
                values = np.asarray(table.data.field(column) if table is not None else hdul[0].data)
        else:
            delimiter = "," if name.endswith(".csv") else None
            values = np.loadtxt(path, comments="#", delimiter=delimiter, ndmin=2)[:, column]
    except (OSError, ValueError, IndexError, TypeError) as error:
        raise GridError(f"{path}: cannot read wavelengths (column {column}): {error}") from None
    return np.asarray(values, dtype=np.float64).ravel()
