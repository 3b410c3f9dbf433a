from __future__ import annotations

import json

import numpy as np
import pytest

from starlabel import coverage
from starlabel.coverage import PERCENTILES, InputCoverage, LabelCoverage

NAMES = ["teff", "logg", "feh"]
BOX = np.array([[4000.0, 0.0, -2.0], [7000.0, 5.0, 0.5]])


def box_labels(n: int = 4000, seed: int = 0, hole: bool = False) -> np.ndarray:
    """Uniform labels in BOX; with ``hole``, no star with teff > 5500 and logg < 2.5."""
    rng = np.random.default_rng(seed)
    labels = rng.uniform(BOX[0], BOX[1], (n, 3))
    if hole:
        labels = labels[~((labels[:, 0] > 5500) & (labels[:, 1] < 2.5))]
    return labels


# ----------------------------------------------------------------------------------------------- labels
def test_fit_ranges_percentiles_and_pairs():
    labels = box_labels()
    ok = np.ones_like(labels, dtype=bool)
    ok[:10, 0] = False
    labels[:10, 0] = 1e9  # not ok: ignored
    labels[10, 1] = np.nan  # not finite: ignored even though ok
    cov = LabelCoverage.fit(labels, ok, NAMES, bins=8)
    good_teff = labels[10:, 0]
    assert cov.lo[0] == good_teff.min() and cov.hi[0] == good_teff.max()
    assert cov.n == len(labels)
    assert cov.percentiles["teff"] == pytest.approx(np.percentile(good_teff, PERCENTILES))
    assert [p["labels"] for p in cov.pairs] == [["teff", "logg"], ["teff", "feh"], ["logg", "feh"]]
    first = cov.pairs[0]
    assert np.array(first["counts"]).shape == (8, 8) and len(first["edges"][0]) == 9
    assert first["edges"][0][0] == cov.lo[0] and first["edges"][0][-1] == cov.hi[0]
    assert np.sum(first["counts"]) == len(labels) - 11  # rows with both teff and logg ok


def test_outside_bits():
    labels = box_labels()
    cov = LabelCoverage.fit(labels, np.ones_like(labels, dtype=bool), NAMES)
    lo, hi = np.array(cov.lo), np.array(cov.hi)
    mid = (lo + hi) / 2
    pred = np.array(
        [
            mid,
            lo,  # edges are inside
            hi,
            [hi[0] + 1, mid[1], mid[2]],
            [mid[0], lo[1] - 0.01, mid[2]],
            [mid[0], mid[1], hi[2] + 0.1],
            [lo[0] - 1, mid[1], hi[2] + 0.1],
            [hi[0] + 1, lo[1] - 1, lo[2] - 1],
            [mid[0], np.nan, mid[2]],
            [np.inf, mid[1], -np.inf],
        ]
    )
    out = cov.outside(pred)
    assert out.dtype == np.int64
    assert out.tolist() == [0, 0, 0, 0b001, 0b010, 0b100, 0b101, 0b111, 0b010, 0b101]


def test_label_never_seen_is_always_flagged():
    labels = box_labels(500)
    ok = np.ones_like(labels, dtype=bool)
    ok[:, 2] = False
    cov = LabelCoverage.fit(labels, ok, NAMES)
    assert np.isnan(cov.lo[2]) and np.isnan(cov.hi[2]) and np.isnan(cov.percentiles["feh"]).all()
    pred = labels[:20]
    assert (cov.outside(pred) == 0b100).all()
    assert cov.sparse(pred).all()  # every pair with feh is empty
    # a JSON round trip keeps it (NaN written as null)
    d = cov.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert LabelCoverage.from_dict(json.loads(text)).to_dict() == d


def test_sparse_flags_the_hole_and_not_populated_cells():
    labels = box_labels(6000, hole=True)
    cov = LabelCoverage.fit(labels, np.ones_like(labels, dtype=bool), NAMES, bins=10)
    pred = np.array(
        [
            [6500.0, 1.0, -0.5],  # in the hole
            [6000.0, 2.0, 0.0],  # in the hole
            [4500.0, 4.0, -0.5],  # populated
            [5000.0, 1.0, -1.5],  # populated (cool giant)
            [6500.0, 4.0, 0.2],  # populated (hot dwarf)
            [8000.0, 4.0, 0.0],  # outside the histogram
            [np.nan, 4.0, 0.0],  # not finite
        ]
    )
    assert cov.sparse(pred).tolist() == [True, True, False, False, False, True, True]
    assert cov.sparse(labels).mean() <= 0.01  # training stars are in populated cells
    # with a huge min_count every cell is sparse, with 0 none inside the histogram is
    assert cov.sparse(pred[2:5], min_count=10**6).all()
    assert not cov.sparse(pred[:5], min_count=0).any()


def test_single_label_and_degenerate_label():
    labels = np.random.default_rng(0).normal(size=(100, 1))
    cov = LabelCoverage.fit(labels, np.ones_like(labels, dtype=bool), ["teff"])
    assert cov.pairs == []
    assert not cov.sparse(np.array([[0.0], [100.0]])).any()
    assert cov.outside(np.array([[0.0], [100.0]])).tolist() == [0, 1]
    const = np.column_stack([labels[:, 0], np.full(100, 3.0)])
    cov2 = LabelCoverage.fit(const, np.ones_like(const, dtype=bool), ["a", "b"], bins=5)
    assert cov2.lo[1] == cov2.hi[1] == 3.0
    assert not cov2.sparse(np.array([[0.0, 3.0]])).any() and cov2.sparse(np.array([[0.0, 3.1]])).all()


def test_round_trip_through_json_is_exact():
    labels = box_labels(1000)
    ok = np.random.default_rng(1).random(labels.shape) > 0.1
    cov = LabelCoverage.fit(labels, ok, NAMES, bins=7)
    back = LabelCoverage.from_dict(json.loads(json.dumps(cov.to_dict(), allow_nan=False)))
    assert back == cov
    pred = box_labels(200, seed=5) * 1.1
    assert np.array_equal(back.outside(pred), cov.outside(pred)) and np.array_equal(back.sparse(pred), cov.sparse(pred))


def test_label_coverage_rejects_bad_arguments():
    labels = box_labels(50)
    ok = np.ones_like(labels, dtype=bool)
    with pytest.raises(ValueError, match="names must be 3 distinct"):
        LabelCoverage.fit(labels, ok, ["a", "a", "b"])
    with pytest.raises(ValueError, match="ok must be a bool array"):
        LabelCoverage.fit(labels, ok.astype(int), NAMES)
    with pytest.raises(ValueError, match="bins must be"):
        LabelCoverage.fit(labels, ok, NAMES, bins=0)
    cov = LabelCoverage.fit(labels, ok, NAMES)
    with pytest.raises(ValueError, match=r"pred must be an \(N, 3\)"):
        cov.outside(labels[:, :2])
    with pytest.raises(ValueError, match="missing"):
        LabelCoverage.from_dict({"names": NAMES})


# ----------------------------------------------------------------------------------------------- inputs
D = 100


def subspace_sample(n: int, seed: int, scale: float = 1.0, off: float = 0.0) -> np.ndarray:
    """Points of a fixed 5-dim subspace of R^100 (axes of different variance) plus noise of 0.01 per dim."""
    basis = np.linalg.qr(np.random.default_rng(123).normal(size=(D, 5)))[0].T  # (5, D), fixed
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 5)) * np.array([5.0, 3.0, 2.0, 1.0, 0.5]) * scale
    x = 0.3 + z @ basis + 0.01 * rng.normal(size=(n, D))
    if off:
        direction = rng.normal(size=(n, D))
        direction -= direction @ basis.T @ basis  # orthogonal to the subspace
        x += off * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    return x


@pytest.fixture(scope="module")
def fitted() -> InputCoverage:
    return InputCoverage.fit(subspace_sample(4000, seed=0))


def test_input_coverage_flags(fitted: InputCoverage):
    assert fitted.components.shape == (16, D) and fitted.variances.shape == (16,)
    assert np.allclose(fitted.components @ fitted.components.T, np.eye(16), atol=1e-5)
    assert fitted.variances[0] == pytest.approx(25, rel=0.1) and fitted.variances[-1] == pytest.approx(1e-4, rel=0.3)
    held_out = subspace_sample(4000, seed=1)
    scores = fitted.score(held_out)
    assert (scores >= 0).all() and np.median(scores) == pytest.approx(2, rel=0.2)
    assert fitted.flags(held_out).mean() <= 0.01
    assert fitted.flags(subspace_sample(500, seed=2, off=1.0)).all()
    wide = fitted.flags(subspace_sample(2000, seed=3, scale=np.sqrt(10)))
    assert wide.mean() > 0.5  # 10x the variance along the subspace (a Gaussian that overlaps the training one)
    five = InputCoverage.fit(subspace_sample(4000, seed=0), n_components=5)
    assert five.flags(subspace_sample(2000, seed=3, scale=np.sqrt(10))).mean() > 0.75


def test_input_coverage_round_trip_gives_identical_scores(fitted: InputCoverage, tmp_path):
    from safetensors.numpy import load_file, save_file

    x = np.concatenate([subspace_sample(300, seed=4), subspace_sample(30, seed=5, off=0.5)])
    save_file(fitted.arrays(), str(tmp_path / "coverage.safetensors"))
    params = json.loads(json.dumps(fitted.params()))
    back = InputCoverage.from_arrays(load_file(str(tmp_path / "coverage.safetensors")), params)
    assert all(a.dtype == np.float32 for a in fitted.arrays().values())
    assert np.array_equal(back.score(x), fitted.score(x)) and np.array_equal(back.flags(x), fitted.flags(x))


def test_input_coverage_small_sample_and_non_finite_rows():
    x = subspace_sample(6, seed=0)
    cov = InputCoverage.fit(x, n_components=16)
    assert cov.components.shape == (5, D)  # k = N - 1
    assert np.isfinite(cov.score(x)).all() and np.isfinite(cov.threshold)
    two = InputCoverage.fit(x[:2])
    assert two.components.shape == (1, D)
    y = subspace_sample(3, seed=1)
    y[1, 7] = np.nan
    scores = cov.score(y)
    assert np.isfinite(scores[[0, 2]]).all() and scores[1] == np.inf and cov.flags(y)[1]


def test_input_coverage_full_rank_has_no_residual_term():
    x = np.random.default_rng(0).normal(size=(500, 4))
    cov = InputCoverage.fit(x, n_components=8)
    assert cov.components.shape == (4, 4) and cov.resid_scale == 0.0
    assert cov.flags(x * 10).mean() > 0.9 and cov.flags(x).mean() <= 0.002


def test_randomised_fit_and_chunked_score_agree_with_exact(monkeypatch):
    x = subspace_sample(1500, seed=0)
    y = np.concatenate([subspace_sample(200, seed=1), subspace_sample(20, seed=2, off=0.3)])
    exact = InputCoverage.fit(x, n_components=5)
    monkeypatch.setattr(coverage, "_EXACT_MAX", 10)
    randomised = InputCoverage.fit(x.astype(np.float32), n_components=5)
    np.testing.assert_allclose(randomised.score(y), exact.score(y), rtol=1e-3)
    monkeypatch.setattr(coverage, "_CHUNK_VALUES", 7 * D)
    np.testing.assert_allclose(randomised.score(y), exact.score(y), rtol=1e-3)
    assert InputCoverage.fit(x, n_components=5).threshold == pytest.approx(exact.threshold, rel=1e-3)


def test_input_coverage_rejects_bad_arguments(fitted: InputCoverage):
    x = subspace_sample(10, seed=0)
    with pytest.raises(ValueError, match="N >= 2"):
        InputCoverage.fit(x[:1])
    with pytest.raises(ValueError, match="n_components must be"):
        InputCoverage.fit(x, n_components=0)
    with pytest.raises(ValueError, match="quantile must be"):
        InputCoverage.fit(x, quantile=1.5)
    bad = x.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="x must be finite"):
        InputCoverage.fit(bad)
    with pytest.raises(ValueError, match=r"\(N, 100\)"):
        fitted.score(x[:, :50])
    with pytest.raises(ValueError, match="missing"):
        InputCoverage.from_arrays({"mean": fitted.mean}, fitted.params())
