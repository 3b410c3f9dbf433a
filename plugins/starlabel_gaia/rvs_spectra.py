"""From :class:`RvsBatch` to :class:`Spectra`: inverse variances and mask, null ids and near-empty spectra
dropped and reported, batch by batch.

A file's batches become a sequence of ``Spectra`` parts (:func:`iter_spectra`) whose concatenation
(:func:`starlabel.containers.concat_spectra`) is what the reader's ``read`` returns: the same rows, values and problem lines in
the same order (the lines are all carried by the last part). ``flux`` stays float32, the archive's values;
``ivar = 1 / flux_error²`` is computed in float64 from them, exactly as before. The array work of a batch
(:func:`ready`) can run in the thread that parsed it; only the message lines are made in file order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from starlabel.containers import Spectra
from starlabel_gaia.ids import null_ids
from starlabel_gaia.rvs_batch import RvsBatch
from starlabel_gaia.rvs_grid import RVS_PIXELS, rvs_wavelength


def derive(flux: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse variance and mask of spectra as the reader gives them.

    Parameters
    ----------
    flux, error : numpy.ndarray
        (N, 2401) float32 (or float64) values of the file; NaN where missing.

    Returns
    -------
    ivar : numpy.ndarray
        (N, 2401) float64: ``1 / error²`` where ``error`` is finite and positive, ``flux`` is finite and the
        result is finite (computed in float64 from the stored values), else 0 (as
        :meth:`Spectra.ivar_from_sigma` and a zeroed non-finite flux give).
    mask : numpy.ndarray
        (N, 2401) bool, True where ``ivar`` is 0.
    """
    ivar = error.astype(np.float64)  # a copy, squared and inverted in place
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        np.multiply(ivar, ivar, out=ivar)
        np.divide(1.0, ivar, out=ivar)
    usable = error > 0  # False for NaN
    usable &= ivar < np.inf  # False for an overflow (tiny error) or NaN
    usable &= np.isfinite(flux)
    np.logical_not(usable, out=usable)
    np.copyto(ivar, 0.0, where=usable)
    usable |= ivar == 0  # now the mask
    return ivar, usable


@dataclass
class RvsPart:
    """A batch made ready for :class:`Spectra`: ivar and mask computed, null ids and sparse spectra removed.

    Attributes
    ----------
    rows : int
        Rows of the batch before the removal (they number the null-id messages).
    source_id, flux, ivar, mask, meta
        The kept rows: int64 ids, float32 flux, float64 ivar, bool mask, per-source scalars.
    problems : list of str
        The batch's own problem lines (skipped rows, truncation).
    null : list of tuple of (int, int)
        Removed rows with a null id: (row in the batch, id).
    sparse : list of tuple of (int, int)
        Removed near-empty spectra: (id, valid pixels).
    """

    rows: int
    source_id: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    meta: dict[str, np.ndarray]
    problems: list[str] = field(default_factory=list)
    null: list[tuple[int, int]] = field(default_factory=list)
    sparse: list[tuple[int, int]] = field(default_factory=list)


def ready(batch: RvsBatch, min_valid_pixels: int) -> RvsPart:
    """The array work of one batch: ivar, mask, and the removal of null ids and spectra with fewer than
    ``min_valid_pixels`` valid pixels (noted for the messages)."""
    ivar, mask = derive(batch.flux, batch.flux_error)
    ids = batch.source_id
    null = null_ids(ids, np.zeros(len(batch), dtype=bool))
    valid = RVS_PIXELS - np.count_nonzero(mask, axis=1)
    sparse = (valid < min_valid_pixels) & ~null
    flux = batch.flux if batch.flux.dtype == np.float32 else batch.flux.astype(np.float32)
    part = RvsPart(
        rows=len(batch),
        source_id=ids,
        flux=flux,
        ivar=ivar,
        mask=mask,
        meta=dict(batch.meta),
        problems=batch.problems,
        null=[(int(row), int(ids[row])) for row in np.flatnonzero(null)],
        sparse=[(int(ids[row]), int(valid[row])) for row in np.flatnonzero(sparse)],
    )
    keep = ~(null | sparse)
    if not keep.all():
        part.source_id, part.flux, part.ivar, part.mask = ids[keep], flux[keep], ivar[keep], mask[keep]
        part.meta = {key: value[keep] for key, value in batch.meta.items()}
    return part


class SpectraParts:
    """Turns the readied batches of one file into ``Spectra`` parts, collecting the problem lines in file order.

    Parameters
    ----------
    label : str
        How messages name the file.
    min_valid_pixels : int
        The threshold the batches were readied with (named in the messages).
    """

    def __init__(self, label: str, min_valid_pixels: int) -> None:
        self.label = label
        self.min_valid_pixels = min_valid_pixels
        self._wavelength = rvs_wavelength()
        self._seen = 0  # rows of the batches so far (the numbering of null-id messages)
        self._batch_lines: list[str] = []
        self._null_lines: list[str] = []
        self._sparse_lines: list[str] = []
        self._ids: list[np.ndarray] = []

    def part(self, part: RvsPart | RvsBatch) -> Spectra:
        """The kept spectra of ``part`` (a batch is readied here first); its lines are kept for :meth:`problems`."""
        if isinstance(part, RvsBatch):
            part = ready(part, self.min_valid_pixels)
        self._batch_lines += part.problems
        for row, source_id in part.null:
            self._null_lines.append(
                f"{self.label}: spectrum {self._seen + row} has a null source_id ({source_id}); skipped"
            )
        for source_id, valid in part.sparse:
            self._sparse_lines.append(
                f"{self.label}: source_id {source_id} has {valid} valid pixels, fewer than "
                f"min_valid_pixels = {self.min_valid_pixels}; skipped"
            )
        self._seen += part.rows
        self._ids.append(part.source_id)
        return Spectra(
            source_id=part.source_id,
            wavelength=self._wavelength,
            flux=part.flux,
            ivar=part.ivar,
            mask=part.mask,
            unit="nm",
            medium="vacuum",
            meta=part.meta,
        )

    def problems(self) -> list[str]:
        """Every problem line so far, in file order: the batches' lines, null ids, sparse spectra, repeated ids."""
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)
        return self._batch_lines + self._null_lines + self._sparse_lines + _duplicates(self.label, ids)


def iter_spectra(parts: Iterable[RvsPart | RvsBatch], label: str, min_valid_pixels: int) -> Iterator[Spectra]:
    """The ``Spectra`` of a file's readied batches (see :class:`SpectraParts`); the last carries every
    problem line, so each is handed on only once the next has arrived."""
    maker = SpectraParts(label, min_valid_pixels)
    held: Spectra | None = None
    for part in parts:
        if held is not None:
            yield held
        held = maker.part(part)
    if held is None:
        held = maker.part(RvsBatch.empty())
    held.problems = maker.problems()
    yield held


def _duplicates(label: str, ids: np.ndarray) -> list[str]:
    """One line when some source ids occur more than once (all kept)."""
    unique, counts = np.unique(ids, return_counts=True)
    repeated = unique[counts > 1]
    if repeated.size == 0:
        return []
    shown = ", ".join(str(v) for v in repeated[:3]) + (", ..." if repeated.size > 3 else "")
    return [f"{label}: {repeated.size} source_id values occur more than once (e.g. {shown}); all kept"]
