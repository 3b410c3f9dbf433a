"""What a training set covers, for the model card, and flags for predictions and inputs outside it.

:class:`LabelCoverage` describes the training labels (range, percentiles, 2-D histograms of every pair)
and flags predictions outside the range or in sparsely populated parts of a pair's plane.
:class:`InputCoverage` scores how far a standardised input vector lies from the training inputs
(PCA reconstruction error plus Mahalanobis distance in the PCA space).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PERCENTILES = (0.1, 1, 5, 25, 50, 75, 95, 99, 99.9)
"""Percentiles (in per cent) of each training label stored in a :class:`LabelCoverage`."""

MAX_LABELS = 63
"""Most labels a :class:`LabelCoverage` takes: :meth:`LabelCoverage.outside` packs one bit per label in an int64."""

_CHUNK_VALUES = 2**22
"""Rows of :meth:`InputCoverage.score` are processed in chunks of about this many values (32 MiB in float64)."""

_EXACT_MAX = 1024
""":meth:`InputCoverage.fit` diagonalises the smaller Gram / covariance matrix exactly up to this size."""


# ----------------------------------------------------------------------------------------------- labels
@dataclass
class LabelCoverage:
    """Ranges, percentiles and pairwise histograms of the training labels.

    Attributes
    ----------
    names : list of str
        Label names, in column order.
    lo, hi : list of float
        Smallest and largest ok training value of each label; NaN for a label with no ok value.
    percentiles : dict
        Per label, its values at :data:`PERCENTILES` (NaN for a label with no ok value).
    pairs : list of dict
        One per pair of labels ``i < j``: ``{"labels": [a, b], "edges": [x_edges, y_edges], "counts": counts}``,
        a 2-D histogram of the rows where both labels are ok, ``bins`` bins per axis over ``[lo, hi]``
        (``counts[ix][iy]``; the last bin includes its upper edge). An axis with a single training value gets
        bins over ``value ± 1e-9 * max(1, |value|)``; an axis never seen in training has NaN edges.
    n : int
        Number of training rows.

    Notes
    -----
    A label with no ok training value is always flagged by :meth:`outside`, and every pair it is part
    of by :meth:`sparse`. In JSON (:meth:`to_dict`) NaN is written as null.
    """

    names: list[str]
    lo: list[float]
    hi: list[float]
    percentiles: dict[str, list[float]]
    pairs: list[dict[str, Any]]
    n: int

    @classmethod
    def fit(cls, labels: np.ndarray, ok: np.ndarray, names: Sequence[str], bins: int = 20) -> LabelCoverage:
        """Describe training labels.

        Parameters
        ----------
        labels : ndarray
            ``(N, L)`` label values.
        ok : ndarray
            ``(N, L)`` bool, True where the value is usable; non-finite values count as not ok.
        names : sequence of str
            ``L`` distinct label names.
        bins : int
            Histogram bins per axis of each pair (at least 1).
        """
        labels = np.asarray(labels, dtype=np.float64)
        ok = np.asarray(ok)
        if labels.ndim != 2:
            raise ValueError(f"labels must be a 2-D (N, L) array, got shape {labels.shape}")
        if ok.shape != labels.shape or ok.dtype != np.bool_:
            raise ValueError(f"ok must be a bool array of shape {labels.shape}, got {ok.dtype} {ok.shape}")
        names = [str(n) for n in names]
        if len(names) != labels.shape[1] or len(set(names)) != len(names):
            raise ValueError(f"names must be {labels.shape[1]} distinct names (one per column), got {names}")
        if len(names) > MAX_LABELS:
            raise ValueError(f"at most {MAX_LABELS} labels are allowed (one bit each in outside()), got {len(names)}")
        if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
            raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
        ok = ok & np.isfinite(labels)
        lo, hi, pct = [], [], {}
        for i, name in enumerate(names):
            v = labels[ok[:, i], i]
            if v.size:
                lo.append(float(v.min()))
                hi.append(float(v.max()))
                pct[name] = [float(q) for q in np.percentile(v, PERCENTILES)]
            else:
                lo.append(math.nan)
                hi.append(math.nan)
                pct[name] = [math.nan] * len(PERCENTILES)
        pairs = []
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                both = ok[:, i] & ok[:, j]
                ex, ey = _edges(lo[i], hi[i], int(bins)), _edges(lo[j], hi[j], int(bins))
                if np.isfinite(ex).all() and np.isfinite(ey).all():
                    counts, _, _ = np.histogram2d(labels[both, i], labels[both, j], bins=[ex, ey])
                else:
                    counts = np.zeros((int(bins), int(bins)))
                pairs.append(
                    {
                        "labels": [names[i], names[j]],
                        "edges": [ex.tolist(), ey.tolist()],
                        "counts": counts.astype(np.int64).tolist(),
                    }
                )
        return cls(names, lo, hi, pct, pairs, int(labels.shape[0]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN as None); :meth:`from_dict` restores it exactly."""
        return {
            "names": list(self.names),
            "lo": _json_floats(self.lo),
            "hi": _json_floats(self.hi),
            "percentile_levels": list(PERCENTILES),
            "percentiles": {k: _json_floats(v) for k, v in self.percentiles.items()},
            "pairs": [
                {
                    "labels": list(p["labels"]),
                    "edges": [_json_floats(e) for e in p["edges"]],
                    "counts": [[int(c) for c in row] for row in p["counts"]],
                }
                for p in self.pairs
            ],
            "n": int(self.n),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LabelCoverage:
        """Inverse of :meth:`to_dict`."""
        missing = {"names", "lo", "hi", "percentiles", "pairs", "n"} - set(d)
        if missing:
            raise ValueError(f"label coverage is missing {sorted(missing)}")
        levels = d.get("percentile_levels", list(PERCENTILES))
        if [float(x) for x in levels] != [float(x) for x in PERCENTILES]:
            raise ValueError(f"label coverage was saved with percentiles {levels}, this version uses {PERCENTILES}")
        names = [str(n) for n in d["names"]]
        if not (len(d["lo"]) == len(d["hi"]) == len(names)) or set(d["percentiles"]) != set(names):
            raise ValueError(f"label coverage for {names}: lo, hi and percentiles must have one entry per label")
        pairs = [
            {
                "labels": [str(x) for x in p["labels"]],
                "edges": [_py_floats(e) for e in p["edges"]],
                "counts": [[int(c) for c in row] for row in p["counts"]],
            }
            for p in d["pairs"]
        ]
        pct = {str(k): _py_floats(v) for k, v in d["percentiles"].items()}
        return cls(names, _py_floats(d["lo"]), _py_floats(d["hi"]), pct, pairs, int(d["n"]))

    def outside(self, pred: np.ndarray) -> np.ndarray:
        """Bit ``i`` set (``1 << i``) where label ``i`` of a prediction is outside ``[lo_i, hi_i]``.

        Parameters
        ----------
        pred : ndarray
            ``(N, L)`` predictions, columns in the order of :attr:`names`.

        Returns
        -------
        ndarray
            ``(N,)`` int64; a non-finite value, and any value of a label never seen in training, sets its bit.
        """
        pred = self._check_pred(pred)
        lo, hi = np.asarray(self.lo, dtype=np.float64), np.asarray(self.hi, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            out = ~((pred >= lo) & (pred <= hi))  # False only for finite values inside a finite range
        weights = np.left_shift(np.int64(1), np.arange(len(self.names), dtype=np.int64))
        return (out.astype(np.int64) * weights).sum(axis=1, dtype=np.int64)

    def sparse(self, pred: np.ndarray, min_count: int = 3) -> np.ndarray:
        """True where, for any pair of labels, the histogram cell of the prediction has < ``min_count`` stars.

        A prediction outside a pair's histogram (or not finite) counts as sparse. With a single label there
        are no pairs and nothing is sparse (use :meth:`outside`).

        Parameters
        ----------
        pred : ndarray
            ``(N, L)`` predictions, columns in the order of :attr:`names`.
        min_count : int
            Fewest training stars a cell needs to count as populated.

        Returns
        -------
        ndarray
            ``(N,)`` bool.
        """
        pred = self._check_pred(pred)
        if isinstance(min_count, bool) or not isinstance(min_count, int | np.integer) or min_count < 0:
            raise ValueError(f"min_count must be an integer >= 0, got {min_count!r}")
        column = {name: i for i, name in enumerate(self.names)}
        flag = np.zeros(pred.shape[0], dtype=bool)
        for p in self.pairs:
            a, b = p["labels"]
            counts = np.asarray(p["counts"], dtype=np.int64)
            ix, okx = _cell(pred[:, column[a]], np.asarray(p["edges"][0], dtype=np.float64))
            iy, oky = _cell(pred[:, column[b]], np.asarray(p["edges"][1], dtype=np.float64))
            inside = okx & oky
            populated = np.zeros_like(inside)
            populated[inside] = counts[ix[inside], iy[inside]] >= min_count
            flag |= ~populated
        return flag

    def _check_pred(self, pred: np.ndarray) -> np.ndarray:
        pred = np.asarray(pred, dtype=np.float64)
        if pred.ndim != 2 or pred.shape[1] != len(self.names):
            raise ValueError(f"pred must be an (N, {len(self.names)}) array (labels {self.names}), got {pred.shape}")
        return pred


def _edges(lo: float, hi: float, bins: int) -> np.ndarray:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return np.full(bins + 1, np.nan)
    if lo == hi:
        pad = 1e-9 * max(1.0, abs(lo))
        lo, hi = lo - pad, hi + pad
    return np.linspace(lo, hi, bins + 1)


def _cell(x: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin index of each value (last bin closed) and whether it falls in the histogram at all."""
    bins = len(edges) - 1
    with np.errstate(invalid="ignore"):
        inside = (x >= edges[0]) & (x <= edges[-1])
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    return index, inside


def _json_floats(values: Sequence[float]) -> list[float | None]:
    return [None if not math.isfinite(float(v)) else float(v) for v in values]


def _py_floats(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


# ----------------------------------------------------------------------------------------------- inputs
@dataclass
class InputCoverage:
    """Out-of-distribution score of standardised input vectors: PCA residual plus Mahalanobis distance.

    For an input ``x`` with ``c = x - mean``, projections ``z = components @ c`` and residual
    ``r = c - components.T @ z``::

        score = mean(r**2) / resid_scale + mean(z**2 / variances)

    where ``mean(r**2)`` is over the ``D`` dimensions and the second mean over the ``k`` components.
    ``resid_scale`` is the training sample's average of ``mean(r**2)``, so both terms are about 1 for a
    typical training input. ``threshold`` is the training sample's ``quantile`` of the score:
    ``score / threshold`` is the normalised score, and above 1 the input is out of distribution
    (:meth:`flags`). With ``k == D`` there is no residual and ``resid_scale`` is 0 (the term is left out).

    Attributes
    ----------
    mean : ndarray
        ``(D,)`` float32 mean of the training inputs.
    components : ndarray
        ``(k, D)`` float32 orthonormal principal axes, largest variance first.
    variances : ndarray
        ``(k,)`` float32 variance of the training inputs along each axis.
    resid_scale : float
        Mean squared residual per dimension of the training inputs (0 when ``k == D``).
    threshold : float
        Training quantile of the score.
    quantile : float
        Which quantile ``threshold`` is.
    """

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    resid_scale: float
    threshold: float
    quantile: float

    @classmethod
    def fit(cls, x: np.ndarray, n_components: int = 16, quantile: float = 0.999) -> InputCoverage:
        """Principal axes, scales and threshold from a training sample.

        Parameters
        ----------
        x : ndarray
            ``(N, D)`` finite standardised inputs, ``N >= 2``.
        n_components : int
            Most principal axes kept; ``k = min(N - 1, D, n_components)``.
        quantile : float
            Training quantile of the score that becomes the threshold, in ``(0, 1]``.

        Notes
        -----
        When ``min(N, D)`` is at most 1024 the smaller of the covariance (``D x D``) and Gram (``N x N``)
        matrices is diagonalised exactly; otherwise a randomised subspace iteration (fixed seed, so the fit
        is deterministic) finds the leading axes without forming either matrix. Variances, residual scale and
        threshold are then measured on the sample with the float32 axes that are stored.
        """
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1 or x.dtype.kind not in "fiu":
            raise ValueError(f"x must be a numeric (N, D) array with N >= 2 and D >= 1, got {x.dtype} {x.shape}")
        if isinstance(n_components, bool) or not isinstance(n_components, int | np.integer) or n_components < 1:
            raise ValueError(f"n_components must be an integer >= 1, got {n_components!r}")
        if not (0 < quantile <= 1):
            raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
        if not _all_finite(x):
            raise ValueError("x must be finite (replace masked or missing inputs before fitting)")
        n, d = x.shape
        k = max(1, min(n - 1, d, int(n_components)))
        mean = x.mean(axis=0, dtype=np.float64)
        components = _principal_axes(x, mean, k)

        stored_mean = mean.astype(np.float32)
        stored_components = components.astype(np.float32)
        resid, proj = _residual_and_projection(x, stored_mean, stored_components)
        variances = (proj**2).sum(axis=0) / (n - 1)
        floor = 1e-12 * max(float(variances.max()), float(resid.mean()), 1e-300)
        variances = np.maximum(variances, floor).astype(np.float32)
        if k >= d:
            resid_scale = 0.0
        else:
            resid_scale = max(float(resid.mean()), floor)
        scores = _combine(resid, proj, variances, resid_scale)
        threshold = max(float(np.quantile(scores, quantile)), 1e-300)
        return cls(stored_mean, stored_components, variances, resid_scale, threshold, float(quantile))

    def score(self, x: np.ndarray) -> np.ndarray:
        """``(N,)`` float64 scores >= 0 of ``(N, D)`` inputs (``inf`` for a row with a non-finite value)."""
        x = self._check_x(x)
        finite = np.ones(x.shape[0], dtype=bool)
        scores = np.empty(x.shape[0], dtype=np.float64)
        for start, stop in _chunks(x.shape[0], x.shape[1]):
            block = x[start:stop]
            good = np.isfinite(block).all(axis=1)
            finite[start:stop] = good
            if not good.all():
                block = np.where(good[:, None], block, 0)
            resid, proj = _residual_and_projection(block, self.mean, self.components)
            scores[start:stop] = _combine(resid, proj, self.variances, self.resid_scale)
        scores[~finite] = np.inf
        return scores

    def flags(self, x: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: True where the score is above :attr:`threshold` (out of distribution)."""
        return self.score(x) > self.threshold

    def arrays(self) -> dict[str, np.ndarray]:
        """The float32 arrays (for a safetensors file): ``mean``, ``components``, ``variances``."""
        return {
            "mean": np.ascontiguousarray(self.mean, dtype=np.float32),
            "components": np.ascontiguousarray(self.components, dtype=np.float32),
            "variances": np.ascontiguousarray(self.variances, dtype=np.float32),
        }

    def params(self) -> dict[str, float]:
        """The scalars (for the JSON model card): ``resid_scale``, ``threshold``, ``quantile``."""
        return {"resid_scale": float(self.resid_scale), "threshold": float(self.threshold), "quantile": self.quantile}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], params: Mapping[str, Any]) -> InputCoverage:
        """Inverse of :meth:`arrays` and :meth:`params`."""
        missing = sorted({"mean", "components", "variances"} - set(arrays)) + sorted(
            {"resid_scale", "threshold", "quantile"} - set(params)
        )
        if missing:
            raise ValueError(f"input coverage is missing {missing}")
        mean = np.asarray(arrays["mean"], dtype=np.float32)
        components = np.asarray(arrays["components"], dtype=np.float32)
        variances = np.asarray(arrays["variances"], dtype=np.float32)
        if mean.ndim != 1 or components.ndim != 2 or components.shape[1] != mean.shape[0]:
            raise ValueError(
                f"input coverage: mean must be (D,) and components (k, D), got {mean.shape} {components.shape}"
            )
        if variances.shape != components.shape[:1]:
            raise ValueError(f"input coverage: variances must be ({components.shape[0]},), got {variances.shape}")
        return cls(
            mean,
            components,
            variances,
            float(params["resid_scale"]),
            float(params["threshold"]),
            float(params["quantile"]),
        )

    def _check_x(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        d = self.mean.shape[0]
        if x.ndim != 2 or x.shape[1] != d or x.dtype.kind not in "fiu":
            raise ValueError(f"x must be a numeric (N, {d}) array, got {x.dtype} {x.shape}")
        return x


def _all_finite(x: np.ndarray) -> bool:
    return all(np.isfinite(x[a:b]).all() for a, b in _chunks(x.shape[0], x.shape[1]))


def _chunks(n: int, d: int) -> list[tuple[int, int]]:
    rows = max(1, _CHUNK_VALUES // max(d, 1))
    return [(a, min(a + rows, n)) for a in range(0, n, rows)]


def _residual_and_projection(x: np.ndarray, mean: np.ndarray, components: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean squared residual per row ``(N,)`` and projections ``(N, k)``, chunk by chunk, returned in float64.

    The arithmetic is float32, the precision of the stored mean and axes (and of network inputs): relative
    errors near 1e-6 in a score that is compared with a threshold, at a quarter of float64's cost.
    """
    mean32 = np.asarray(mean, np.float32)
    comp32 = np.ascontiguousarray(components, np.float32)
    resid = np.empty(x.shape[0])
    proj = np.empty((x.shape[0], comp32.shape[0]))
    for a, b in _chunks(x.shape[0], x.shape[1]):
        c = np.subtract(x[a:b], mean32, dtype=np.float32)
        z = c @ comp32.T
        c -= z @ comp32  # the residual, in place
        resid[a:b] = np.einsum("ij,ij->i", c, c) / x.shape[1]
        proj[a:b] = z
    return resid, proj


def _combine(resid: np.ndarray, proj: np.ndarray, variances: np.ndarray, resid_scale: float) -> np.ndarray:
    maha = (proj**2 / variances.astype(np.float64)).mean(axis=1)
    return maha if resid_scale == 0 else resid / resid_scale + maha


def _principal_axes(x: np.ndarray, mean: np.ndarray, k: int) -> np.ndarray:
    """``(k, D)`` float64 leading principal axes of the rows of ``x`` about ``mean``."""
    n, d = x.shape
    if min(n, d) <= _EXACT_MAX:
        c = x.astype(np.float64) - mean
        if d <= n:
            _, vectors = np.linalg.eigh(c.T @ c)
            return vectors[:, ::-1][:, :k].T.copy()
        values, u = np.linalg.eigh(c @ c.T)
        u, values = u[:, ::-1][:, :k], values[::-1][:k]
        axes = (c.T @ u).T
        norms = np.linalg.norm(axes, axis=1, keepdims=True)
        return axes / np.where(norms > 0, norms, 1.0)
    # randomised subspace iteration on the implicitly centred matrix (never copies x)
    work = np.float32 if x.dtype == np.float32 else np.float64
    xw = x if x.dtype == work else x.astype(work)
    m = mean.astype(work)
    width = min(k + 10, min(n, d))

    def times(q: np.ndarray) -> np.ndarray:  # (x - mean) @ q
        return xw @ q - m @ q

    def times_t(q: np.ndarray) -> np.ndarray:  # (x - mean).T @ q
        return xw.T @ q - np.outer(m, q.sum(axis=0))

    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(times(rng.standard_normal((d, width)).astype(work)))
    for _ in range(4):
        q, _ = np.linalg.qr(times_t(q))
        q, _ = np.linalg.qr(times(q))
    small = times_t(q).T.astype(np.float64)  # (width, D) = q.T @ (x - mean)
    _, _, vt = np.linalg.svd(small, full_matrices=False)
    return vt[:k].copy()
