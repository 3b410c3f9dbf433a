"""Where a survey falls outside a training set's coverage, and which of its stars would best fill the gaps.

A network is trustworthy only where its training set has reference stars like the survey's. This module
measures, star by star, how far each survey star lies from the training set, reports where the survey is
uncovered (overall and in named cells of label space: the metal-poor tail, bright and local stars, cool
giants...) and ranks survey stars whose reference labels would best fill those gaps: a *proactive
training sample* to observe before or while a survey runs.

Training set
    The labelled rows of the training store: kept rows with at least one ok label. *Label space*: the
    reference labels (rows with every chosen label ok). *Input space*: the auxiliary columns, named
    ``<group>.<column>`` (photometry, colours, parallax...), and the first ``n_pca`` principal components
    of the spectrum, ``pca1, pca2, ...`` (fitted on at most 2,000 labelled spectra from at most 16
    random chunks; each spectrum is divided by the median of its good pixels and bad pixels take the
    pixel's mean). Stores are read chunk by chunk; only the chosen inputs are kept in memory.
Survey
    Either a store (inputs only, labels unknown: label space is skipped, coverage is measured in input
    space only, and ``coverage.json`` says so in ``notes``) or a prediction catalogue (predicted labels,
    ``ood_score``, ``flag``, ``snr``; rows flagged no_data are left out). A catalogue's inputs come from a
    store of the same survey given as ``survey_inputs``, joined on ``source_id``; without one, input space
    is skipped. A survey of more than ``max_survey`` (200,000) usable stars is replaced by a seeded random
    subsample of that size, for the fractions and the targets alike (both are said in ``coverage.json``).
Coverage
    In each space every dimension is centred on the training median and divided by the training robust
    standard deviation (1.4826 MAD; the standard deviation where that is 0, else 1), except that the
    spectral components share one scale, the largest of theirs, so that the spectrum keeps its shape and
    its minor, noise-dominated components are not blown up to unit scale. A survey star's
    statistic is its distance to its k-th nearest training star (k = 5, :class:`scipy.spatial.cKDTree`);
    the same statistic within the training set is taken leave-one-out (the k-th neighbour other than the
    star itself) and its ``quantile`` (0.99) is the space's *threshold*. A star's *coverage distance* in a
    space is its statistic over the threshold; it is *uncovered* when that exceeds 1 in any space where it
    is evaluated (a star with a missing input is not evaluated in input space). Reported: the fraction
    uncovered per space and overall, per label the fraction of predictions outside the training range
    (:class:`~starlabel.coverage.LabelCoverage`), and cells of a grid on the first two pairs of dimensions
    of the main space (labels when known, else inputs), e.g. teff-logg and m_h-alpha_m for the labels
    ``teff, logg, m_h, alpha_m``, with the most under-covered cells (most uncovered stars) listed first.
Ranking
    Greedy farthest-point selection, so that targets fill gaps rather than pick the same outliers twice.
    Each eligible survey star (evaluated, not no_data, not itself a training star) scores its largest
    coverage distance over the spaces. The star of largest score is picked; then in each space a star's
    score becomes the smaller of its score and its distance to the pick over the threshold (a pick covers
    a ball of one threshold around it), and again. The update is a vectorised O(N D) pass per pick
    (N <= ``max_survey``). Targets in gaps (score > 1 when picked) come first; once every gap is filled,
    picking goes on with the farthest remaining stars, so there are ``n_targets`` unless fewer stars are
    eligible.
Outputs (:func:`write_design`)
    ``targets.csv`` and ``targets.fits`` (rank, source_id, distance, gap_space, cell, cell2, coverage
    distance per space, labels with units, ``<label>_err``, ood_score, flag, snr, inputs),
    ``coverage.json`` (fractions, cells, parameters, notes) and ``coverage.png``
    (:func:`starlabel.design_plots.plot_coverage`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.catalogue import CatalogueWriter, Column, read_catalogue
from starlabel.coverage import InputCoverage, LabelCoverage
from starlabel.errors import StarlabelError
from starlabel.join import IdIndex
from starlabel.store import Store
from starlabel.suggest import did_you_mean

NO_DATA_FLAG = 8
"""The ``no_data`` bit of a prediction catalogue's ``flag`` (``starlabel.predict.FLAGS``, not imported: torch)."""

PCA_ROWS = 2000
"""Most training spectra the spectral principal components are fitted on."""

PCA_CHUNKS = 16
"""Most training-store chunks those spectra are drawn from."""

TOP_CELLS = 10
"""Under-covered cells listed in ``coverage.json`` (``top_cells``)."""

SPACES = ("labels", "inputs")


class DesignError(StarlabelError):
    """The training set and survey cannot be compared as asked (unknown label or input, too few rows...)."""

    exit_code = 2


@dataclass
class DesignOptions:
    """Choices of :func:`design`.

    Attributes
    ----------
    n_targets : int
        Targets to rank.
    labels : sequence of str, optional
        Labels of label space (default: every training label the survey catalogue has, in store order).
    inputs : sequence of str, optional
        Inputs of input space: ``group.column``, ``group`` (all its columns), ``pcaN``, ``pca`` (all
        components) or ``none`` (default: every auxiliary column both sides have, and the components).
    survey_inputs : str or Path, optional
        With a catalogue survey: a store of the same survey, joined on ``source_id``, for input space.
    k : int
        Neighbour whose distance is the coverage statistic.
    quantile : float
        Training quantile of the statistic that becomes the threshold.
    n_pca : int
        Spectral principal components among the inputs (0: none).
    max_survey : int
        Most survey stars used (a seeded random subsample beyond).
    bins : int
        About this many cells per axis of the named-cell grids.
    seed : int
        Seed of the subsamples.
    """

    n_targets: int = 100
    labels: Sequence[str] | None = None
    inputs: Sequence[str] | None = None
    survey_inputs: str | Path | None = None
    k: int = 5
    quantile: float = 0.99
    n_pca: int = 3
    max_survey: int = 200_000
    bins: int = 8
    seed: int = 0


@dataclass
class Space:
    """One coverage space: raw coordinates of the training and survey stars, scaling and distances.

    Attributes
    ----------
    name : str
        ``"labels"`` or ``"inputs"``.
    dims, units : list
        Dimension names and units (None where unknown).
    centre, scale : ndarray
        ``(D,)`` training median and robust standard deviation.
    train : ndarray
        ``(Nt, D)`` training rows with every dimension finite.
    survey : ndarray
        ``(Ns, D)`` survey rows, NaN where missing.
    threshold : float
        Training ``quantile`` of the leave-one-out k-th neighbour distance (standardised units).
    train_quantiles : dict
        Training statistic at 50, 90, 99 per cent.
    ratio : ndarray
        ``(Ns,)`` coverage distance (statistic / threshold), NaN where not evaluated.
    """

    name: str
    dims: list[str]
    units: list[str | None]
    centre: np.ndarray
    scale: np.ndarray
    train: np.ndarray
    survey: np.ndarray
    threshold: float
    train_quantiles: dict[str, float]
    ratio: np.ndarray

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """Raw ``(n, D)`` coordinates in the space's standardised units."""
        return (np.asarray(x, dtype=np.float64) - self.centre) / self.scale


@dataclass
class DesignResult:
    """What :func:`design` found; :func:`write_design` writes it.

    Attributes
    ----------
    survey_ids : ndarray
        ``(Ns,)`` ids of the survey stars used.
    spaces : dict[str, Space]
        The spaces measured (``labels`` and/or ``inputs``); the first one is the main space.
    ratio, uncovered, eligible : ndarray
        ``(Ns,)`` largest coverage distance over the spaces (NaN: evaluated in none), ratio > 1, and whether
        the star could be a target.
    target_rows : ndarray
        Rows (into the survey arrays) of the targets, in rank order.
    columns : list[Column]
        Columns of the targets table, with units and descriptions.
    targets : dict[str, ndarray]
        The targets table.
    cells : list[dict]
        One grid per pair of main-space dimensions (see ``coverage.json``).
    report : dict
        The content of ``coverage.json``.
    """

    survey_ids: np.ndarray
    spaces: dict[str, Space]
    ratio: np.ndarray
    uncovered: np.ndarray
    eligible: np.ndarray
    target_rows: np.ndarray
    columns: list[Column]
    targets: dict[str, np.ndarray]
    cells: list[dict[str, Any]]
    report: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------- inputs
@dataclass
class _Pca:
    """Spectral principal components: per-pixel fill value, mean and axes (of median-normalised spectra)."""

    fill: np.ndarray
    mean: np.ndarray
    components: np.ndarray

    def features(self, flux: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x, usable = _normalise(flux, mask)
        x = np.where(np.isnan(x), self.fill, x)
        out = (x - self.mean) @ self.components.T.astype(np.float64)
        out[~usable] = np.nan
        return out


def _normalise(flux: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectra divided by their median good flux, NaN at bad pixels; and which rows have a good pixel."""
    flux = np.asarray(flux, dtype=np.float64)
    good = ~np.asarray(mask, dtype=bool) & np.isfinite(flux)
    x = np.where(good, flux, np.nan)
    usable = good.any(axis=1)
    median = np.ones(len(x))
    if usable.any():
        median[usable] = np.nanmedian(x[usable], axis=1)
    median = np.where(np.isfinite(median) & (median > 0), median, 1.0)
    return x / median[:, None], usable


def _fit_pca(store: Store, rows: np.ndarray, n_pca: int, rng: np.random.Generator) -> _Pca | None:
    chunks = [(a, b) for a, b in store.chunk_ranges() if np.searchsorted(rows, b) > np.searchsorted(rows, a)]
    if not chunks or n_pca < 1:
        return None
    picked = sorted(rng.choice(len(chunks), min(PCA_CHUNKS, len(chunks)), replace=False))
    flux, mask = [], []
    for c in picked:
        a, b = chunks[c]
        local = rows[np.searchsorted(rows, a) : np.searchsorted(rows, b)] - a
        flux.append(store.array("flux")[a:b][local])
        mask.append(store.array("mask")[a:b][local])
    x, usable = _normalise(np.concatenate(flux), np.concatenate(mask))
    x = x[usable]
    if len(x) > PCA_ROWS:
        x = x[np.sort(rng.choice(len(x), PCA_ROWS, replace=False))]
    if len(x) < 2 or x.shape[1] < 1:
        return None
    counts = np.isfinite(x).sum(axis=0)
    fill = np.where(counts > 0, np.nansum(x, axis=0) / np.maximum(counts, 1), 1.0)
    x = np.where(np.isnan(x), fill, x)
    fit = InputCoverage.fit(x, n_components=int(min(n_pca, len(x) - 1, x.shape[1])))
    return _Pca(fill, fit.mean.astype(np.float64), fit.components)


def _aux_names(store: Store) -> list[str]:
    return [f"{group}.{col}" for group, cols in store.layout.aux.items() for col in cols]


def _read_inputs(store: Store, rows: np.ndarray, names: Sequence[str], pca: _Pca | None) -> np.ndarray:
    """``(len(rows), len(names))`` inputs of the (sorted) ``rows``, NaN where missing, chunk by chunk."""
    out = np.full((len(rows), len(names)), np.nan)
    aux: dict[str, list[tuple[int, int]]] = {}
    spectral: list[tuple[int, int]] = []
    for j, name in enumerate(names):
        if _is_pca(name):
            spectral.append((int(name[3:]) - 1, j))
        else:
            group, col = name.split(".", 1)
            aux.setdefault(group, []).append((store.layout.aux[group].index(col), j))
    if not names or not len(rows):
        return out
    for start, stop in store.chunk_ranges():
        lo, hi = np.searchsorted(rows, start), np.searchsorted(rows, stop)
        if lo == hi:
            continue
        local = rows[lo:hi] - start
        for group, pairs in aux.items():
            values = np.asarray(store.array(f"aux/{group}")[start:stop][local], dtype=np.float64)
            missing = np.asarray(store.array(f"aux/{group}_missing")[start:stop][local], dtype=bool)
            values[missing] = np.nan
            out[lo:hi, [j for _, j in pairs]] = values[:, [i for i, _ in pairs]]
        if spectral and pca is not None:
            f = pca.features(store.array("flux")[start:stop][local], store.array("mask")[start:stop][local])
            out[lo:hi, [j for _, j in spectral]] = f[:, [i for i, _ in spectral]]
    out[~np.isfinite(out)] = np.nan
    return out


def _is_pca(name: str) -> bool:
    return name.startswith("pca") and name[3:].isdigit()


def _ids(values: Any) -> np.ndarray:
    ids = np.asarray(values)
    return ids if ids.dtype.kind in "iu" else np.array(ids.tolist(), dtype=str)


def _choose_inputs(wanted: Sequence[str] | None, available: list[str], train_only: list[str], where: str) -> list[str]:
    if wanted is None:
        return list(available)
    chosen: list[str] = []
    for name in wanted:
        name = str(name).strip()
        if name.lower() == "none":
            continue
        if name in available:
            hits = [name]
        elif name == "pca":
            hits = [a for a in available if _is_pca(a)]
        else:  # a group: all of its columns
            hits = [a for a in available if a.startswith(name + ".")]
        if not hits:
            why = " (the training store has it, the survey does not)" if name in train_only else ""
            raise DesignError(
                f"{where}: unknown input {name!r}{why}.{did_you_mean(name, available)} "
                f"Inputs available: {', '.join(available) or '(none)'}; also a group name, 'pca' or 'none'"
            )
        chosen += [h for h in hits if h not in chosen]
    return chosen


# ------------------------------------------------------------------------------------------------ spaces
def _fit_space(
    name: str, dims: list[str], units: list[str | None], train: np.ndarray, survey: np.ndarray, k: int, q: float
) -> Space:
    from scipy.spatial import cKDTree

    train = train[np.isfinite(train).all(axis=1)]
    if len(train) < k + 2:
        raise DesignError(
            f"{name} space ({', '.join(dims)}): only {len(train)} training rows have every dimension; at least "
            f"{k + 2} are needed for k = {k} (choose fewer --{name}, or a smaller k)"
        )
    centre = np.median(train, axis=0)
    scale = 1.4826 * np.median(np.abs(train - centre), axis=0)
    std = train.std(axis=0)
    scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))
    shared = [j for j, d in enumerate(dims) if _is_pca(d)]
    if shared:  # one scale for the spectrum's components: minor (noisy) ones are not blown up to unit scale
        scale[shared] = scale[shared].max()
    z = (train - centre) / scale
    tree = cKDTree(z)
    loo = tree.query(z, k=[k + 1])[0][:, 0]
    threshold = max(float(np.quantile(loo, q)), 1e-12)
    zs = (survey - centre) / scale
    good = np.isfinite(zs).all(axis=1)
    ratio = np.full(len(survey), np.nan)
    if good.any():
        ratio[good] = tree.query(zs[good], k=[k])[0][:, 0] / threshold
    quantiles = {f"p{p}": float(np.quantile(loo, p / 100)) for p in (50, 90, 99)}
    return Space(name, dims, units, centre, scale, train, survey, threshold, quantiles, ratio)


def _greedy(spaces: Sequence[Space], eligible: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows picked, their score when picked, and the spaces where they were in a gap.

    Works on the eligible rows only, in float32 (coordinates in thresholds, so distances need no division);
    a row not evaluated in a space has a NaN score there, which ``fmax``/``fmin`` ignore.
    """
    rows_of = np.flatnonzero(eligible)
    z = [(s.standardise(s.survey[rows_of]) / s.threshold).astype(np.float32) for s in spaces]
    q = [s.ratio[rows_of].astype(np.float32) for s in spaces]
    score = np.full(len(rows_of), -np.inf, dtype=np.float32)
    for qs in q:
        np.fmax(score, qs, out=score)
    score[np.isnan(score)] = -np.inf
    picked: list[int] = []
    taken: list[int] = []
    scores: list[float] = []
    gaps: list[str] = []
    for _ in range(min(n, len(rows_of))):
        i = int(np.argmax(score))
        if score[i] == -np.inf:
            break
        picked.append(int(rows_of[i]))
        scores.append(float(score[i]))
        gaps.append("+".join(s.name for s, qs in zip(spaces, q, strict=True) if qs[i] > 1))
        score.fill(-np.inf)
        for zs, qs in zip(z, q, strict=True):
            if np.isfinite(zs[i]).all():
                diff = zs - zs[i]
                np.fmin(qs, np.sqrt(np.einsum("ij,ij->i", diff, diff)), out=qs)
            np.fmax(score, qs, out=score)
        score[np.isnan(score)] = -np.inf
        taken.append(i)
        score[taken] = -np.inf  # never picked twice, even among exact duplicates once every score is 0
    return np.asarray(picked, dtype=np.int64), np.asarray(scores), gaps


# ------------------------------------------------------------------------------------------------- cells
def _nice_edges(values: np.ndarray, bins: int) -> np.ndarray:
    lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    if hi <= lo:
        hi = lo + 1e-3 * max(1.0, abs(lo))
    raw = (hi - lo) / bins
    power = 10.0 ** math.floor(math.log10(raw))
    step = power * next(m for m in (1, 2, 2.5, 5, 10) if raw / power <= m * (1 + 1e-9))
    decimals = max(0, -math.floor(math.log10(step)) + 2)
    start, stop = math.floor(lo / step), math.ceil(hi / step)
    return np.round(np.arange(start, stop + 1) * step, decimals)


def _fmt(x: float) -> str:
    return np.format_float_positional(float(x), trim="-")


def _interval(name: str, lo: float, hi: float) -> str:
    if not math.isfinite(lo):
        return f"{name}<{_fmt(hi)}"
    if not math.isfinite(hi):
        return f"{name}>={_fmt(lo)}"
    return f"{name} {_fmt(lo)}..{_fmt(hi)}"


def _bin(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Cell index on an axis with open outer cells (0: below edges[0]); -1 for NaN."""
    index = np.searchsorted(edges, values, side="right")
    return np.where(np.isfinite(values), index, -1)


def _cells(space: Space, uncovered: np.ndarray, targets: np.ndarray, bins: int) -> list[dict[str, Any]]:
    grids = []
    for a, b in [(0, 1), (2, 3)]:
        if b >= len(space.dims):
            break
        edges, index = [], []
        for d in (a, b):
            both = np.concatenate([space.train[:, d], space.survey[:, d]])
            e = _nice_edges(both[np.isfinite(both)], bins)
            edges.append(e)
            index.append((_bin(space.train[:, d], e), _bin(space.survey[:, d], e)))
        ny = len(edges[1]) + 1
        flat_t = index[0][0] * ny + index[1][0]
        ok_s = (index[0][1] >= 0) & (index[1][1] >= 0)
        flat_s = np.where(ok_s, index[0][1] * ny + index[1][1], -1)
        size = (len(edges[0]) + 1) * ny
        count = {
            "n_train": np.bincount(flat_t, minlength=size),
            "n_survey": np.bincount(flat_s[ok_s], minlength=size),
            "n_uncovered": np.bincount(flat_s[ok_s & uncovered], minlength=size),
            "n_targets": np.bincount(flat_s[targets][flat_s[targets] >= 0], minlength=size),
        }
        bounds = [np.concatenate([[-np.inf], e, [np.inf]]) for e in edges]
        cells = []
        for c in np.flatnonzero(count["n_train"] + count["n_survey"]):  # occupied cells only
            ix, iy = divmod(int(c), ny)
            x, y = (bounds[0][ix], bounds[0][ix + 1]), (bounds[1][iy], bounds[1][iy + 1])
            n_s, n_u = int(count["n_survey"][c]), int(count["n_uncovered"][c])
            cells.append(
                {
                    "name": f"{_interval(space.dims[a], *x)} & {_interval(space.dims[b], *y)}",
                    "x": [_finite(v) for v in x],
                    "y": [_finite(v) for v in y],
                    "n_train": int(count["n_train"][c]),
                    "n_survey": n_s,
                    "n_uncovered": n_u,
                    "fraction_uncovered": n_u / n_s if n_s else None,
                    "n_targets": int(count["n_targets"][c]),
                }
            )
        occupied = np.flatnonzero(count["n_train"] + count["n_survey"])
        names = {int(c): cell["name"] for c, cell in zip(occupied, cells, strict=True)}
        grids.append(
            {
                "space": space.name,
                "dims": [space.dims[a], space.dims[b]],
                "columns": [a, b],
                "edges": [e.tolist() for e in edges],
                "cells": cells,
                "star_cell": np.array([names.get(int(c), "") for c in flat_s]),
            }
        )
    return grids


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# ----------------------------------------------------------------------------------------------- design
def _check_options(o: DesignOptions) -> None:
    for name, low in (("n_targets", 1), ("k", 1), ("n_pca", 0), ("max_survey", 1), ("bins", 1)):
        value = getattr(o, name)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise DesignError(f"design option {name} must be an integer >= {low}, got {value!r}")
    if not 0 < o.quantile <= 1:
        raise DesignError(f"design option quantile must be in (0, 1], got {o.quantile!r}")


def _subsample(rows: np.ndarray, most: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(rows, most, replace=False)) if len(rows) > most else rows


def design(train: str | Path, survey: str | Path, options: DesignOptions | None = None) -> DesignResult:
    """Coverage of ``survey`` by the training store ``train``, and ranked targets to fill its gaps.

    Parameters
    ----------
    train : str or Path
        Training store (its labelled rows are the training set).
    survey : str or Path
        A store of the survey (inputs only) or its prediction catalogue (FITS or Parquet).
    options : DesignOptions, optional
        Labels, inputs, numbers of targets and neighbours... (see :class:`DesignOptions`).

    Returns
    -------
    DesignResult

    Raises
    ------
    DesignError
        Bad options, an unknown label or input, ids that cannot be joined, too few training rows, or no
        space to measure coverage in.
    starlabel.store.StoreError, starlabel.catalogue.CatalogueError
        A store or catalogue cannot be read.
    """
    o = options or DesignOptions()
    _check_options(o)
    rng = np.random.default_rng(o.seed)
    notes: list[str] = []
    tstore = Store.open(train)
    survey = Path(survey)
    is_store = (survey / "zarr.json").is_file()
    if survey.is_dir() and not is_store:
        raise DesignError(
            f"{survey}: neither a store (no zarr.json in this folder) nor a catalogue file; give a store made by "
            f"`starlabel ingest` or a catalogue (.fits, .parquet) made by `starlabel predict`"
        )
    if is_store and o.survey_inputs is not None:
        raise DesignError(f"{survey}: survey_inputs joins inputs to a catalogue survey; this survey is a store")
    sstore = Store.open(survey) if is_store else Store.open(o.survey_inputs) if o.survey_inputs else None
    cat, meta = ({}, {}) if is_store else read_catalogue(survey)
    if not is_store and "source_id" not in cat:
        raise DesignError(f"{survey}: the catalogue has no column 'source_id'. Columns: {', '.join(cat)}")

    # ---------------------------------------------------------------- labels
    train_labels = list(tstore.layout.labels)
    for name in o.labels or []:
        if name not in train_labels:
            raise DesignError(
                f"{tstore.path}: unknown label {name!r}.{did_you_mean(name, train_labels)} "
                f"Labels of the training store: {', '.join(train_labels) or '(none)'}"
            )
    common = [n for n in train_labels if n in cat]
    if is_store:
        labels: list[str] = []
        notes.append(f"survey {survey} is a store (no labels): label space skipped, coverage in input space only")
        if o.labels:
            notes.append(f"labels {', '.join(o.labels)} unused: the survey has no labels")
    else:
        labels = list(o.labels) if o.labels else common
        for name in labels:
            if name not in cat:
                raise DesignError(
                    f"{survey}: the catalogue has no column for label {name!r}. "
                    f"Labels in both the training store and the catalogue: {', '.join(common) or '(none)'}"
                )
        if not labels:
            notes.append(f"{survey}: no training label among the catalogue's columns: label space skipped")

    # ---------------------------------------------------------------- training rows
    keep = np.asarray(tstore.array("keep")[:], dtype=bool)
    ok = {n: np.asarray(tstore.array(f"labels/{n}_ok")[:], dtype=bool) for n in train_labels}
    labelled = keep & np.logical_or.reduce(list(ok.values())) if ok else np.zeros_like(keep)
    trows = np.flatnonzero(labelled)
    if len(trows) == 0:
        raise DesignError(f"{tstore.path}: no labelled row (no kept row with an ok label); it is not a training set")
    tlabels = {}
    for n in labels:
        v = np.asarray(tstore.array(f"labels/{n}")[:], dtype=np.float64)[trows]
        tlabels[n] = np.where(ok[n][trows] & np.isfinite(v), v, np.nan)

    # ---------------------------------------------------------------- inputs
    train_aux = _aux_names(tstore)
    pca = None
    if sstore is not None and o.n_pca > 0:
        same = sstore.layout.n_pixels == tstore.layout.n_pixels and sstore.meta.get("grid") == tstore.meta.get("grid")
        if same:
            pca = _fit_pca(tstore, trows, o.n_pca, rng)
        else:
            notes.append(f"{sstore.path}: wavelength grid differs from the training store's: no spectral inputs")
    available = [a for a in _aux_names(sstore) if a in train_aux] if sstore is not None else []
    available += [f"pca{i + 1}" for i in range(len(pca.components))] if pca is not None else []
    if sstore is None:
        if o.inputs and any(str(i).strip().lower() != "none" for i in o.inputs):
            raise DesignError(
                f"{survey}: a catalogue holds no inputs; give the survey's store as --survey-inputs to use "
                f"inputs {', '.join(o.inputs)}"
            )
        inputs: list[str] = []
        notes.append(f"{survey}: no survey inputs (give its store as --survey-inputs): input space skipped")
    else:
        inputs = _choose_inputs(o.inputs, available, [a for a in train_aux if a not in available], str(sstore.path))
    if not labels and not inputs:
        raise DesignError(
            f"{survey}: nothing to measure coverage in: no labels shared with the training store and no inputs; "
            f"give a prediction catalogue with labels {', '.join(train_labels)}, or inputs"
        )

    # ---------------------------------------------------------------- survey rows
    n_no_data = 0
    extra: dict[str, np.ndarray] = {}
    units = {n: tstore.layout.labels.get(n) or None for n in labels}
    if is_store:
        assert sstore is not None
        n_rows = sstore.n_rows
        usable = np.flatnonzero(np.asarray(sstore.array("keep")[:], dtype=bool))
        srows = _subsample(usable, o.max_survey, rng)
        ids = _ids(sstore.array("source_id")[:])[srows]
        sinputs = _read_inputs(sstore, srows, inputs, pca)
        extra["snr"] = np.asarray(sstore.array("snr")[:], dtype=np.float32)[srows]
        slabels = np.zeros((len(srows), 0))
    else:
        n_rows = len(cat["source_id"])
        flag = np.asarray(cat["flag"]) if "flag" in cat else np.zeros(n_rows, dtype=np.int32)
        no_data = (flag & NO_DATA_FLAG) != 0
        n_no_data = int(no_data.sum())
        usable = np.flatnonzero(~no_data)
        srows = _subsample(usable, o.max_survey, rng)
        ids = _ids(cat["source_id"])[srows]
        slabels = np.zeros((len(srows), len(labels)))
        for j, n in enumerate(labels):
            slabels[:, j] = np.asarray(cat[n], dtype=np.float64)[srows]
        for n in labels:
            units[n] = meta["units"].get(n) or units[n]
        for n in [f"{n}_err" for n in labels] + ["ood_score", "flag", "snr"]:
            if n in cat:
                extra[n] = np.asarray(cat[n])[srows]
        sinputs = np.full((len(srows), len(inputs)), np.nan)
        if inputs and sstore is not None:
            sinputs = _joined_inputs(sstore, ids, inputs, pca, survey, notes)
    if len(srows) < len(usable):
        notes.append(f"survey subsampled: {len(srows)} of {len(usable)} usable stars (seed {o.seed})")

    # ---------------------------------------------------------------- coverage
    spaces: dict[str, Space] = {}
    if labels:
        tl = np.stack([tlabels[n] for n in labels], axis=1)
        spaces["labels"] = _fit_space("labels", labels, [units[n] for n in labels], tl, slabels, o.k, o.quantile)
    if inputs:
        tinputs = _read_inputs(tstore, trows, inputs, pca)
        spaces["inputs"] = _fit_space("inputs", inputs, [None] * len(inputs), tinputs, sinputs, o.k, o.quantile)
    ratio = np.full(len(ids), np.nan)
    for s in spaces.values():
        ratio = np.fmax(ratio, s.ratio)
    uncovered = ratio > 1
    eligible = np.isfinite(ratio)
    tids = _ids(tstore.array("source_id")[:])[trows]
    try:
        in_train = IdIndex(tids).lookup(ids) >= 0
    except TypeError:
        in_train = np.zeros(len(ids), dtype=bool)
        notes.append("training and survey ids are of different kinds: survey stars in the training set not excluded")
    eligible &= ~in_train
    rows, scores, gaps = _greedy(list(spaces.values()), eligible, o.n_targets)
    if len(rows) < o.n_targets:
        notes.append(f"only {len(rows)} eligible survey stars: fewer targets than the {o.n_targets} asked for")
    main = next(iter(spaces.values()))
    target_mask = np.zeros(len(ids), dtype=bool)
    target_mask[rows] = True
    cells = _cells(main, uncovered, target_mask, o.bins)

    # ---------------------------------------------------------------- targets
    columns, table = _targets_table(ids, rows, scores, gaps, spaces, cells, units, extra, labels)
    result = DesignResult(ids, spaces, ratio, uncovered, eligible, rows, columns, table, cells)
    survey_counts = {"n_rows": n_rows, "n_no_data": n_no_data, "n_in_training": int(in_train.sum())}
    result.report = _report(result, o, tstore, len(trows), survey, is_store, survey_counts, notes, labels)
    return result


def _joined_inputs(
    store: Store, ids: np.ndarray, inputs: Sequence[str], pca: _Pca | None, survey: Path, notes: list[str]
) -> np.ndarray:
    """Inputs of the catalogue stars ``ids`` from the kept rows of ``store`` with the same source_id (NaN: none)."""
    try:
        pos = IdIndex(ids).lookup(_ids(store.array("source_id")[:]))
    except TypeError as error:
        raise DesignError(f"{store.path} and {survey}: {error}") from None
    pos[~np.asarray(store.array("keep")[:], dtype=bool)] = -1
    found, first = np.unique(pos, return_index=True)  # first kept store row of each catalogue star
    first, found = first[found >= 0], found[found >= 0]
    order = np.argsort(first)
    out = np.full((len(ids), len(inputs)), np.nan)
    out[found[order]] = _read_inputs(store, first[order], inputs, pca)
    if len(found) < len(ids):
        notes.append(f"{len(ids) - len(found)} of {len(ids)} catalogue stars have no row in {store.path}: no inputs")
    return out


def _targets_table(
    ids: np.ndarray,
    rows: np.ndarray,
    scores: np.ndarray,
    gaps: list[str],
    spaces: Mapping[str, Space],
    cells: list[dict[str, Any]],
    units: Mapping[str, str | None],
    extra: Mapping[str, np.ndarray],
    labels: list[str],
) -> tuple[list[Column], dict[str, np.ndarray]]:
    def text(values: Sequence[str] | np.ndarray) -> tuple[np.ndarray, str]:
        arr = np.asarray(list(values), dtype=str)
        return arr, f"<U{max([1] + [len(v) for v in arr.tolist()])}"

    table: dict[str, np.ndarray] = {"rank": np.arange(1, len(rows) + 1, dtype=np.int32)}
    columns = [Column("rank", "int32", None, "observing priority: 1 fills the largest gap")]
    sid = ids[rows]
    if sid.dtype.kind in "iu":
        table["source_id"], id_dtype = sid.astype(np.int64), "int64"
    else:
        table["source_id"], id_dtype = text(sid)
    columns.append(Column("source_id", id_dtype, None, "survey source identifier"))
    table["distance"] = scores.astype(np.float32)
    columns.append(Column("distance", "float32", None, "to training set and earlier targets, in thresholds; >1: gap"))
    table["gap_space"], dtype = text(gaps)
    columns.append(Column("gap_space", dtype, None, "spaces where the star was in a gap when picked (empty: none)"))
    for i, grid in enumerate(cells):
        name = "cell" if i == 0 else f"cell{i + 1}"
        table[name], dtype = text(grid["star_cell"][rows])
        columns.append(Column(name, dtype, None, f"{' - '.join(grid['dims'])} cell of the star"))
    for s in spaces.values():
        table[f"coverage_{s.name}"] = s.ratio[rows].astype(np.float32)
        columns.append(
            Column(f"coverage_{s.name}", "float32", None, f"distance to training set in {s.name}, in thresholds")
        )
    if "labels" in spaces:
        for j, n in enumerate(labels):
            table[n] = spaces["labels"].survey[rows, j].astype(np.float32)
            columns.append(Column(n, "float32", units.get(n), f"{n} predicted by the survey catalogue"))
    for n, values in extra.items():
        kind = "int32" if np.asarray(values).dtype.kind in "iu" else "float32"
        table[n] = np.asarray(values)[rows].astype(kind)
        unit = units.get(n[: -len("_err")]) if n.endswith("_err") else None
        columns.append(Column(n, kind, unit, f"{n} of the survey star"))
    if "inputs" in spaces:
        for j, n in enumerate(spaces["inputs"].dims):
            table[n] = spaces["inputs"].survey[rows, j].astype(np.float32)
            columns.append(Column(n, "float32", None, f"input {n} of the survey star"))
    return columns, table


def _report(
    result: DesignResult,
    o: DesignOptions,
    tstore: Store,
    n_labelled: int,
    survey: Path,
    is_store: bool,
    survey_counts: Mapping[str, int],
    notes: list[str],
    labels: list[str],
) -> dict[str, Any]:
    spaces = {}
    for s in result.spaces.values():
        evaluated = np.isfinite(s.ratio)
        n_unc = int((s.ratio[evaluated] > 1).sum())
        entry: dict[str, Any] = {
            "dims": s.dims,
            "units": s.units,
            "centre": s.centre.tolist(),
            "scale": s.scale.tolist(),
            "n_train": len(s.train),
            "threshold": s.threshold,
            "train_distance_quantiles": s.train_quantiles,
            "n_evaluated": int(evaluated.sum()),
            "n_uncovered": n_unc,
            "fraction_uncovered": n_unc / int(evaluated.sum()) if evaluated.any() else None,
        }
        if s.name == "labels":
            cover = LabelCoverage.fit(s.train, np.ones_like(s.train, dtype=bool), s.dims)
            bits = cover.outside(np.nan_to_num(s.survey, nan=0.0))
            entry["fraction_outside_training_range"] = {
                n: float(((bits >> j) & 1)[np.isfinite(s.survey[:, j])].mean())
                if np.isfinite(s.survey[:, j]).any()
                else None
                for j, n in enumerate(s.dims)
            }
            entry["training_range"] = {n: [cover.lo[j], cover.hi[j]] for j, n in enumerate(s.dims)}
        spaces[s.name] = entry
    evaluated = np.isfinite(result.ratio)
    all_cells = [dict(c, dims=g["dims"]) for g in result.cells for c in g["cells"] if c["n_uncovered"]]
    all_cells.sort(key=lambda c: (-c["n_uncovered"], -(c["fraction_uncovered"] or 0)))
    n_targets = len(result.target_rows)
    return {
        "parameters": {
            "train": str(tstore.path),
            "survey": str(survey),
            "survey_kind": "store" if is_store else "catalogue",
            "survey_inputs": str(o.survey_inputs) if o.survey_inputs else None,
            "labels": labels,
            "inputs": result.spaces["inputs"].dims if "inputs" in result.spaces else [],
            "n_targets": o.n_targets,
            "k": o.k,
            "quantile": o.quantile,
            "n_pca": o.n_pca,
            "max_survey": o.max_survey,
            "bins": o.bins,
            "seed": o.seed,
        },
        "spaces_used": list(result.spaces),
        "notes": notes,
        "training": {"store": str(tstore.path), "n_labelled": n_labelled},
        "survey": {**survey_counts, "n_used": len(result.survey_ids), "n_eligible": int(result.eligible.sum())},
        "spaces": spaces,
        "overall": {
            "n_evaluated": int(evaluated.sum()),
            "n_uncovered": int(result.uncovered.sum()),
            "fraction_uncovered": float(result.uncovered.sum() / evaluated.sum()) if evaluated.any() else None,
        },
        "cells": [{k: v for k, v in g.items() if k != "star_cell"} for g in result.cells],
        "top_cells": all_cells[:TOP_CELLS],
        "targets": {
            "n": n_targets,
            "n_in_gaps": int((result.targets["distance"] > 1).sum()) if n_targets else 0,
            "columns": [{"name": c.name, "unit": c.unit, "description": c.description} for c in result.columns],
        },
    }


# ------------------------------------------------------------------------------------------------ output
def write_design(result: DesignResult, out: str | Path, *, plot: bool = True) -> dict[str, Path]:
    """Write ``targets.csv``, ``targets.fits``, ``coverage.json`` and (with ``plot``) ``coverage.png`` in ``out``.

    Existing files of those names are replaced. Returns the paths written, by kind.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "targets.csv", "fits": out / "targets.fits", "json": out / "coverage.json"}
    names = [c.name for c in result.columns]
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        cols = [result.targets[n] for n in names]
        for i in range(len(result.target_rows)):
            writer.writerow([_csv_value(c[i]) for c in cols])
    p = result.report["parameters"]
    header = {
        "EXTNAME": ("TARGETS", "survey stars to observe to fill training gaps"),
        "KNN": (p["k"], "k of the k-th nearest training star distance"),
        "QUANTILE": (p["quantile"], "training quantile of that distance: threshold"),
        "NTARGET": (len(result.target_rows), "targets ranked"),
        "SPACES": (",".join(result.spaces), "coverage spaces used"),
        "COMMENT1": ("Targets ranked by starlabel design: greedy farthest-point picks; see coverage.json.", ""),
    }
    with CatalogueWriter(paths["fits"], result.columns, n_parts=1, fingerprint=p, header=header, overwrite=True) as w:
        w.write_part(0, result.targets)
        w.finish()
    paths["json"].write_text(json.dumps(_jsonable(result.report), indent=1, allow_nan=False) + "\n")
    if plot:
        from starlabel.design_plots import plot_coverage

        paths["png"] = plot_coverage(result, out / "coverage.png")
    return paths


def _csv_value(value: Any) -> str:
    if isinstance(value, np.floating):
        return "nan" if not np.isfinite(value) else f"{float(value):.7g}"
    return str(value.item() if isinstance(value, np.generic) else value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
