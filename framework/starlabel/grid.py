"""Wavelength grids, air/vacuum and Doppler conversions, and resampling of many spectra at once.

Every spectrum is brought onto the descriptor's grid before storage (see DESIGN.md, "Data flow"):
native wavelengths → :func:`convert_wavelength` (unit and medium) → :func:`doppler_shift_to_rest`
(where a velocity is given) → :func:`resample` → optionally :func:`convolve_to_resolution`.

Conventions
-----------
Pixel edges
    Midpoints between neighbouring centres; the two outer edges lie half a neighbouring step
    beyond the first and last centres (:func:`pixel_edges`).
Good pixels
    An input pixel is good when its mask is False, its flux is finite and its inverse variance is
    finite and positive. Bad pixels are replaced by zero *before* any arithmetic, so their values
    never reach an output pixel that is not masked.
Masked output
    A masked output pixel has ``mask=True``, ``flux=0.0`` and ``ivar=0.0`` (never NaN, so sums and
    network inputs stay finite; the mask is the authority). :func:`resample` masks an output pixel
    when any input pixel with non-zero weight is bad, or when the output pixel is not fully covered
    by the input (either of its edges lies outside the first/last input edge by more than
    :data:`EDGE_TOLERANCE` of its width; in ``"interpolate"`` mode its centre must also lie between
    the first and last input centres).
Propagation
    With weights ``w`` over good input pixels, ``f = Σ w f / Σ w`` and
    ``var = Σ w² σ² / (Σ w)²``; ``ivar = 1 / var``.

Operators are :class:`SparseOperator` objects (a CSR weight matrix and a coverage mask) that are
built once per input grid and applied to any number of spectra with sparse matrix products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from starlabel.errors import StarlabelError
from starlabel.suggest import did_you_mean

if TYPE_CHECKING:
    import scipy.sparse

    from starlabel.descriptor import GridSection

Medium = Literal["vacuum", "air"]
Spacing = Literal["linear", "log", "explicit"]
Mode = Literal["flux", "interpolate"]

C_KMS = 299792.458
"""Speed of light in km/s."""

AIR_MIN_ANGSTROM = 2000.0
"""Air/vacuum conversion applies at and above this wavelength (IAU convention; below it both are equal)."""

EDGE_TOLERANCE = 1e-6
"""Fraction of an output pixel's width by which it may stick out of the input coverage and still count as covered."""

SLIVER = 1e-9
"""Weights below this fraction of an output pixel's width (or of one, for interpolation) are dropped as rounding."""

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

_MEDIA = ("vacuum", "air")
_MODES = ("flux", "interpolate")
_SPACINGS = ("linear", "log", "explicit")
_UNIT_EXAMPLES = ("nm", "Angstrom", "AA", "um", "micron", "m")
_CHUNK_NONZEROS = 2**20


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
    """Convert vacuum wavelengths to standard air (IAU standard, Morton 2000, as used by SDSS and VALD).

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
    def from_section(cls, section: GridSection) -> WavelengthGrid:
        """Grid of a descriptor's ``grid:`` section; ``wavelength`` equals ``section.wavelength()`` exactly."""
        return cls(section.wavelength(), section.unit, section.medium, section.spacing, float(section.step))

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


# ----------------------------------------------------------------------------------------------- operators
@dataclass(frozen=True)
class Resampled:
    """Spectra after resampling or convolution.

    Attributes
    ----------
    flux, ivar : numpy.ndarray
        (N, P_out) float64; 0.0 where masked.
    mask : numpy.ndarray
        (N, P_out) bool, True marks a bad output pixel.
    """

    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return int(self.flux.shape[0])


@dataclass(frozen=True, eq=False)
class SparseOperator:
    """A linear map from input to output pixels with its masking rule.

    Spectra are processed in chunks of rows: the chunk is flattened and multiplied by a
    block-diagonal copy of ``weights`` (built once per chunk size and cached), so no transposes
    are needed and every product is a single sparse matrix-vector product.

    Attributes
    ----------
    weights : scipy.sparse.csr_matrix
        (P_out, P_in) positive weights; zeros are not stored.
    covered : numpy.ndarray
        (P_out,) bool, False where the input does not cover the output pixel (always masked).
    max_bad_fraction : float
        An output pixel is masked when the weight on bad input pixels exceeds this fraction of its
        row's total; 0 masks it for any bad pixel with non-zero weight.
    """

    weights: scipy.sparse.csr_matrix
    covered: np.ndarray
    max_bad_fraction: float = 0.0
    _blocks: dict[int, tuple[Any, Any, np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def apply(self, flux: Any, ivar: Any, mask: Any, *, chunk_rows: int | None = None) -> Resampled:
        """Apply the operator to (N, P_in) spectra, chunk by chunk of rows.

        Parameters
        ----------
        flux, ivar : array_like
            (N, P_in) flux and inverse variance.
        mask : array_like
            (N, P_in) bool, True marks a bad pixel.
        chunk_rows : int, optional
            Rows per sparse product (bounds memory); by default about 2**20 stored weights per chunk.

        Returns
        -------
        Resampled
            (N, P_out) arrays.
        """
        flux, ivar, mask = _spectra(flux, ivar, mask, self.weights.shape[1])
        n, p_out = flux.shape[0], self.weights.shape[0]
        rows = chunk_rows or max(1, _CHUNK_NONZEROS // max(1, self.weights.nnz))
        out = Resampled(np.zeros((n, p_out)), np.zeros((n, p_out)), np.ones((n, p_out), dtype=bool))
        for start in range(0, n, rows):
            part = slice(start, start + rows)
            self._apply_rows(flux[part], ivar[part], mask[part], out, part)
        return out

    def _block(self, rows: int) -> tuple[Any, Any, np.ndarray, np.ndarray]:
        """Block-diagonal weights, squared weights, row sums and coverage for ``rows`` flattened spectra (cached)."""
        block = self._blocks.get(rows)
        if block is None:
            weights = _repeat_diagonal(self.weights, rows)
            squared = weights.copy()
            squared.data **= 2
            block = (weights, squared, weights @ np.ones(weights.shape[1]), np.tile(self.covered, rows))
            if len(self._blocks) >= 4:
                self._blocks.clear()
            self._blocks[rows] = block
        return block

    def _apply_rows(self, flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, out: Resampled, part: slice) -> None:
        weights, squared, total, covered = self._block(flux.shape[0])
        good = _good_pixels(flux, ivar, mask).ravel()
        variance = np.divide(1.0, ivar.ravel(), out=np.zeros(good.size), where=good)
        f_sum = weights @ np.where(good, flux.ravel(), 0.0)
        w_good = weights @ good.astype(np.float64)
        w_bad = total - w_good  # exactly 0 when all are good: same products, same summation order
        var_sum = squared @ variance
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out_flux = f_sum / w_good
            out_ivar = w_good * w_good / var_sum
            out_mask = w_bad > self.max_bad_fraction * total
            out_mask |= ~covered
            out_mask |= ~(w_good > 0) | ~np.isfinite(out_flux) | ~(out_ivar > 0) | ~(out_ivar < np.inf)
        out_flux[out_mask] = 0.0
        out_ivar[out_mask] = 0.0
        shape = (flux.shape[0], self.weights.shape[0])
        out.flux[part], out.ivar[part], out.mask[part] = (a.reshape(shape) for a in (out_flux, out_ivar, out_mask))


def _repeat_diagonal(matrix: scipy.sparse.csr_matrix, rows: int) -> scipy.sparse.csr_matrix:
    """Block-diagonal CSR matrix holding ``rows`` copies of ``matrix`` (``kron(eye(rows), matrix)``, faster)."""
    import scipy.sparse as sparse

    if rows == 1:
        return matrix
    (p_out, p_in), nnz = matrix.shape, matrix.nnz
    shift = np.arange(rows, dtype=np.int64)[:, None]
    indices = (matrix.indices[None, :] + shift * p_in).ravel()
    indptr = np.append((matrix.indptr[None, :-1] + shift * nnz).ravel(), rows * nnz)
    return sparse.csr_matrix((np.tile(matrix.data, rows), indices, indptr), shape=(rows * p_out, rows * p_in))


def _good_pixels(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """True where the mask is False, flux is finite and ivar is finite and positive."""
    good = np.isfinite(flux)
    good &= ivar > 0
    good &= ivar < np.inf
    good &= ~mask
    return good


def _spectra(flux: Any, ivar: Any, mask: Any, n_pixels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return flux, ivar (float64) and mask (bool) as (N, n_pixels) arrays; a 1-D spectrum becomes N = 1."""
    flux, ivar, mask = (
        np.atleast_2d(np.asarray(a, dtype=t)) for a, t in ((flux, np.float64), (ivar, np.float64), (mask, bool))
    )
    if flux.ndim != 2 or flux.shape[1] != n_pixels:
        raise GridError(f"flux of shape {flux.shape} does not fit (N, {n_pixels}) for {n_pixels} input wavelengths")
    if ivar.shape != flux.shape or mask.shape != flux.shape:
        raise GridError(f"flux {flux.shape}, ivar {ivar.shape} and mask {mask.shape} must have the same shape")
    return flux, ivar, mask


# --------------------------------------------------------------------------------------------- resampling
def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Merge sorted rows ``a`` (n, Pa) with a sorted shared ``b`` (Pb,); return (n, Pa+Pb) "came from a" flags.

    Ties put ``a`` first. Linear in size per row, unlike a sort.
    """
    n, pa = a.shape
    position = np.arange(pa) + np.searchsorted(b, a, side="left")
    from_a = np.zeros((n, pa + b.size), dtype=bool)
    from_a[np.arange(n)[:, None], position] = True
    return from_a


def _merged_values(a: np.ndarray, b: np.ndarray, from_a: np.ndarray) -> np.ndarray:
    merged = np.empty(from_a.shape)
    merged[from_a] = a.ravel()
    merged[~from_a] = np.tile(b, a.shape[0])
    return merged


def _overlap_entries(edges_in: np.ndarray, edges_out: np.ndarray) -> tuple[np.ndarray, ...]:
    """Block-diagonal (row, column, overlap length) of every overlapping pixel pair, in CSR order.

    ``edges_in`` is (n, P_in+1), one row of input edges per spectrum; ``edges_out`` (P_out+1,) is
    shared. Merging both edge lists splits the axis into segments that each lie in one input and one
    output pixel; a segment's length is the overlap of that pair.
    """
    n, m_in = edges_in.shape
    p_in, p_out = m_in - 1, edges_out.size - 1
    from_in = _merge(edges_in, edges_out)
    merged = _merged_values(edges_in, edges_out, from_in)
    count_in = np.cumsum(from_in, axis=1, dtype=np.int64)[:, :-1]
    i_in = count_in - 1
    i_out = np.arange(count_in.shape[1]) - count_in
    length = merged[:, 1:] - merged[:, :-1]
    keep = length > SLIVER * float(np.min(np.diff(edges_out)))
    keep &= (i_in >= 0) & (i_in < p_in) & (i_out >= 0) & (i_out < p_out)
    block = np.arange(n, dtype=np.int64)[:, None]
    return (i_out + block * p_out)[keep], (i_in + block * p_in)[keep], length[keep]


def _interpolation_entries(
    centres_in: np.ndarray, centres_out: np.ndarray, covered: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Block-diagonal (row, column, weight) of linear interpolation at covered output centres, in CSR order."""
    n, p_in = centres_in.shape
    p_out = centres_out.size
    from_in = _merge(centres_in, centres_out)
    below = np.cumsum(from_in, axis=1, dtype=np.int64)[~from_in].reshape(n, p_out)
    left = np.clip(below - 1, 0, p_in - 2)
    x0 = np.take_along_axis(centres_in, left, axis=1)
    x1 = np.take_along_axis(centres_in, left + 1, axis=1)
    t = np.clip((centres_out[None, :] - x0) / (x1 - x0), 0.0, 1.0)
    block = np.arange(n, dtype=np.int64)[:, None]
    rows = np.broadcast_to((np.arange(p_out) + block * p_out)[..., None], (n, p_out, 2))
    cols = (left + block * p_in)[..., None] + np.arange(2)
    weights = np.stack([1.0 - t, t], axis=-1)
    keep = (weights > SLIVER) & covered[..., None]
    return rows[keep], cols[keep], weights[keep]


def _csr(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, shape: tuple[int, int]) -> scipy.sparse.csr_matrix:
    """CSR matrix from entries already sorted by row (and by column within a row)."""
    import scipy.sparse as sparse

    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sparse.csr_matrix((data, cols, indptr), shape=shape)


def _coverage(wave_in: np.ndarray, wave_out: np.ndarray, mode: str) -> np.ndarray:
    """(n, P_out) bool: output pixel lies inside the input edges (and, to interpolate, centres)."""
    e_in, e_out = pixel_edges(wave_in), pixel_edges(wave_out)
    slack = EDGE_TOLERANCE * np.diff(e_out)
    covered = (e_out[None, :-1] >= e_in[:, :1] - slack) & (e_out[None, 1:] <= e_in[:, -1:] + slack)
    if mode == "interpolate":
        covered &= (wave_out[None, :] >= wave_in[:, :1] - slack) & (wave_out[None, :] <= wave_in[:, -1:] + slack)
    return covered


def _block_operator(wave_in: np.ndarray, wave_out: np.ndarray, mode: str) -> SparseOperator:
    """Operator for (n, P_in) per-row input grids: block-diagonal (n·P_out, n·P_in) on flattened rows."""
    n, p_in = wave_in.shape
    p_out = wave_out.size
    covered = _coverage(wave_in, wave_out, mode)
    if mode == "flux":
        rows, cols, weights = _overlap_entries(pixel_edges(wave_in), pixel_edges(wave_out))
    else:
        rows, cols, weights = _interpolation_entries(wave_in, wave_out, covered)
    return SparseOperator(_csr(rows, cols, weights, (n * p_out, n * p_in)), covered.ravel())


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise GridError(
            f"unknown resampling mode {mode!r}.{did_you_mean(str(mode), _MODES)} Allowed: flux, interpolate"
        )


def resampling_operator(wave_in: Any, grid: WavelengthGrid | Any, mode: Mode = "flux") -> SparseOperator:
    """Build the (P_out, P_in) operator that resamples spectra on ``wave_in`` onto ``grid``.

    Build it once and :meth:`SparseOperator.apply` it to as many chunks of spectra as share ``wave_in``.

    Parameters
    ----------
    wave_in : array_like
        (P_in,) input pixel centres, strictly increasing, in the grid's unit and medium.
    grid : WavelengthGrid or array_like
        Output grid (a 1-D array is taken to be in the unit and medium of ``wave_in``).
    mode : {"flux", "interpolate"}
        ``"flux"``: each output pixel is the overlap-length-weighted mean of the input pixels it
        overlaps (flux-conserving rebinning). ``"interpolate"``: linear interpolation between input
        pixel centres.

    Raises
    ------
    GridError
        For non-finite, duplicated or non-monotonic wavelengths (naming the first bad index) or an
        unknown mode.
    """
    _check_mode(mode)
    wave_out = _grid_values(grid)
    wave_in = np.asarray(wave_in, dtype=np.float64)
    if wave_in.ndim != 1 or wave_in.size < 2:
        raise GridError(f"input wavelengths must be 1-D with at least 2 pixels, got shape {wave_in.shape}")
    check_increasing(wave_in, "input wavelengths")
    return _block_operator(wave_in[None, :], wave_out, mode)


def resample(
    wave_in: Any,
    flux: Any,
    ivar: Any,
    mask: Any,
    grid: WavelengthGrid | Any,
    mode: Mode = "flux",
    *,
    chunk_rows: int | None = None,
) -> Resampled:
    """Resample N spectra onto ``grid``, propagating flux, inverse variance and mask.

    Parameters
    ----------
    wave_in : array_like
        (P_in,) shared or (N, P_in) per-spectrum input pixel centres, strictly increasing, in the
        unit and medium of ``grid`` (convert first with :func:`convert_wavelength`).
    flux, ivar : array_like
        (N, P_in) flux and inverse variance; non-finite flux and non-positive or non-finite ivar
        count as bad pixels.
    mask : array_like
        (N, P_in) bool, True marks a bad input pixel.
    grid : WavelengthGrid or array_like
        Output grid, (P_out,).
    mode : {"flux", "interpolate"}
        See :func:`resampling_operator`.
    chunk_rows : int, optional
        Spectra per sparse product; bounds memory for very large N.

    Returns
    -------
    Resampled
        (N, P_out) flux, ivar (float64, 0 where masked) and mask (bool). An output pixel is masked
        when any input pixel with non-zero weight is bad, or when it is not fully covered by the input.

    Raises
    ------
    GridError
        For bad wavelengths (message starts with what is wrong, e.g. "input wavelengths are not
        strictly increasing at index 17 (...)"; the caller prefixes the file), shapes or mode.
    """
    _check_mode(mode)
    wave_in = np.asarray(wave_in, dtype=np.float64)
    if wave_in.ndim == 2 and wave_in.shape[0] > 0 and (wave_in == wave_in[:1]).all():
        wave_in = wave_in[0]
    if wave_in.ndim == 1:
        return resampling_operator(wave_in, grid, mode).apply(flux, ivar, mask, chunk_rows=chunk_rows)
    return _resample_per_row(wave_in, flux, ivar, mask, _grid_values(grid), mode, chunk_rows)


def _resample_per_row(
    wave_in: np.ndarray, flux: Any, ivar: Any, mask: Any, wave_out: np.ndarray, mode: str, chunk_rows: int | None
) -> Resampled:
    """Resample with one input grid per spectrum: block-diagonal operators over chunks of rows."""
    if wave_in.ndim != 2 or wave_in.shape[1] < 2:
        raise GridError(f"input wavelengths must be (P_in,) or (N, P_in) with P_in >= 2, got shape {wave_in.shape}")
    flux, ivar, mask = _spectra(flux, ivar, mask, wave_in.shape[1])
    if wave_in.shape[0] != flux.shape[0]:
        raise GridError(f"{wave_in.shape[0]} rows of input wavelengths for {flux.shape[0]} spectra")
    _check_rows_increasing(wave_in, "input wavelengths")
    n, p_in = flux.shape
    rows = chunk_rows or max(1, _CHUNK_NONZEROS // (p_in + wave_out.size))
    parts = []
    for i in range(0, n, rows):
        part = slice(i, i + rows)
        block = _block_operator(wave_in[part], wave_out, mode)
        out = block.apply(flux[part].reshape(1, -1), ivar[part].reshape(1, -1), mask[part].reshape(1, -1))
        parts.append([a.reshape(-1, wave_out.size) for a in (out.flux, out.ivar, out.mask)])
    return Resampled(*(np.concatenate(arrays) for arrays in zip(*parts, strict=True)))


# -------------------------------------------------------------------------------------------- convolution
def _kernel_sigma(wave: np.ndarray, r_in: float, r_out: float) -> np.ndarray:
    if not (math.isfinite(r_out) and r_out > 0):
        raise GridError(f"target resolving power r_out must be finite and positive, got {r_out}")
    if not r_out < r_in:
        raise GridError(
            f"target resolving power r_out={r_out:g} must be lower than the input r_in={r_in:g}; convolution can only lower the resolution"
        )
    return wave * math.sqrt(1.0 / r_out**2 - 1.0 / r_in**2) / FWHM_PER_SIGMA


def convolution_operator(
    wave: WavelengthGrid | Any,
    r_in: float,
    r_out: float,
    *,
    max_bad_fraction: float = 0.1,
    min_coverage: float = 0.9,
    truncate: float = 4.0,
) -> SparseOperator:
    """Build the banded Gaussian kernel that degrades spectra on ``wave`` from ``r_in`` to ``r_out``.

    Row j holds ``exp(−(λ_i − λ_j)²/2σ_j²) · Δλ_i / (√(2π) σ_j)`` for ``|λ_i − λ_j| ≤ truncate·σ_j``,
    with ``σ_j = λ_j·sqrt(1/r_out² − 1/r_in²)/2.3548``; the pixel widths ``Δλ_i`` make it correct on
    linear and log grids alike. Output pixels where less than ``min_coverage`` of the (truncated)
    Gaussian lies within the grid's edges are marked uncovered.

    Raises
    ------
    GridError
        When ``r_out ≥ r_in`` or ``r_out`` is not positive, or for bad wavelengths.
    """
    import scipy.sparse as sparse
    from scipy.special import ndtr

    wave = _grid_values(wave)
    sigma = _kernel_sigma(wave, float(r_in), float(r_out))
    lo = np.searchsorted(wave, wave - truncate * sigma, side="left")
    hi = np.searchsorted(wave, wave + truncate * sigma, side="right")
    counts = hi - lo
    rows = np.repeat(np.arange(wave.size), counts)
    cols = np.repeat(lo, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    edges = pixel_edges(wave)
    z = (wave[cols] - wave[rows]) / sigma[rows]
    weights = np.exp(-0.5 * z * z) * np.diff(edges)[cols] / (math.sqrt(2.0 * math.pi) * sigma[rows])
    matrix = sparse.csr_matrix((weights, (rows, cols)), shape=(wave.size, wave.size))
    upper = np.minimum((edges[-1] - wave) / sigma, truncate)
    lower = np.maximum((edges[0] - wave) / sigma, -truncate)
    coverage = (ndtr(upper) - ndtr(lower)) / (ndtr(truncate) - ndtr(-truncate))
    return SparseOperator(matrix, coverage >= min_coverage, max_bad_fraction)


def convolve_to_resolution(
    wave: WavelengthGrid | Any,
    flux: Any,
    ivar: Any,
    mask: Any,
    r_in: float,
    r_out: float,
    *,
    max_bad_fraction: float = 0.1,
    min_coverage: float = 0.9,
    truncate: float = 4.0,
    chunk_rows: int | None = None,
) -> Resampled:
    """Degrade spectra on one grid from resolving power ``r_in`` to ``r_out`` with a Gaussian LSF.

    The kernel FWHM is ``λ·sqrt(1/r_out² − 1/r_in²)`` (see :func:`convolution_operator`). Normalised
    convolution over good pixels g: ``f = K(g f) / K g``, ``var = K²(g σ²) / (K g)²``.

    Parameters
    ----------
    wave : WavelengthGrid or array_like
        (P,) grid of the spectra; the output is on the same grid.
    flux, ivar, mask : array_like
        (N, P) spectra.
    r_in, r_out : float
        Input and target resolving power, ``r_out < r_in`` (``r_in`` may be ``inf``).
    max_bad_fraction : float
        Mask an output pixel when more than this fraction of its kernel weight falls on bad pixels
        (default 10%); otherwise it is computed from the good pixels alone.
    min_coverage : float
        Mask an output pixel when less than this fraction of its kernel lies on the grid (default 90%).
    truncate : float
        Kernel half-width in σ (default 4).
    chunk_rows : int, optional
        Spectra per sparse product.

    Returns
    -------
    Resampled
        (N, P) arrays; masked pixels have flux 0 and ivar 0.

    Raises
    ------
    GridError
        When ``r_out ≥ r_in``.
    """
    operator = convolution_operator(
        wave, r_in, r_out, max_bad_fraction=max_bad_fraction, min_coverage=min_coverage, truncate=truncate
    )
    return operator.apply(flux, ivar, mask, chunk_rows=chunk_rows)
