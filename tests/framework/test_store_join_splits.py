from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from starlabel.join import IdIndex, keep_best
from starlabel.splits import assign_splits, unit_hash
from starlabel.store import Store, StoreBatch, StoreError, StoreLayout


def layout(id_kind: str = "int") -> StoreLayout:
    return StoreLayout(n_pixels=5, id_kind=id_kind, aux={"phot": ["g", "bp"]}, labels={"teff": "K"}, chunk_rows=4)


def batch(ids: np.ndarray, seed: int = 0) -> StoreBatch:
    rng = np.random.default_rng(seed)
    n = len(ids)
    return StoreBatch(
        ids,
        rng.normal(1, 0.1, (n, 5)).astype(np.float32),
        rng.uniform(10, 20, (n, 5)).astype(np.float32),
        rng.random((n, 5)) < 0.2,
        rng.uniform(5, 50, n).astype(np.float32),
        {"phot": (rng.normal(12, 1, (n, 2)).astype(np.float32), rng.random((n, 2)) < 0.3)},
        {"teff": (rng.normal(5000, 500, n).astype(np.float32), np.full(n, 80, np.float32), rng.random(n) < 0.7)},
    )


def create(path: Path, id_kind: str = "int") -> Store:
    return Store.create(
        path,
        layout(id_kind),
        descriptor={"name": "toy"},
        descriptor_hash="abc",
        grid={"unit": "nm"},
        plugins={"toy": "1"},
    )


def test_append_read_round_trip_and_reopen(tmp_path: Path) -> None:
    store = create(tmp_path / "s.zarr")
    ids = np.arange(10, dtype=np.int64) + 2**62
    first, second = batch(ids[:6], 1), batch(ids[6:], 2)
    store.append(first)
    store.append(second)
    with pytest.raises(StoreError, match="store is incomplete .* re-run the same `starlabel ingest` command"):
        Store.open(tmp_path / "s.zarr")
    store.finish({"note": "test"})
    again = Store.open(tmp_path / "s.zarr")
    assert again.n_rows == 10 and again.complete and again.meta["completion"]["chunks"] == 3
    out = again.read(0, 10)
    both = StoreBatch.concat([first, second])
    assert out.source_id.tolist() == ids.tolist()
    for name in ("flux", "ivar", "mask", "snr"):
        np.testing.assert_array_equal(getattr(out, name), getattr(both, name))
    np.testing.assert_array_equal(out.aux["phot"][1], both.aux["phot"][1])
    np.testing.assert_array_equal(out.labels["teff"][2], both.labels["teff"][2])
    assert again.array("aux/phot").attrs["columns"] == ["g", "bp"]
    assert again.array("labels/teff").attrs["unit"] == "K"
    assert again.array("flux").chunks == (4, 5)
    with pytest.raises(ValueError, match="read-only"):
        again.array("flux")[0] = 0


def test_string_ids_truncate_and_progress(tmp_path: Path) -> None:
    store = create(tmp_path / "s.zarr", "str")
    store.append(batch(np.array(["18265193-2219034", "CNAME_2", "x"]), 3))
    store.truncate(2)
    assert np.asarray(store.array("source_id")[:]).tolist() == ["18265193-2219034", "CNAME_2"]
    assert store.array("labels/teff_ok").shape == (2,)
    assert store.read_progress() is None
    store.write_progress({"rows": 2})
    assert store.read_progress() == {"rows": 2}
    store.finish({})
    assert store.read_progress() is None


def test_bad_appends_and_opens(tmp_path: Path) -> None:
    store = create(tmp_path / "s.zarr")
    wrong = batch(np.arange(3))
    wrong.aux = {}
    with pytest.raises(
        StoreError, match=r"batch carries aux \[\] and labels \['teff'\], the store holds aux \['phot'\]"
    ):
        store.append(wrong)
    with pytest.raises(StoreError, match="already exists"):
        create(tmp_path / "s.zarr")
    with pytest.raises(StoreError, match="no store here"):
        Store.open(tmp_path / "nothing")


def test_id_index_int_and_str() -> None:
    table = np.array([5, 3, 9, 3], dtype=np.int64) + 2**60
    query = np.array([3, 4, 9, 5], dtype=np.int64) + 2**60
    index = IdIndex(table)
    assert index.lookup(query).tolist() == [1, -1, 2, 0]  # first occurrence of a repeated id
    assert index.lookup(query[::-1]).tolist() == [0, 2, -1, 1]  # built once, looked up many times
    assert IdIndex(np.array(["a", "b"])).lookup(np.array(["b", "z"])).tolist() == [1, -1]
    with pytest.raises(TypeError, match="cannot join integer source ids to string ids"):
        IdIndex(np.array(["1"])).lookup(np.array([1]))


def test_keep_best_snr() -> None:
    ids = np.array([7, 8, 7, 9, 7, 8])
    snr = np.array([10.0, np.nan, 30.0, 5.0, 30.0, 1.0])
    assert keep_best(ids, snr).tolist() == [False, False, True, True, False, True]


def test_splits_deterministic_and_proportional() -> None:
    ids = np.arange(200_000, dtype=np.int64) * 7919 + 4_000_000_000_000_000_000
    codes = assign_splits(ids, seed=1, train=0.8, valid=0.1)
    fractions = np.bincount(codes, minlength=3) / len(ids)
    np.testing.assert_allclose(fractions, [0.8, 0.1, 0.1], atol=0.005)
    perm = np.random.default_rng(0).permutation(len(ids))
    assert (assign_splits(ids[perm], 1, 0.8, 0.1) == codes[perm]).all()  # order does not matter
    assert (assign_splits(ids, 2, 0.8, 0.1) != codes).mean() > 0.15  # the seed does
    u = unit_hash(np.array(["2M00000002+7417074", "2M00000002+7417074", "other"]), 3)
    assert u[0] == u[1] != u[2] and ((0 <= u) & (u < 1)).all()


def test_aux_table_concat() -> None:
    from starlabel.containers import AuxTable
    from starlabel.errors import DataFileError

    empty = AuxTable.concat(["a", "b"], [])
    assert empty.values.shape == (0, 2) and empty.source_id.dtype == np.int64
    part = ("one.fits", np.array([2**62 + 1]), np.ones((1, 2)), np.zeros((1, 2), bool))
    both = AuxTable.concat(["a", "b"], [part, ("two.fits", np.array([7]), np.zeros((1, 2)), np.ones((1, 2), bool))])
    assert both.source_id.tolist() == [2**62 + 1, 7] and both.missing[1].all()
    with pytest.raises(
        DataFileError, match=r"^two.csv: ids of dtype <U1 cannot join ids of dtype int64 from one.fits$"
    ):
        AuxTable.concat(["a", "b"], [part, ("two.csv", np.array(["x"]), np.ones((1, 2)), np.zeros((1, 2), bool))])
