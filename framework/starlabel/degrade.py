"""``starlabel degrade``: a finished store → a new store as another instrument (a target descriptor) would give it.

Teams prototype a network for a new survey by degrading spectra they already have. The source store is
read chunk by chunk; each spectrum is

1. convolved from the source descriptor's resolving power ``R_s`` to the target's ``R_t`` (Gaussian LSF
   of FWHM ``λ·sqrt(1/R_t² − 1/R_s²)``, :mod:`starlabel.lsf`; ``R_t = R_s`` skips it),
2. resampled onto the target grid (its unit and medium; :mod:`starlabel.resample`, the target's
   ``ingest.resample`` mode). Both linear maps are applied as one composed operator, so the inverse
   variance of every output pixel is exact for independent source pixels (resampling convolved pixels
   one step at a time would ignore the correlation the convolution introduces). An output pixel is
   masked where a bad source pixel lies inside it, where more than 10% of its kernel weight falls on bad
   pixels, where the kernel runs off the source grid, or where the source does not cover it; the
   target's ``mask`` regions are added as ingest adds them,
3. given extra Gaussian noise up to a per-star S/N drawn from ``--snr`` (optional; see :func:`add_noise`),
   *before* 4 so that the continuum is fitted to noisy flux exactly as when target spectra are ingested
   (the S/N ingest measures, median ``|f|·sqrt(ivar)``, does not change under continuum division),
4. normalised with the target descriptor's normaliser, as ingest does.

``source_id``, ``aux/*`` and ``labels/*`` are copied unchanged: the target's auxiliary entries must be
ones the store holds, and its ``labels.columns`` must be stored labels (``label_map`` renames them). Rows
left without a good pixel are dropped, as ingest drops them. The new store records the target
descriptor (cropped to the source's coverage with ``crop=True``, and then also written as
``OUT.descriptor.yaml``) and its hash as ingest would, so ``starlabel train TARGET --store OUT`` accepts
it and a bundle trained on it accepts ingested target spectra (:func:`starlabel.bundle.check_compatible`),
plus a ``degraded_from`` record. Like ingest, an interrupted run resumes chunk by chunk.

The checks and operators are built by :mod:`starlabel.degrade_plan` before anything is written.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from starlabel.degrade_plan import DegradeError, DegradeOptions, Plan, descriptor_path, plan_degrade
from starlabel.storage import storage_errors
from starlabel.store import Store, StoreBatch, StoreError, StoreLayout

if TYPE_CHECKING:
    from starlabel.descriptor import ResolvedDescriptor
    from starlabel.plugins import Plugins
    from starlabel.snr import SnrDistribution

REPORT_FILE = "degrade_report.json"
BLOCK_VALUES = 2**22
"""Source values (rows × pixels) processed at once: bounds the float64 temporaries of a chunk of long spectra."""
RESUME = "re-run the same `starlabel degrade` command to resume (the store stays incomplete until then)"


@dataclass
class DegradeReport:
    """What a degrade run did; also written as ``degrade_report.json`` in the output store."""

    store: str
    source: str
    rows_in: int
    rows: int = 0
    dropped: int = 0
    kept: int = 0
    duplicate_ids: int = 0
    resolution_source: float = 0.0
    resolution_target: float = 0.0
    convolved: bool = False
    n_pixels: int = 0
    covered_fraction: float = 1.0
    cropped: bool = False
    descriptor_file: str | None = None
    snr: str | None = None
    seed: int = 0
    already_noisier: int = 0
    snr_median: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


# ------------------------------------------------------------------------------------------------ noise
def measure_snr(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-spectrum S/N as ingest measures it: median of ``|flux|·sqrt(ivar)`` over good pixels (0 if none)."""
    from starlabel.ingest_grid import measured_snr

    return measured_snr(flux, ivar, mask)


def add_noise(
    flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, rows: np.ndarray, dist: SnrDistribution, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Add Gaussian noise so that each spectrum reaches a target S/N drawn from ``dist``.

    Row ``k`` draws its target ``s`` and its noise from a generator seeded with ``(seed, rows[k])``. With
    ``c`` the median ``|flux|`` of its good pixels, each good pixel gets variance
    ``max(0, (c/s)² − 1/ivar)`` added and ``ivar`` becomes ``1/max(1/ivar, (c/s)²)``; a spectrum whose
    measured S/N (:func:`measure_snr`) is already at or below ``s`` is left as it is.

    Parameters
    ----------
    flux, ivar, mask : numpy.ndarray
        (N, P) spectra; masked pixels are left alone.
    rows : numpy.ndarray
        (N,) non-negative row numbers that seed each spectrum's draws.
    dist : SnrDistribution
        Target S/N distribution.
    seed : int
        Non-negative seed.

    Returns
    -------
    flux, ivar : numpy.ndarray
        (N, P) new arrays.
    target : numpy.ndarray
        (N,) the S/N drawn for each spectrum.
    left : numpy.ndarray
        (N,) bool, True for spectra already at or below their target (unchanged).
    """
    flux, ivar = np.array(flux, dtype=np.float64), np.array(ivar, dtype=np.float64)
    measured = measure_snr(flux, ivar, mask)
    target = np.zeros(len(flux))
    left = np.zeros(len(flux), dtype=bool)
    for k, row in enumerate(rows):
        rng = np.random.default_rng([int(seed), int(row)])
        target[k] = float(dist.sample(rng, 1)[0])
        noise = rng.standard_normal(flux.shape[1])  # drawn whatever the mask, so the stream is fixed per row
        good = ~mask[k]
        if not good.any():
            continue
        if not measured[k] > target[k]:
            left[k] = True
            continue
        level = float(np.median(np.abs(flux[k, good])))
        now = 1.0 / ivar[k, good]
        added = np.maximum((level / target[k]) ** 2 - now, 0.0)
        flux[k, good] += noise[good] * np.sqrt(added)
        ivar[k, good] = 1.0 / (now + added)
    return flux, ivar, target, left


# ------------------------------------------------------------------------------------------- processing
def _process(plan: Plan, batch: StoreBatch, first_row: int, options: DegradeOptions) -> tuple[StoreBatch, int, int]:
    """One chunk of source rows → rows of the output store, the rows dropped, the spectra left noisier."""
    from starlabel.resample import _good_pixels

    out = plan.operator.apply(batch.flux, batch.ivar, batch.mask)
    flux_in = np.asarray(batch.flux, dtype=np.float64)
    bad_in = ~_good_pixels(flux_in, np.asarray(batch.ivar, dtype=np.float64), np.asarray(batch.mask, dtype=bool))
    inside = (plan.footprint @ bad_in.T.astype(np.float64)).T > 0  # a bad source pixel within the output pixel
    mask = out.mask | inside | plan.region_mask
    flux, ivar = np.where(mask, 0.0, out.flux), np.where(mask, 0.0, out.ivar)
    left = np.zeros(len(batch), dtype=bool)
    if options.snr is not None:
        rows = first_row + np.arange(len(batch))
        flux, ivar, _, left = add_noise(flux, ivar, mask, rows, options.snr, options.seed)
    normalised = plan.normaliser.normalise(plan.grid.wavelength, flux, ivar, mask, plan.arms)
    mask = normalised.mask
    flux, ivar = np.where(mask, 0.0, normalised.flux), np.where(mask, 0.0, normalised.ivar)
    good = ~mask.all(axis=1)
    snr = measure_snr(flux, ivar, mask)
    result = StoreBatch(
        batch.source_id[good],
        flux[good],
        ivar[good],
        mask[good],
        snr[good],
        {key: (batch.aux[stored][0][good], batch.aux[stored][1][good]) for key, stored in plan.aux.items()},
        {name: tuple(a[good] for a in batch.labels[stored]) for name, stored in plan.labels.items()},  # type: ignore[misc]
    )
    return result, int((~good).sum()), int((left & good).sum())


def _commit(store: Store, batch: StoreBatch, record: dict[str, Any]) -> None:
    """Append one processed chunk, then record it as committed (the unit a resumed run starts after)."""
    store.append(batch)
    store.write_progress(record)


# ----------------------------------------------------------------------------------------------- output
def _job(plan: Plan, options: DegradeOptions) -> dict[str, Any]:
    """What identifies a run: a store left by another job is never resumed."""
    return {
        "kind": "degrade",
        "source": str(plan.source.path.resolve()),
        "source_descriptor_hash": plan.source.descriptor_hash,
        "source_rows": plan.source.n_rows,
        "descriptor_hash": plan.target.hash(),
        "snr": str(options.snr) if options.snr is not None else None,
        "seed": int(options.seed),
        "labels": dict(plan.labels),
        "aux": dict(plan.aux),
    }


def _remove(path: Path) -> None:
    """Remove the store at ``path`` and the cropped descriptor (and grid file) a run wrote beside it."""
    with storage_errors(path, "remove the existing store (--overwrite)", DegradeError):
        shutil.rmtree(path)
        descriptor_path(path).unlink(missing_ok=True)
        (path.parent / f"{path.name}.grid.txt").unlink(missing_ok=True)


def _existing(out: Path, job: dict[str, Any], overwrite: bool) -> Store | None:
    """The unfinished store of this same job at ``out`` (to resume), or None once ``out`` is free."""
    if not out.exists():
        return None
    try:
        store = Store.open(out, "r+", allow_incomplete=True)
    except StoreError:
        raise DegradeError(
            f"{out}: exists and is not a starlabel store; choose another --out (degrade never removes other folders)"
        ) from None
    if store.complete:
        if not overwrite:
            raise DegradeError(
                f"{out}: already holds a complete store; pass --overwrite to replace it, or choose another --out"
            )
        _remove(out)
        return None
    try:
        saved = store.read_progress()
    except StoreError:
        saved = None
    if saved is None or saved.get("job") != job:
        if not overwrite:
            raise DegradeError(
                f"{out}: holds an unfinished store of other inputs (another source, target, --snr, --seed or "
                "--map); re-run that command to finish it, or pass --overwrite to replace it"
            )
        _remove(out)
        return None
    with storage_errors(out, "remove the temporary files of an interrupted write", DegradeError):
        for partial in out.rglob("*.partial"):
            partial.unlink()
    return store


def _record(plan: Plan, options: DegradeOptions, out: Path) -> dict[str, Any]:
    cropped = plan.cropped_yaml is not None
    return {
        "store": str(plan.source.path.resolve()),
        "descriptor_name": plan.source.meta["descriptor"].get("name"),
        "descriptor_hash": plan.source.descriptor_hash,
        "resolution": plan.r_source,
        "target_resolution": plan.r_target,
        "convolved": plan.convolved,
        "snr": str(options.snr) if options.snr is not None else None,
        "seed": int(options.seed),
        "labels": dict(plan.labels),
        "aux": dict(plan.aux),
        "covered_fraction": plan.covered_fraction,
        "cropped": cropped,
        "descriptor_file": descriptor_path(out).name if cropped else None,
        "descriptor_yaml": plan.cropped_yaml,
    }


def _write_cropped(plan: Plan, out: Path) -> None:
    if plan.cropped_yaml is None:
        return
    path = descriptor_path(out)
    with storage_errors(path, "write the cropped descriptor", DegradeError, then=RESUME):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(plan.cropped_yaml, encoding="utf-8")
        if plan.cropped_grid is not None:
            np.savetxt(out.parent / f"{out.name}.grid.txt", plan.cropped_grid, fmt="%.17g")


def _create(plan: Plan, plugins: Plugins, out: Path, options: DegradeOptions) -> Store:
    source = plan.source
    layout = StoreLayout(
        n_pixels=len(plan.grid),
        id_kind=source.layout.id_kind,
        aux={key: list(source.layout.aux[stored]) for key, stored in plan.aux.items()},
        labels={name: source.layout.labels[stored] for name, stored in plan.labels.items()},
        chunk_rows=plan.target.model.ingest.chunk_rows,
    )
    return Store.create(
        out,
        layout,
        descriptor=plan.target.resolved(),
        descriptor_hash=plan.target.hash(),
        grid=plan.grid.as_dict(),
        plugins=plugins.versions(),
        extra={"degraded_from": _record(plan, options, out)},
    )


# ------------------------------------------------------------------------------------------------- run
def degrade(
    source_path: str | Path,
    target: ResolvedDescriptor,
    plugins: Plugins,
    out: str | Path,
    options: DegradeOptions | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> DegradeReport:
    """Write the store ``out``: the complete store at ``source_path`` as the ``target`` instrument would give it.

    See the module docstring for the steps. An unfinished run of the same job at ``out`` is resumed.

    Parameters
    ----------
    source_path : path
        A complete store whose descriptor gives ``instrument.resolution``.
    target : ResolvedDescriptor
        The target survey descriptor (its grid, mask, normalisation, arms, resolving power, auxiliary
        entries and labels).
    plugins : Plugins
        Installed components (the target's normaliser).
    out : path
        Output store folder.
    options : DegradeOptions, optional
        S/N distribution, seed, crop, label map, overwrite.
    progress : callable, optional
        Called as ``progress(source_rows_done, source_rows_total)`` after each chunk.

    Returns
    -------
    DegradeReport

    Raises
    ------
    DegradeError
        Target resolution higher than the source's, target grid not covered (without ``crop``), labels
        or auxiliary entries the store cannot supply, duplicate ids under the target's ``error`` policy,
        or an output in the way.
    starlabel.store.StoreError
        The source is not a complete store, or the output cannot be written (the message says how to resume).
    """
    options = options or DegradeOptions()
    source_path, out = Path(source_path), Path(out)
    source = Store.open(source_path)
    if out.resolve() == source_path.resolve():
        raise DegradeError(f"{out}: the output store must differ from the source store")
    plan = plan_degrade(source, target, plugins, out, options)
    _check_duplicates(plan)
    job = _job(plan, options)
    store = _existing(out, job, options.overwrite)
    _write_cropped(plan, out)
    record: dict[str, Any] = {"job": job, "source_row": 0, "rows": 0, "dropped": 0, "noisier": 0}
    if store is None:
        store = _create(plan, plugins, out, options)
        store.write_progress(record)
    else:
        record = store.read_progress() or record
        store.truncate(record["rows"])
    total, chunk = source.n_rows, plan.target.model.ingest.chunk_rows
    block = max(1, BLOCK_VALUES // max(1, source.layout.n_pixels))
    for start in range(record["source_row"], total, chunk):
        stop = min(start + chunk, total)
        rows = source.read(start, stop)
        parts = [
            _process(plan, rows.take(slice(a, a + block)), start + a, options) for a in range(0, stop - start, block)
        ]
        batch = StoreBatch.concat([part[0] for part in parts])
        dropped, noisier = sum(part[1] for part in parts), sum(part[2] for part in parts)
        record = {
            **record,
            "source_row": stop,
            "rows": record["rows"] + len(batch),
            "dropped": record["dropped"] + dropped,
            "noisier": record["noisier"] + noisier,
        }
        _commit(store, batch, record)
        if progress:
            progress(stop, total)
    return _finish(store, plan, record, options)


def _check_duplicates(plan: Plan) -> None:
    if plan.target.model.ingest.duplicates != "error" or plan.source.n_rows == 0:
        return
    ids = np.asarray(plan.source.array("source_id")[:])
    values, counts = np.unique(ids, return_counts=True)
    repeated = values[counts > 1]
    if repeated.size:
        shown = ", ".join(str(v) for v in repeated[:5]) + (", ..." if repeated.size > 5 else "")
        raise DegradeError(
            f"{plan.source.path}: {repeated.size} source ids occur more than once ({shown}) and the target's "
            "ingest.duplicates is 'error'; set it to keep_highest_snr to keep the best row of each"
        )


def _finish(store: Store, plan: Plan, record: dict[str, Any], options: DegradeOptions) -> DegradeReport:
    from starlabel.join import keep_best

    ids = np.asarray(store.array("source_id")[:])
    snr = np.asarray(store.array("snr")[:])
    keep = keep_best(ids, snr)
    store.set_keep(keep)
    report = DegradeReport(
        store=str(store.path),
        source=str(plan.source.path),
        rows_in=plan.source.n_rows,
        rows=len(ids),
        dropped=int(record["dropped"]),
        kept=int(keep.sum()),
        duplicate_ids=int(len(np.unique(ids[~keep]))) if (~keep).any() else 0,
        resolution_source=plan.r_source,
        resolution_target=plan.r_target,
        convolved=plan.convolved,
        n_pixels=len(plan.grid),
        covered_fraction=plan.covered_fraction,
        cropped=plan.cropped_yaml is not None,
        descriptor_file=str(descriptor_path(store.path)) if plan.cropped_yaml is not None else None,
        snr=str(options.snr) if options.snr is not None else None,
        seed=int(options.seed),
        already_noisier=int(record["noisier"]),
        snr_median=float(np.median(snr)) if snr.size and math.isfinite(float(np.median(snr))) else 0.0,
    )
    with storage_errors(store.path, f"write {REPORT_FILE}", StoreError, then=RESUME):
        (store.path / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2))
    summary = {k: v for k, v in report.to_dict().items() if k not in ("store", "source", "descriptor_file")}
    store.finish(summary)
    return report


__all__ = [
    "DegradeError",
    "DegradeOptions",
    "DegradeReport",
    "add_noise",
    "degrade",
    "descriptor_path",
    "measure_snr",
]
