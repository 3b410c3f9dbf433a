"""``RvsBatch``: RVS spectra as read from one file or file member, before they become ``Spectra``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from starlabel_gaia.rvs_grid import RVS_PIXELS

META_INT: tuple[str, ...] = ("solution_id", "combined_transits", "combined_ccds", "deblended_ccds")
"""Integer per-source columns kept in ``Spectra.meta`` (int64; -1 where missing)."""
META_FLOAT: tuple[str, ...] = ("ra", "dec")
"""Float per-source columns kept in ``Spectra.meta`` (float64, degrees; NaN where missing)."""
INT_MISSING = -1


@dataclass
class RvsBatch:
    """N RVS spectra on the 2401-pixel grid, as stored (float32), with their per-source scalars.

    Attributes
    ----------
    source_id : numpy.ndarray
        (N,) int64.
    flux, flux_error : numpy.ndarray
        (N, 2401) float32; NaN where the file has no value.
    meta : dict of str to numpy.ndarray
        Every key of :data:`META_INT` (int64, -1 = missing) and :data:`META_FLOAT` (float64, NaN = missing).
    problems : list of str
        Rows or members skipped, truncation, ... one line each naming the file.
    """

    source_id: np.ndarray
    flux: np.ndarray
    flux_error: np.ndarray
    meta: dict[str, np.ndarray]
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.source_id.shape[0])

    @classmethod
    def empty(cls, problems: Sequence[str] = ()) -> RvsBatch:
        """A batch of no spectra (carrying ``problems``)."""
        return cls.from_rows(
            [], np.zeros((0, RVS_PIXELS), np.float32), np.zeros((0, RVS_PIXELS), np.float32), {}, problems
        )

    @classmethod
    def from_rows(
        cls,
        source_id: Sequence[int] | np.ndarray,
        flux: np.ndarray,
        flux_error: np.ndarray,
        scalars: Mapping[str, Sequence[object]],
        problems: Iterable[str] = (),
    ) -> RvsBatch:
        """Build a batch from per-row ids and scalars (Python values or None), filling missing meta.

        Parameters
        ----------
        source_id : sequence of int
            Exact ids (Python ints or int64), one per row.
        flux, flux_error : numpy.ndarray
            (N, 2401) arrays, converted to float32.
        scalars : mapping of str to sequence
            Per-row values of the meta columns found in the file; absent keys are filled as missing.
        problems : iterable of str
            Lines to carry.
        """
        n = len(source_id)
        meta: dict[str, np.ndarray] = {}
        for key in META_INT:
            meta[key] = _ints(scalars.get(key), n)
        for key in META_FLOAT:
            meta[key] = _floats(scalars.get(key), n)
        return cls(
            source_id=np.array(source_id, dtype=np.int64).reshape(n),
            flux=np.asarray(flux, dtype=np.float32).reshape(n, RVS_PIXELS),
            flux_error=np.asarray(flux_error, dtype=np.float32).reshape(n, RVS_PIXELS),
            meta=meta,
            problems=list(problems),
        )

    @classmethod
    def concat(cls, batches: Sequence[RvsBatch], problems: Iterable[str] = ()) -> RvsBatch:
        """One batch holding every spectrum and problem of ``batches``, in order, plus ``problems``."""
        lines = [line for batch in batches for line in batch.problems] + list(problems)
        if not batches:
            return cls.empty(lines)
        return cls(
            source_id=np.concatenate([b.source_id for b in batches]),
            flux=np.concatenate([b.flux for b in batches]),
            flux_error=np.concatenate([b.flux_error for b in batches]),
            meta={key: np.concatenate([b.meta[key] for b in batches]) for key in (*META_INT, *META_FLOAT)},
            problems=lines,
        )


def _ints(values: Sequence[object] | None, n: int) -> np.ndarray:
    """int64 array of ``values`` (None or unparseable → -1)."""
    if values is None:
        return np.full(n, INT_MISSING, dtype=np.int64)
    return np.array([parse_int(v) for v in values], dtype=np.int64).reshape(n)


def _floats(values: Sequence[object] | None, n: int) -> np.ndarray:
    """float64 array of ``values`` (None or unparseable → NaN)."""
    if values is None:
        return np.full(n, np.nan, dtype=np.float64)
    return np.array([parse_float(v) for v in values], dtype=np.float64).reshape(n)


def parse_int(value: object) -> int:
    """An exact int from an int, numpy integer, str or bytes; -1 when missing or not an integer."""
    if value is None or isinstance(value, float | np.floating):
        return INT_MISSING
    try:
        number = int(value.strip() if isinstance(value, str | bytes) else value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return INT_MISSING
    return number if -(2**63) <= number < 2**63 else INT_MISSING


def parse_float(value: object) -> float:
    """A float from a number, str or bytes; NaN when missing or not a number."""
    if value is None:
        return float("nan")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
