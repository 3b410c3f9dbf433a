from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from starlabel.data import SplitSpec, StoreDataset, compute_stats, make_loader
from starlabel.splits import assign_splits
from starlabel.store import Store, StoreBatch, StoreError, StoreLayout

N = 300
SPEC = SplitSpec(seed=5, train=0.6, valid=0.2)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    rng = np.random.default_rng(11)
    ids = rng.choice(10**9, N, replace=False).astype(np.int64) + 10**15
    teff = rng.normal(5000, 600, N).astype(np.float32)
    teff_ok = rng.random(N) < 0.8
    teff[~teff_ok] = np.nan
    phot = rng.normal([12.0, 1.0], [1.5, 0.3], (N, 2)).astype(np.float32)
    missing = rng.random((N, 2)) < 0.25
    phot[missing] = np.nan
    flux = (1 + 0.01 * np.arange(N)[:, None] + np.zeros((N, 7))).astype(np.float32)
    store = Store.create(
        tmp_path / "s.zarr",
        StoreLayout(7, "int", {"phot": ["g", "bp_rp"]}, {"teff": "K"}, chunk_rows=32),
        descriptor={"name": "t"},
        descriptor_hash="h",
        grid={},
        plugins={},
    )
    store.append(
        StoreBatch(
            ids,
            flux,
            np.ones((N, 7), np.float32),
            np.zeros((N, 7), bool),
            np.ones(N, np.float32),
            {"phot": (phot, missing)},
            {"teff": (teff, np.full(N, 50, np.float32), teff_ok)},
        )
    )
    keep = np.ones(N, bool)
    keep[::50] = False  # pretend the duplicate policy dropped these
    store.set_keep(keep)
    store.finish({})
    return tmp_path / "s.zarr"


def rows_of(dataset: StoreDataset, workers: int = 0) -> list[int]:
    return [int(r) for b in make_loader(dataset, batch_size=16, workers=workers) for r in b["row"]]


def expected_rows(path: Path, split: str) -> set[int]:
    store = Store.open(path)
    ids = np.asarray(store.array("source_id")[:])
    codes = assign_splits(ids, SPEC.seed, SPEC.train, SPEC.valid)
    keep = store.array("keep")[:]
    return set(np.flatnonzero(keep & (codes == {"train": 0, "valid": 1, "test": 2}[split])).tolist())


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_each_split_row_exactly_once(store_path: Path, split: str) -> None:
    rows = rows_of(StoreDataset(store_path, split, SPEC, buffer_rows=20))
    assert len(rows) == len(set(rows)) and set(rows) == expected_rows(store_path, split)


def test_workers_and_ranks_partition_the_rows(store_path: Path) -> None:
    truth = expected_rows(store_path, "train")
    two_workers = rows_of(StoreDataset(store_path, "train", SPEC), workers=2)
    assert sorted(two_workers) == sorted(truth)
    ranks = [rows_of(StoreDataset(store_path, "train", SPEC, rank=r, world_size=2)) for r in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1]) and set(ranks[0]) | set(ranks[1]) == truth


def test_shuffle_is_seeded_per_epoch(store_path: Path) -> None:
    a, b = StoreDataset(store_path, "train", SPEC), StoreDataset(store_path, "train", SPEC)
    assert rows_of(a) == rows_of(b)
    b.set_epoch(1)
    assert rows_of(a) != rows_of(b) and sorted(rows_of(a)) == sorted(rows_of(b))
    ordered = rows_of(StoreDataset(store_path, "train", SPEC, shuffle=False))
    assert ordered == sorted(ordered)


def test_stats_from_training_split_only(store_path: Path) -> None:
    stats = compute_stats(Store.open(store_path), SPEC)
    store = Store.open(store_path)
    train = np.array(sorted(expected_rows(store_path, "train")))
    teff = store.array("labels/teff")[:][train]
    ok = store.array("labels/teff_ok")[:][train]
    assert stats.n_train == len(train)
    np.testing.assert_allclose(stats.label_mean[0], teff[ok].astype(np.float64).mean(), rtol=1e-6)
    np.testing.assert_allclose(stats.label_std[0], teff[ok].astype(np.float64).std(), rtol=1e-5)
    g = store.array("aux/phot")[:][train, 0]
    g_ok = ~store.array("aux/phot_missing")[:][train, 0]
    np.testing.assert_allclose(stats.aux_mean[0], g[g_ok].astype(np.float64).mean(), rtol=1e-6)
    assert stats.aux_columns == ["phot.g", "phot.bp_rp"]


def test_missing_values_come_with_masks(store_path: Path) -> None:
    stats = compute_stats(Store.open(store_path), SPEC)
    store = Store.open(store_path)
    for b in make_loader(StoreDataset(store_path, "train", SPEC, stats), batch_size=64):
        rows = b["row"].numpy()
        assert (b["label_ok"][:, 0].numpy() == store.array("labels/teff_ok")[:][rows]).all()
        assert (b["aux_missing"].numpy() == store.array("aux/phot_missing")[:][rows]).all()
        assert torch.isfinite(b["labels"]).all() and torch.isfinite(b["aux"]).all()
        assert (b["labels"][~b["label_ok"]] == 0).all() and (b["aux"][b["aux_missing"]] == 0).all()
        raw = store.array("labels/teff")[:][rows]
        ok = b["label_ok"][:, 0].numpy()
        np.testing.assert_allclose(
            b["labels"][ok, 0].numpy(), (raw[ok] - stats.label_mean[0]) / stats.label_std[0], atol=1e-5
        )


def test_incomplete_store_refused(tmp_path: Path) -> None:
    Store.create(
        tmp_path / "x.zarr", StoreLayout(3, "int", {}, {}), descriptor={}, descriptor_hash="", grid={}, plugins={}
    )
    with pytest.raises(StoreError, match="store is incomplete"):
        StoreDataset(tmp_path / "x.zarr")


def test_rows_do_not_pin_their_chunk(store_path: Path) -> None:
    """A buffered row owns its memory, so the shuffle buffer bounds memory (a view would hold the whole chunk)."""
    row = next(iter(StoreDataset(store_path, None, SPEC)))
    assert row["flux"].untyped_storage().nbytes() == 7 * 4
    assert row["mask"].untyped_storage().nbytes() == 7
