"""Resampling of many spectra at once onto a wavelength grid, propagating flux, inverse variance and mask.

Every spectrum is brought onto the descriptor's grid before storage (see DESIGN.md, "Data flow"):
native wavelengths → :func:`~starlabel.wavelengths.convert_wavelength` (unit and medium) →
:func:`~starlabel.wavelengths.doppler_shift_to_rest` (where a velocity is given) → :func:`resample` →
optionally :func:`~starlabel.lsf.convolve_to_resolution`.

Conventions
-----------
Pixel edges
    As :func:`~starlabel.grid.pixel_edges`: midpoints between neighbouring centres, the two outer
    edges half a neighbouring step beyond the first and last centres.
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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from starlabel.grid import WavelengthGrid, _grid_values, pixel_edges
from starlabel.suggest import did_you_mean
from starlabel.wavelengths import GridError, _check_rows_increasing, check_increasing

if TYPE_CHECKING:
    import scipy.sparse

Mode = Literal["flux", "interpolate"]

EDGE_TOLERANCE = 1e-6
"""Fraction of an output pixel's width by which it may stick out of the input coverage and still count as covered."""

SLIVER = 1e-9
"""Weights below this fraction of an output pixel's width (or of one, for interpolation) are dropped as rounding."""

_MODES = ("flux", "interpolate")
_CHUNK_NONZEROS = 2**20


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
        unit and medium of ``grid`` (convert first with :func:`~starlabel.wavelengths.convert_wavelength`).
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
