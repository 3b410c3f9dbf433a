"""Prediction lanes: chunks predicted side by side give the catalogue of one lane, in order, and fail cleanly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from learning_helpers import make_learning_store, write_descriptor

from starlabel.catalogue import read_catalogue
from starlabel.descriptor import load_descriptor
from starlabel.lanes import LanesError, choose_lanes, one_thread_kernels, ordered_map
from starlabel.plugins import load_plugins
from starlabel.predict import PredictionError, predict
from starlabel.store import Store
from starlabel.train import TrainOptions, train


@pytest.fixture(scope="module")
def plugins():  # type: ignore[no-untyped-def]
    return load_plugins(entry_points=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, plugins) -> tuple[Path, Path, Path]:  # type: ignore[no-untyped-def]
    """A 2-member network and a store of 700 rows in 11 chunks of 64: (descriptor, store, bundle)."""
    folder = tmp_path_factory.mktemp("lanes")
    descriptor = write_descriptor(folder, ensemble=2, epochs=2)
    store = make_learning_store(folder, 700, descriptor=descriptor, chunk_rows=64)
    bundle = folder / "bundle"
    train(load_descriptor(descriptor, plugins), plugins, store, bundle, TrainOptions(progress=False))
    return descriptor, store, bundle


# ---------------------------------------------------------------------------------------------- ordered_map
def test_ordered_map_yields_in_order_whatever_finishes_first() -> None:
    def slow_for_even(i: int) -> tuple[int, str]:
        time.sleep(0.02 if i % 2 == 0 else 0.0)
        return i * i, threading.current_thread().name

    results = list(ordered_map(slow_for_even, range(12), 3))
    assert [r[0] for r in results] == [i * i for i in range(12)]
    assert {name for _, name in results} <= {f"starlabel-lane_{k}" for k in range(3)}
    assert len({name for _, name in results}) > 1


def test_one_lane_runs_on_the_calling_thread() -> None:
    names = list(ordered_map(lambda _: threading.current_thread().name, range(3), 1))
    assert names == [threading.current_thread().name] * 3


def test_ordered_map_takes_items_at_most_two_per_lane_ahead() -> None:
    taken: list[int] = []

    def items():  # type: ignore[no-untyped-def]
        for i in range(100):
            taken.append(i)
            yield i

    results = ordered_map(lambda i: i, items(), 2)
    assert next(results) == 0
    assert len(taken) == 4  # the first result is handed back once 2 × 2 items are in flight
    results.close()
    assert len(taken) == 4


def test_an_error_in_a_lane_is_raised_in_its_turn_after_the_earlier_results() -> None:
    def fail_at_five(i: int) -> int:
        if i == 5:
            raise ValueError("item 5 is bad")
        return i

    got: list[int] = []
    with pytest.raises(ValueError, match="item 5 is bad"):
        for value in ordered_map(fail_at_five, range(20), 2):
            got.append(value)
    assert got == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------------------- lanes and threads
def test_choose_lanes() -> None:
    assert choose_lanes(None, "cpu", True) == torch.get_num_threads()
    assert choose_lanes(3, "cpu", True) == 3
    assert choose_lanes(3, "cpu", False) == 1  # Monte-Carlo dropout shares torch's global generator
    assert choose_lanes(3, "cuda", True) == 1
    with pytest.raises(LanesError, match="lanes must be at least 1.*got 0"):
        choose_lanes(0, "cpu", True)


def test_one_thread_kernels_restores_torch_threads() -> None:
    before = torch.get_num_threads()
    with one_thread_kernels():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with one_thread_kernels(active=False):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), one_thread_kernels():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


# ------------------------------------------------------------------------------------------------ predict
def test_lanes_give_the_catalogue_of_one_lane_byte_for_byte(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, store, bundle = trained
    one, three = tmp_path / "one.parquet", tmp_path / "three.parquet"
    report = predict(bundle, store, one, plugins, progress=False, lanes=1)
    predict(bundle, store, three, plugins, progress=False, lanes=3)
    assert report.chunks == 11 and report.rows == 700
    assert one.read_bytes() == three.read_bytes()
    columns, _ = read_catalogue(three)
    ids = np.asarray(Store.open(store).array("source_id")[:])
    assert np.array_equal(columns["source_id"], ids)  # every row once, in store order
    assert np.isfinite(columns["teff"]).all()


def test_lanes_engines_agree(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, store, bundle = trained
    predict(bundle, store, tmp_path / "fast.fits", plugins, progress=False, lanes=2)
    predict(bundle, store, tmp_path / "eager.fits", plugins, progress=False, lanes=2, engine="eager")
    fast, _ = read_catalogue(tmp_path / "fast.fits")
    eager, _ = read_catalogue(tmp_path / "eager.fits")
    np.testing.assert_allclose(fast["teff"], eager["teff"], rtol=1e-5)
    np.testing.assert_array_equal(fast["source_id"], eager["source_id"])


def test_strict_run_in_lanes_stops_at_the_first_bad_chunk_and_resumes(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    descriptor, _, bundle = trained
    store_path = make_learning_store(tmp_path, 400, seed=4, descriptor=descriptor, chunk_rows=64)
    store = Store.open(store_path, "r+")
    mask = np.asarray(store.array("mask")[:])
    mask[200] = True  # chunk 3 (rows 192-255): no usable pixel
    store.array("mask")[:] = mask
    out = tmp_path / "strict.parquet"
    with pytest.raises(PredictionError, match=r"\(chunk 3, from row 192\) has no usable pixel"):
        predict(bundle, store_path, out, plugins, strict=True, progress=False, lanes=2)
    parts = sorted(p.name for p in Path(f"{out}.parts").glob("part-*"))
    assert parts[:3] == ["part-000000.npz", "part-000001.npz", "part-000002.npz"]
    assert "part-000003.npz" not in parts
    report = predict(bundle, store_path, out, plugins, progress=False, lanes=2)  # not strict: flags it and finishes
    assert report.rows == 400 and report.resumed_chunks >= 3
    assert report.no_data_ids == [str(np.asarray(store.array("source_id")[200]))]


def test_lanes_leave_torch_threads_as_they_were(trained, plugins, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, store, bundle = trained
    before = torch.get_num_threads()
    predict(bundle, store, tmp_path / "p.parquet", plugins, progress=False, lanes=2)
    assert torch.get_num_threads() == before


def test_cli_lanes(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from starlabel.cli import make_cli

    _, store, bundle = trained
    out = tmp_path / "cli.parquet"
    runner = CliRunner()
    result = runner.invoke(
        make_cli(), ["predict", str(bundle), "--store", str(store), "--out", str(out), "--lanes", "2", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "700 rows from 11 chunk(s)" in result.output
    refused = runner.invoke(
        make_cli(), ["predict", str(bundle), "--store", str(store), "--out", str(out), "--lanes", "0"]
    )
    assert refused.exit_code == 2 and "--lanes" in refused.output
    with_dask = runner.invoke(
        make_cli(), ["predict", str(bundle), "--store", str(store), "--out", str(out), "--dask", "--lanes", "2"]
    )
    assert with_dask.exit_code == 2 and "--lanes applies to runs without --dask" in with_dask.output
