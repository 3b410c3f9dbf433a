"""``starlabel predict --dask``: chunks as Dask tasks give the single-process catalogue, byte for byte.

A small bcnn bundle (Monte-Carlo dropout, so every chunk's numbers depend on its seeding) is applied to a
store of 30 chunks, once in one process and then on the local cluster ``--dask`` starts (2 worker
processes, one thread each): through the CLI given that cluster's address (resuming parts left by an
interrupted single-process run), through the API into Parquet, and with one worker SIGKILLed mid-run.
The CLI starting a cluster of its own (``--dask`` alone) is the slow test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("distributed")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "framework"))
from learning_helpers import make_learning_store, write_descriptor  # noqa: E402

import starlabel.cli_learn as cli_learn  # noqa: E402
import starlabel.predict as predict_module  # noqa: E402
import starlabel.predict_dask as predict_dask_module  # noqa: E402
from starlabel.catalogue import CatalogueError, read_catalogue  # noqa: E402
from starlabel.cli import main  # noqa: E402
from starlabel.cli_learn import predict_command  # noqa: E402
from starlabel.descriptor import load_descriptor  # noqa: E402
from starlabel.plugins import Plugins, load_plugins  # noqa: E402
from starlabel.predict import PredictionError, open_catalogue, plan_prediction, predict, predict_chunk  # noqa: E402
from starlabel.predict_dask import (  # noqa: E402
    SchedulerUnreachableError,
    chunk_key,
    local_client,
    predict_dask,
    predict_part,
)
from starlabel.store import Store  # noqa: E402
from starlabel.train import TrainOptions, train  # noqa: E402

ROWS, CHUNK_ROWS = 600, 20  # 30 chunks
FEW_PASSES = 4  # Monte-Carlo dropout passes of the quick runs
SLOW_PASSES = 40  # ten times the passes: a worker can be killed while the run has most chunks to go


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return load_plugins(entry_points=False)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory, plugins: Plugins) -> SimpleNamespace:
    """A trained bcnn bundle, its store, and the single-process FITS and Parquet catalogues."""
    folder = tmp_path_factory.mktemp("dask")
    descriptor = write_descriptor(
        folder, epochs=1, network={"architecture": "bcnn", "options": {}}, mc_samples=FEW_PASSES
    )
    store = make_learning_store(folder, ROWS, descriptor=descriptor, chunk_rows=CHUNK_ROWS)
    bundle = folder / "bundle"
    train(load_descriptor(descriptor, plugins), plugins, store, bundle, TrainOptions(progress=False))
    fits, parquet = folder / "single.fits", folder / "single.parquet"
    predict(bundle, store, fits, plugins, progress=False)
    predict(bundle, store, parquet, plugins, progress=False)
    ids = np.asarray(Store.open(store).array("source_id")[:])
    return SimpleNamespace(descriptor=descriptor, bundle=bundle, store=store, fits=fits, parquet=parquet, ids=ids)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A client on the local cluster that ``--dask`` alone starts: 2 worker processes, 1 thread each, nannies."""
    with local_client(2) as dask_client:
        yield dask_client


def leftovers(out: Path) -> list[Path]:
    return [p for p in (Path(f"{out}.parts"), Path(f"{out}.lock"), Path(f"{out}.tmp")) if p.exists()]


def unused_address() -> str:
    """A local TCP address where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


# ------------------------------------------------------------------------------------- same catalogue
def test_cli_dask_run_resumes_and_writes_the_single_process_fits_byte_for_byte(
    case: SimpleNamespace, plugins: Plugins, client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workers = client.run(os.getpid)
    assert list(client.nthreads().values()) == [1, 1] and os.getpid() not in workers.values()
    assert len(set(workers.values())) == 2  # two processes
    out = tmp_path / "dask.fits"
    # an interrupted single-process run left the parts of chunks 0, 1 and 7
    plan = plan_prediction(case.bundle, case.store, plugins)
    with open_catalogue(plan, out, overwrite=False) as writer:
        for chunk in (0, 1, 7):
            writer.write_part(chunk, predict_chunk(plan.bundle, plan.ensemble, plan.store, chunk, None, None))
    address = client.scheduler.address
    args = ["predict", str(case.bundle), "--store", str(case.store), "--out", str(out), "--dask", address, "--quiet"]
    with pytest.raises(SystemExit) as exited:
        main(args)
    captured = capsys.readouterr()
    assert exited.value.code == 0, captured.err
    assert f"{out}: {ROWS} rows from 30 chunk(s) (3 resumed)" in captured.out
    assert out.read_bytes() == case.fits.read_bytes()
    assert leftovers(out) == []


@pytest.mark.slow
def test_cli_dask_alone_starts_a_local_cluster_and_writes_the_single_process_fits(
    case: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "local.fits"
    args = ["predict", str(case.bundle), "--store", str(case.store), "--out", str(out), "--dask", "--workers", "2"]
    with pytest.raises(SystemExit) as exited:
        main(args)
    captured = capsys.readouterr()
    assert exited.value.code == 0, captured.err
    assert f"{out}: {ROWS} rows from 30 chunk(s) in" in captured.out
    assert "predict" in captured.err and "30/30" in captured.err  # the progress bar, driven by as_completed
    assert out.read_bytes() == case.fits.read_bytes()
    assert leftovers(out) == []


def test_api_dask_run_writes_the_single_process_parquet(
    case: SimpleNamespace, plugins: Plugins, client: Any, tmp_path: Path
) -> None:
    out = tmp_path / "dask.parquet"
    report = predict_dask(case.bundle, case.store, out, plugins, client=client, progress=False)
    assert (report.rows, report.chunks, report.resumed_chunks) == (ROWS, 30, 0)
    got, got_meta = read_catalogue(out)
    want, want_meta = read_catalogue(case.parquet)
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert got_meta == want_meta
    assert out.read_bytes() == case.parquet.read_bytes()
    np.testing.assert_array_equal(got["source_id"], case.ids)  # every row once, in store order
    # the same command again: the finished catalogue is recognised, nothing is submitted
    again = predict_dask(case.bundle, case.store, out, plugins, client=client, progress=False)
    assert (again.rows, again.resumed_chunks) == (ROWS, 30)
    assert out.read_bytes() == case.parquet.read_bytes()


def test_a_worker_killed_mid_run_has_its_chunk_rerun_and_the_catalogue_is_complete(
    case: SimpleNamespace, plugins: Plugins, client: Any, tmp_path: Path
) -> None:
    reference = tmp_path / "single-slow.fits"
    predict(case.bundle, case.store, reference, plugins, mc_samples=SLOW_PASSES, progress=False)
    client.wait_for_workers(2)
    pids: dict[str, int] = client.run(os.getpid)
    out = tmp_path / "killed.fits"
    parts = Path(f"{out}.parts")
    killed: dict[str, Any] = {}

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if parts.is_dir() and any(parts.glob("part-*.npz")):  # at least one part landed
                busy = {address: keys for address, keys in client.processing().items() if keys and address in pids}
                if busy:
                    address, keys = sorted(busy.items())[0]
                    os.kill(pids[address], signal.SIGKILL)
                    time.sleep(0.5)  # the dead process writes nothing more
                    present = {int(p.name[5:11]) for p in parts.glob("part-*.npz")}
                    chunks = [int(str(key)[-6:]) for key in keys]
                    killed.update(address=address, in_flight=[c for c in chunks if c not in present])
            time.sleep(0.005)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    try:
        report = predict_dask(
            case.bundle, case.store, out, plugins, client=client, mc_samples=SLOW_PASSES, progress=False
        )
    finally:
        killer.join()
    assert killed, "the prediction finished before a worker could be killed"
    # the chunk the dead worker was computing had no part when it died; the catalogue has it: it was re-run
    assert killed["in_flight"], killed
    assert report.rows == ROWS and report.resumed_chunks == 0
    columns, _ = read_catalogue(out)
    assert len(set(columns["source_id"].tolist())) == ROWS
    np.testing.assert_array_equal(columns["source_id"], case.ids)
    assert out.read_bytes() == reference.read_bytes()
    assert leftovers(out) == []
    # the nanny replaced the dead worker
    client.wait_for_workers(2)
    after = client.run(os.getpid)
    assert pids[killed["address"]] not in after.values() and len(after) == 2


def test_strict_stops_at_a_spectrum_with_no_usable_pixel_reported_by_a_worker(
    case: SimpleNamespace, plugins: Plugins, client: Any, tmp_path: Path
) -> None:
    store_path = make_learning_store(tmp_path, 60, seed=4, descriptor=case.descriptor, chunk_rows=CHUNK_ROWS)
    store = Store.open(store_path, "r+")
    mask = np.asarray(store.array("mask")[:])
    mask[25] = True  # chunk 1 (rows 20 to 39)
    store.array("mask")[:] = mask
    bad_id = int(store.array("source_id")[25])
    out = tmp_path / "strict.fits"
    with pytest.raises(PredictionError, match=rf"source_id {bad_id} \(chunk 1, from row 20\) has no usable pixel"):
        predict_dask(case.bundle, store_path, out, plugins, client=client, strict=True, progress=False)
    assert not Path(f"{out}.parts/part-000001.npz").exists() and not Path(f"{out}.lock").exists()
    report = predict_dask(case.bundle, store_path, out, plugins, client=client, overwrite=True, progress=False)
    assert report.no_data_ids == [str(bad_id)] and report.flagged["no_data"] == 1
    single = tmp_path / "single.fits"
    predict(case.bundle, store_path, single, plugins, progress=False)
    assert out.read_bytes() == single.read_bytes()


# ------------------------------------------------------------------------------------------- refusals
def test_an_unreachable_scheduler_is_a_typed_error_naming_the_address(
    case: SimpleNamespace,
    plugins: Plugins,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    address = unused_address()
    out = tmp_path / "x.fits"
    with pytest.raises(
        SchedulerUnreachableError,
        match=rf"^cannot reach the Dask scheduler at {re.escape(address)} within 1 s \(OSError: .*\); check the",
    ):
        predict_dask(case.bundle, case.store, out, plugins, address=address, connect_timeout=1, progress=False)
    assert leftovers(out) == [] and not out.exists()  # a mistyped address leaves nothing behind
    monkeypatch.setattr(predict_dask_module, "CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(case.bundle), "--store", str(case.store), "--out", str(out), "--dask", address, "--quiet"])
    assert exited.value.code == 2
    assert f"starlabel: error: cannot reach the Dask scheduler at {address} within 1 s" in capsys.readouterr().err


def test_the_lock_refuses_a_second_prediction_before_any_cluster_is_contacted(
    case: SimpleNamespace, plugins: Plugins, tmp_path: Path
) -> None:
    out = tmp_path / "c.parquet"
    lock = Path(f"{out}.lock")
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "token": "x"}))
    with pytest.raises(
        CatalogueError, match=rf"another prediction is writing {re.escape(str(out))} \(pid {os.getpid()}\)"
    ):
        predict_dask(case.bundle, case.store, out, plugins, address=unused_address(), connect_timeout=1, progress=False)
    assert json.loads(lock.read_text())["token"] == "x"  # the other run's lock is untouched


def test_a_late_task_writes_into_its_own_run_only(case: SimpleNamespace, plugins: Plugins, tmp_path: Path) -> None:
    out = tmp_path / "late.fits"
    parts = Path(f"{out}.parts")
    plan = plan_prediction(case.bundle, case.store, plugins)
    job = {
        "bundle": str(case.bundle),
        "weights_sha256": plan.bundle.card.weights.sha256,
        "store": str(case.store),
        "out": str(out),
        "columns": [asdict(c) for c in plan.columns],
        "n_parts": len(plan.chunks),
        "fingerprint": plan.fingerprint,
        "split": None,
        "split_spec": None,
        "device": "cpu",
        "mc_samples": None,
        "engine": "fast",
        "strict": False,
        "plugin_environ": predict_dask_module.plugin_environ(plugins),
        "torch_threads": None,
    }
    with open_catalogue(plan, out, overwrite=False) as writer:
        done = predict_part(job, 4)
        assert done["rows"] == CHUNK_ROWS and "error" not in done
        assert writer.done() == {4}
    # the run was interrupted (lock released, parts kept): a late task of it adds the part that run would write
    assert predict_part(job, 5)["rows"] == CHUNK_ROWS
    # a run with other inputs (here more Monte-Carlo passes) replaced the parts folder: late tasks write nothing
    other = plan_prediction(case.bundle, case.store, plugins, mc_samples=FEW_PASSES + 1)
    with open_catalogue(other, out, overwrite=True):
        late = predict_part(job, 6)
        assert late["chunk"] == 6 and "rows" not in late
        assert re.search(r"CatalogueError: .*late\.fits: part 6 not written: late\.fits\.parts is no longer the parts "
                         r"folder of the prediction that asked for it \(its _run\.json is missing or records other "
                         r"inputs\)", late["error"])  # fmt: skip
        assert list(parts.glob("part-*")) == []
    # finished or removed: nothing to write into
    shutil.rmtree(parts)
    assert "not written" in predict_part(job, 7)["error"] and not parts.exists()
    assert chunk_key("abc", 5) == "starlabel-predict-abc-000005"


# ---------------------------------------------------------------------------------------------- the CLI
@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Records what ``starlabel predict`` asks of the single-process and Dask predictions (which do not run)."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def fake(kind: str) -> Any:
        def run(bundle: str, store: str, out: str, plugins: Plugins, **options: Any) -> Any:
            seen.append((kind, options))
            return predict_module.PredictReport(Path(out), 0, 0, 0)

        return run

    monkeypatch.setattr(predict_module, "predict", fake("single"))
    monkeypatch.setattr(predict_dask_module, "predict_dask", fake("dask"))
    return seen


@pytest.mark.parametrize(
    ("extra", "before", "expected"),
    [
        ([], [], ("single", {})),
        (["--dask"], [], ("dask", {"address": "local", "workers": 2, "retries": 3})),
        (["--dask", "--quiet"], [], ("dask", {"address": "local", "workers": 2, "progress": False})),
        (
            ["--dask", "--workers", "3", "--retries", "0"],
            [],
            ("dask", {"address": "local", "workers": 3, "retries": 0}),
        ),
        (["--dask", "tcp://sched.example:8786"], [], ("dask", {"address": "tcp://sched.example:8786", "retries": 3})),
        ([], ["--dask=tcp://10.0.0.5:8786"], ("dask", {"address": "tcp://10.0.0.5:8786"})),
        (["--dask=local"], [], ("dask", {"address": "local"})),
    ],
)
def test_the_dask_flag_parses_alone_and_with_an_address(
    case: SimpleNamespace,
    plugins: Plugins,
    calls: list[tuple[str, dict[str, Any]]],
    tmp_path: Path,
    extra: list[str],
    before: list[str],
    expected: tuple[str, dict[str, Any]],
) -> None:
    args = [*before, str(case.bundle), "--store", str(case.store), "--out", str(tmp_path / "c.fits"), *extra]
    result = CliRunner().invoke(predict_command, args, obj=plugins)
    assert result.exit_code == 0, result.output
    kind, options = calls[-1]
    assert kind == expected[0]
    assert {k: options[k] for k in expected[1]} == expected[1]
    if kind == "single":
        assert "address" not in options and "workers" not in options
    assert (cli_learn.DASK_LOCAL, cli_learn.DASK_WORKERS, cli_learn.DASK_RETRIES) == (
        predict_dask_module.LOCAL,
        predict_dask_module.DEFAULT_WORKERS,
        predict_dask_module.DEFAULT_RETRIES,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "3"], "--workers applies to Dask runs only; add --dask"),
        (["--retries", "1"], "--retries applies to Dask runs only; add --dask"),
        (["--dask", "tcp://h:8786", "--workers", "3"], "--workers sizes the local cluster that --dask starts"),
        (["--dask", "--workers", "0"], "Invalid value for '--workers': 0 is not in the range x>=1"),
        (["--dask="], "Invalid value for '--dask': an empty scheduler address"),
    ],
)
def test_dask_options_that_make_no_sense_are_refused(
    case: SimpleNamespace,
    plugins: Plugins,
    calls: list[tuple[str, dict[str, Any]]],
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    base = [str(case.bundle), "--store", str(case.store), "--out", str(tmp_path / "c.fits")]
    result = CliRunner().invoke(predict_command, [*base, *args], obj=plugins)
    assert result.exit_code == 2 and message in result.output, result.output
    assert calls == []


def test_a_path_taken_for_the_scheduler_address_is_explained(
    case: SimpleNamespace, plugins: Plugins, calls: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    args = [str(case.bundle), "--store", str(case.store), "--out", str(tmp_path / "c.fits"), "--dask", str(case.store)]
    result = CliRunner().invoke(predict_command, args, obj=plugins)
    assert result.exit_code == 2 and "was taken as the scheduler address, but it is a path" in result.output
    assert calls == []


# ------------------------------------------------------------------------------------------ slow: kill -9
@pytest.mark.slow
def test_a_killed_dask_run_leaves_no_worker_behind_and_the_same_command_resumes_it(
    case: SimpleNamespace, plugins: Plugins, tmp_path: Path
) -> None:
    import subprocess

    import psutil

    passes = 300  # slow chunks: the run is killed with most of them to go
    reference = tmp_path / "single.fits"
    predict(case.bundle, case.store, reference, plugins, mc_samples=passes, progress=False)
    out = tmp_path / "resumed.fits"
    parts = Path(f"{out}.parts")
    command = [sys.executable, "-m", "starlabel", "predict", str(case.bundle), "--store", str(case.store), "--out",
               str(out), "--dask", "--quiet", "--mc-samples", str(passes)]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 300
        while len(list(parts.glob("part-*.npz"))) < 2:
            assert process.poll() is None, "the prediction ended before the kill point"
            assert time.monotonic() < deadline, "no part was written"
            time.sleep(0.02)
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert children, "the local cluster's worker processes were not found"

    def running(child: psutil.Process) -> bool:
        try:
            return child.is_running() and child.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + 60
    while any(running(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(running(c) for c in children), "worker processes outlived the killed prediction"
    written = len(list(parts.glob("part-*.npz")))
    assert 2 <= written < 30 and not out.exists()
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert finished.returncode == 0, finished.stderr
    assert re.search(rf"{ROWS} rows from 30 chunk\(s\) \((\d+) resumed\)", finished.stdout)
    assert int(re.search(r"\((\d+) resumed\)", finished.stdout).group(1)) >= written
    assert out.read_bytes() == reference.read_bytes()
    assert leftovers(out) == []
