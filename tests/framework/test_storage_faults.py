"""Storage faults: a read-only or full output location, or missing permissions.

Each gives a typed :class:`~starlabel.errors.StarlabelError` (``StoreError``, ``TrainingError``,
``BundleError``, ``CatalogueError``) whose message names the location, the file that failed, the reason
in words and what to do; the command line prints it as one paragraph and exits with code 2. Whatever a
failure leaves behind is never taken for a complete result (completion markers are checked on open),
and re-running the same command resumes it. Faults are injected at the Python I/O boundary
(:mod:`fault_helpers`), since tests often run as root, where ``chmod`` stops nothing; the ``chmod`` tests
run as well when the tests do not run as root.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import FaultyDisk
from learning_helpers import make_learning_store, write_descriptor
from toys import NpzPlugin, ToyPlugin, write_npz

from starlabel.bundle import BundleError, load_bundle, read_card
from starlabel.catalogue import CatalogueError, CatalogueWriter, Column, read_catalogue
from starlabel.cli import main
from starlabel.descriptor import load_descriptor
from starlabel.errors import StarlabelError, StorageError
from starlabel.ingest import ingest
from starlabel.plugins import Plugins, load_plugins
from starlabel.predict import predict
from starlabel.storage import describe_os_error, storage_errors
from starlabel.store import Store, StoreError
from starlabel.testing import assert_same_store
from starlabel.train import TrainingError, TrainOptions, train

QUIET = TrainOptions(progress=False)
RESUME_QUIET = TrainOptions(resume=True, progress=False)
FREE = "free some space on that disk or choose a location on another one"
WRITABLE = "choose a location on a writable file system"
ALLOWED = "choose a location you may write to, or ask for write permission on it"
AS_ROOT = os.name == "posix" and os.geteuid() == 0


# ------------------------------------------------------------------------------------------------ helpers
def test_storage_messages_name_the_place_the_reason_and_the_fix(tmp_path: Path) -> None:
    failed = tmp_path / "out" / "part.tmp"
    cases = {
        errno.EROFS: f"{tmp_path / 'out'}: cannot write a part: read-only file system ({failed}); {WRITABLE}",
        errno.EACCES: f"{tmp_path / 'out'}: cannot write a part: permission denied ({failed}); {ALLOWED}",
        errno.ENOSPC: f"{tmp_path / 'out'}: cannot write a part: no space left on device ({failed}); {FREE}",
        errno.EDQUOT: f"{tmp_path / 'out'}: cannot write a part: disk quota exceeded ({failed}); free some space "
        "within your quota or choose a location on another disk",
        errno.EIO: f"{tmp_path / 'out'}: cannot write a part: input/output error ({failed}); check the location and "
        "try again",
    }
    for code, expected in cases.items():
        error = OSError(code, os.strerror(code), str(failed))
        assert describe_os_error(error, tmp_path / "out", "write a part") == expected
    same = OSError(errno.ENOSPC, "No space left on device", str(tmp_path))
    assert (
        describe_os_error(same, tmp_path, "write", then="resume")
        == f"{tmp_path}: cannot write: no space left on device; {FREE}, then resume"
    )
    reading = OSError(errno.EACCES, "Permission denied", str(failed))
    assert describe_os_error(reading, failed, "read it", write=False).endswith(
        "permission denied; ask for read permission on it, or copy it to a place you may read"
    )


def test_storage_errors_types_chains_and_lets_starlabel_errors_through(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot write: no space left on device") as info:
        with storage_errors(tmp_path, "write", StoreError):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))
    assert info.value.os_errno == errno.ENOSPC and info.value.filename == str(tmp_path / "x")  # type: ignore[attr-defined]
    assert isinstance(info.value.__cause__, OSError) and info.value.exit_code == 2
    with pytest.raises(StorageError, match="permission denied"):
        with storage_errors(tmp_path, "write"):
            raise PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(CatalogueError, match="^as it was$"):
        with storage_errors(tmp_path, "write", StoreError):
            raise CatalogueError("as it was")


# ------------------------------------------------------------------------------------------------- ingest
GRID = 500.0 + 0.5 * np.arange(41)
INGEST_DESCRIPTOR = """\
schema_version: 1
name: toy_faults
instrument: {reader: toy_npz}
grid: {start: 500, stop: 520, step: 0.5}
auxiliary:
  - provider: table_columns
    name: phot
    options: {id_column: source_id, columns: {g: G}}
labels:
  source: table_labels
  columns: [teff]
  options: {id_column: source_id, columns: {teff: TEFF}, units: {teff: K}}
ingest: {chunk_rows: 16}
data: {root: ., spectra: "spec_*.npz", labels: "labels.csv", auxiliary: {phot: "labels.csv"}}
"""


@pytest.fixture
def ingest_plugins() -> Plugins:
    return load_plugins(
        builtins=("starlabel.defaults", "starlabel_tables.plugin"),
        entry_points=False,
        extra=[("toy", NpzPlugin()), ("toys", ToyPlugin())],
        environ={},
    )


def small_survey(folder: Path) -> Path:
    """Three files of 20 spectra, labels and photometry for every star; returns the descriptor."""
    rng = np.random.default_rng(5)
    ids = 1000 + np.arange(60)
    for f in range(3):
        flux = 1.0 - 0.4 * np.exp(-0.5 * ((GRID - 510.0) / 0.7) ** 2) + rng.normal(0, 0.01, (20, GRID.size))
        write_npz(folder / f"spec_{f}.npz", ids[20 * f : 20 * (f + 1)], GRID, flux, np.full(flux.shape, 0.01))
    lines = ["source_id,G,TEFF"] + [f"{i},{10 + (i % 7) * 0.5},{4000 + i}" for i in ids]
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    (folder / "survey.yaml").write_text(INGEST_DESCRIPTOR)
    return folder / "survey.yaml"


@pytest.mark.parametrize(
    ("code", "reason", "fix"),
    [(errno.EROFS, "read-only file system", WRITABLE), (errno.EACCES, "permission denied", ALLOWED)],
)
def test_ingest_into_a_read_only_or_forbidden_location(
    tmp_path: Path, ingest_plugins: Plugins, code: int, reason: str, fix: str
) -> None:
    resolved = load_descriptor(small_survey(tmp_path), ingest_plugins)
    (tmp_path / "ro").mkdir()
    store = tmp_path / "ro" / "store.zarr"
    with FaultyDisk.read_only(tmp_path / "ro", code), pytest.raises(StoreError) as info:
        ingest(resolved, ingest_plugins, store)
    assert str(info.value) == f"{store}: cannot create the store: {reason}; {fix}, then run the command again"
    assert not store.exists()  # nothing half-made is left in the way


def test_ingest_on_a_disk_that_fills_up_stays_incomplete_and_resumes(tmp_path: Path, ingest_plugins: Plugins) -> None:
    resolved = load_descriptor(small_survey(tmp_path), ingest_plugins)
    reference = tmp_path / "reference.zarr"
    with FaultyDisk.full(tmp_path / "counted") as counter:
        ingest(resolved, ingest_plugins, tmp_path / "counted" / "store.zarr")
    total = counter.writes
    assert total > 50
    ingest(resolved, ingest_plugins, reference)
    steps = set()
    # the Nth write fails: at creation, amid the rows (chunk files only), at the end, at the very last write
    for n, names in ((8, "*"), (5, "[0-9]*.partial"), (total - 8, "*"), (total - 1, "*")):
        store = tmp_path / f"full{n}" / "store.zarr"
        with FaultyDisk.full(store.parent, names=names, after_writes=n) as disk, pytest.raises(StoreError) as info:
            ingest(resolved, ingest_plugins, store)
        assert disk.failures >= 1
        message = str(info.value)
        assert message.startswith(f"{store}: cannot ") and f": no space left on device ({store}" in message, message
        assert FREE in message
        steps.add(message.split(": cannot ")[1].split(":")[0])
        if store.exists():  # the partial store is never taken for a complete one
            with pytest.raises(
                StoreError, match=r"store is incomplete \(its ingest did not finish: \d+ rows committed\)"
            ):
                Store.open(store)
            assert "re-run the same `starlabel ingest` command to resume" in message
        else:
            assert message.endswith("then run the command again")
        report = ingest(resolved, ingest_plugins, store)  # space again: the same command resumes
        assert report.rows == 60
        assert_same_store(reference, store)
    assert {"create the store", "write rows to the store", "mark the store complete"} <= steps, steps


# ---------------------------------------------------------------------------------------- train, predict
@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return load_plugins(entry_points=False)


@pytest.fixture(scope="module")
def learning(tmp_path_factory: pytest.TempPathFactory, plugins: Plugins) -> tuple[Path, Path, Path, Path]:
    """(descriptor, store of 4 chunks, bundle, folder holding the uninterrupted catalogue ``cat.fits``)."""
    folder = tmp_path_factory.mktemp("faults")
    descriptor = write_descriptor(folder, ensemble=1, epochs=1)
    store = make_learning_store(folder, 200, descriptor=descriptor, chunk_rows=64)
    bundle = folder / "bundle"
    train(load_descriptor(descriptor, plugins), plugins, store, bundle, QUIET)
    references = folder / "references"
    references.mkdir()
    predict(bundle, store, references / "cat.fits", plugins, progress=False)
    return descriptor, store, bundle, references


@pytest.mark.parametrize(
    ("code", "reason", "fix"),
    [(errno.EROFS, "read-only file system", WRITABLE), (errno.EACCES, "permission denied", ALLOWED)],
)
def test_train_into_a_read_only_or_forbidden_location(
    learning: tuple[Path, Path, Path, Path], plugins: Plugins, tmp_path: Path, code: int, reason: str, fix: str
) -> None:
    descriptor, store, _, _ = learning
    out = tmp_path / "ro" / "bundle"
    out.parent.mkdir()
    with FaultyDisk.read_only(out.parent, code), pytest.raises(TrainingError) as info:
        train(load_descriptor(descriptor, plugins), plugins, store, out, QUIET)
    assert str(info.value) == (
        f"{out}: cannot prepare the training folder: {reason} ({out / '_work'}); {fix}, then run the command again"
    )


def test_train_on_a_disk_that_fills_up_leaves_no_bundle_and_resumes(
    learning: tuple[Path, Path, Path, Path], plugins: Plugins, tmp_path: Path
) -> None:
    descriptor, store, reference, _ = learning
    resolved = load_descriptor(descriptor, plugins)
    out = tmp_path / "bundle"
    # the disk is full when the first checkpoint is written
    with FaultyDisk.full(out, names="state.safetensors", after_writes=0), pytest.raises(TrainingError) as info:
        train(resolved, plugins, store, out, QUIET)
    checkpoint = out / "_work" / "member0" / "epoch-0000.tmp"
    assert str(info.value) == (
        f"{out}: cannot write the checkpoint of member 0, epoch 0: no space left on device "
        f"({checkpoint / 'state.safetensors'}); {FREE}, then re-run the same `starlabel train` command with --resume "
        "to continue from the last checkpoint"
    )
    assert not checkpoint.exists()  # the half-written checkpoint is removed, freeing its space
    with pytest.raises(
        BundleError, match=r"no card.json\); its training did not finish; re-run `starlabel train \.\.\. --resume`"
    ):
        read_card(out)
    # ... then when the bundle's weights, or its card, are written
    for name in ("weights.safetensors.tmp", "card.json.tmp"):
        with FaultyDisk.full(out, names=name, after_writes=0), pytest.raises(BundleError) as info:
            train(resolved, plugins, store, out, RESUME_QUIET)
        assert str(info.value) == (
            f"{out}: cannot write the model bundle: no space left on device ({out / name}); {FREE}, then re-run the "
            "same `starlabel train ... --resume` command to write it (the trained members are kept)"
        )
        assert not (out / "card.json").exists() and not (out / name).exists()
        with pytest.raises(BundleError, match=r"not a model bundle \(no card.json\); its training did not finish"):
            load_bundle(out, plugins)
    report = train(resolved, plugins, store, out, RESUME_QUIET)
    assert report.resumed_members == [0]
    # the same weights as a run that never met a full disk
    assert (out / "weights.safetensors").read_bytes() == (reference / "weights.safetensors").read_bytes()
    assert len(load_bundle(out, plugins).members) == 1


@pytest.mark.parametrize(
    ("code", "reason", "fix"),
    [(errno.EROFS, "read-only file system", WRITABLE), (errno.EACCES, "permission denied", ALLOWED)],
)
def test_predict_into_a_read_only_or_forbidden_location(
    learning: tuple[Path, Path, Path, Path], plugins: Plugins, tmp_path: Path, code: int, reason: str, fix: str
) -> None:
    _, store, bundle, _ = learning
    out = tmp_path / "ro" / "cat.fits"
    out.parent.mkdir()
    with FaultyDisk.read_only(out.parent, code), pytest.raises(CatalogueError) as info:
        predict(bundle, store, out, plugins, progress=False)
    assert str(info.value) == f"{out}: cannot take the lock cat.fits.lock: {reason} ({out}.lock); {fix}"
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("suffix", ["fits", "parquet"])
def test_predict_with_a_full_disk_keeps_its_parts_and_resumes(
    learning: tuple[Path, Path, Path, Path], plugins: Plugins, tmp_path: Path, suffix: str
) -> None:
    _, store, bundle, references = learning
    out = tmp_path / f"cat.{suffix}"
    parts = Path(f"{out}.parts")
    resume = "then re-run the same prediction to resume it (the parts written so far are kept)"
    # the disk fills up while writing part 2
    with FaultyDisk.full(tmp_path, names=".part-000002.npz.*", after_writes=0), pytest.raises(CatalogueError) as info:
        predict(bundle, store, out, plugins, progress=False)
    message = str(info.value)
    assert message.startswith(
        f"{out}: cannot write catalogue part 2: no space left on device ({parts}/.part-000002.npz."
    )
    assert message.endswith(f".tmp); {FREE}, {resume}")
    assert not out.exists() and not Path(f"{out}.lock").exists()
    assert sorted(p.name for p in parts.iterdir()) == ["_run.json", "part-000000.npz", "part-000001.npz"]
    # ... then while assembling the catalogue from its parts
    with FaultyDisk.full(tmp_path, names=f"cat.{suffix}.tmp", after_bytes=4000), pytest.raises(CatalogueError) as info:
        predict(bundle, store, out, plugins, progress=False)
    assert (
        str(info.value)
        == f"{out}: cannot assemble the catalogue: no space left on device ({out}.tmp); {FREE}, {resume}"
    )
    assert not out.exists() and not Path(f"{out}.tmp").exists()  # no partial file where a catalogue would be
    assert len(list(parts.glob("part-*.npz"))) == 4
    with pytest.raises(CatalogueError, match="the parts folder of an unfinished prediction, not a catalogue"):
        read_catalogue(parts)
    report = predict(bundle, store, out, plugins, progress=False)
    assert report.resumed_chunks == 4 and not parts.exists()
    if suffix == "fits":  # FITS holds no date, so a resumed catalogue is byte-identical
        assert out.read_bytes() == (references / "cat.fits").read_bytes()
    got, expected = read_catalogue(out)[0], read_catalogue(references / "cat.fits")[0]
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_the_command_line_prints_one_paragraph_and_exits_2(
    learning: tuple[Path, Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    descriptor, store, bundle, _ = learning
    ro = tmp_path / "ro"
    ro.mkdir()
    commands = {
        "predict": ["predict", str(bundle), "--store", str(store), "--out", str(ro / "cat.fits"), "--quiet"],
        "train": ["train", str(descriptor), "--store", str(store), "--out", str(ro / "bundle"), "--quiet"],
    }
    for name, args in commands.items():
        with FaultyDisk.read_only(ro), pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2, name
        err = capsys.readouterr().err
        assert err.startswith(f"starlabel: error: {ro}") and ": read-only file system (" in err, err
        assert err.count("\n") == 1 and "Traceback" not in err, err


# ----------------------------------------------------------------------------------- real permissions
@pytest.mark.skipif(
    AS_ROOT, reason="running as root: chmod does not stop root from writing (the injected faults above cover it)"
)
def test_a_folder_without_write_permission(
    learning: tuple[Path, Path, Path, Path], plugins: Plugins, tmp_path: Path, ingest_plugins: Plugins
) -> None:
    descriptor, store, bundle, _ = learning
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this file system ignores permissions")
        with pytest.raises(
            CatalogueError,
            match=f"^{re.escape(str(locked / 'cat.fits'))}: cannot take the lock cat.fits.lock: permission denied",
        ):
            predict(bundle, store, locked / "cat.fits", plugins, progress=False)
        with pytest.raises(
            TrainingError,
            match=f"^{re.escape(str(locked / 'b'))}: cannot prepare the training folder: permission denied",
        ):
            train(load_descriptor(descriptor, plugins), plugins, store, locked / "b", QUIET)
        resolved = load_descriptor(small_survey(tmp_path), ingest_plugins)
        with pytest.raises(
            StoreError, match=f"^{re.escape(str(locked / 's.zarr'))}: cannot create the store: permission denied"
        ):
            ingest(resolved, ingest_plugins, locked / "s.zarr")
    finally:
        locked.chmod(0o755)


# ---------------------------------------------------------------------------------- completion markers
def test_an_incomplete_store_is_refused_on_open(tmp_path: Path) -> None:
    from starlabel.store import StoreLayout

    store = Store.create(
        tmp_path / "s.zarr",
        StoreLayout(5, "int", {}, {}),
        descriptor={"name": "x"},
        descriptor_hash="h",
        grid={},
        plugins={},
    )
    store.write_progress({"rows": 3})
    with pytest.raises(
        StoreError, match=r"s.zarr: store is incomplete \(its ingest did not finish: 3 rows committed\); re-run"
    ):
        Store.open(tmp_path / "s.zarr")
    assert not Store.open(tmp_path / "s.zarr", allow_incomplete=True).complete
    (tmp_path / "s.zarr" / "_progress.json").write_text("{damaged")
    with pytest.raises(StoreError, match=r"_progress.json: the progress record of this unfinished store is damaged"):
        Store.open(tmp_path / "s.zarr", allow_incomplete=True).read_progress()
    with pytest.raises(StoreError, match="incomplete"):  # a damaged record never makes a store look complete
        Store.open(tmp_path / "s.zarr")


def _catalogue(path: Path, n_parts: int = 2) -> Path:
    columns = [Column("source_id", "int64"), Column("teff", "float32", "K")]
    with CatalogueWriter(path, columns, n_parts=n_parts, fingerprint={"run": 1}) as writer:
        for part in range(n_parts):
            writer.write_part(part, {"source_id": np.arange(500) + 500 * part, "teff": np.full(500, 5000.0)})
        writer.finish()
    return path


@pytest.mark.parametrize("suffix", ["fits", "parquet"])
def test_what_an_unfinished_prediction_leaves_is_never_read_as_a_catalogue(tmp_path: Path, suffix: str) -> None:
    whole = _catalogue(tmp_path / f"whole.{suffix}")
    data = whole.read_bytes()
    assert len(read_catalogue(whole)[0]["source_id"]) == 1000
    # the file being assembled (a finish() interrupted by a kill, before the rename)
    tmp = tmp_path / f"cat.{suffix}.tmp"
    tmp.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        CatalogueError, match=rf"cat.{suffix}.tmp: a catalogue being assembled .*, not a finished catalogue; re-run"
    ):
        read_catalogue(tmp)
    # the parts folder
    parts = tmp_path / f"cat.{suffix}.parts"
    parts.mkdir()
    with pytest.raises(
        CatalogueError,
        match=rf"the parts folder of an unfinished prediction, not a catalogue; re-run that prediction .*--out {re.escape(str(tmp_path / f'cat.{suffix}'))}",
    ):
        read_catalogue(parts)
    with pytest.raises(CatalogueError, match="is a folder, not a catalogue file"):
        read_catalogue(tmp_path)
    # a truncated copy, at a block boundary and anywhere
    expected = "truncated FITS file" if suffix == "fits" else "not a readable Parquet file"
    for cut in (len(data) - 2880, len(data) // 2, len(data) - 1, 3000, 100):
        short = tmp_path / f"short.{suffix}"
        short.write_bytes(data[:cut])
        with pytest.raises(CatalogueError, match=expected):
            read_catalogue(short)


@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning")
@pytest.mark.parametrize(
    "card",
    [b"NAXIS1  =                    3", b"NAXIS2  =                 9999", b"XTENSION= 'IMAGE   '           "],
    ids=["row width", "NAXIS1 lost", "not a table"],
)
def test_a_damaged_fits_catalogue_gives_a_catalogue_error(tmp_path: Path, card: bytes) -> None:
    data = bytearray(_catalogue(tmp_path / "whole.fits").read_bytes())
    at = data.index(card[:8], 2880) if not card.startswith(b"NAXIS2") else data.index(b"NAXIS1  =", 2880)
    data[at : at + len(card)] = card
    damaged = tmp_path / "damaged.fits"
    damaged.write_bytes(bytes(data))
    with pytest.raises(CatalogueError, match=r"damaged.fits: (not a readable FITS file|no binary table extension)"):
        read_catalogue(damaged)


def test_cleanup_of_fault_injection_leaves_the_disk_usable(tmp_path: Path) -> None:
    """The injector undoes its patches: after it, the same writes succeed."""
    with FaultyDisk.read_only(tmp_path), pytest.raises(OSError, match="Read-only file system"):
        (tmp_path / "x").write_text("no")
    (tmp_path / "x").write_text("yes")
    shutil.rmtree(tmp_path / "x", ignore_errors=True)
    assert (tmp_path / "x").read_text() == "yes"
    assert isinstance(CatalogueError("x"), StarlabelError)
