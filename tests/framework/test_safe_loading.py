"""Safe loading: a bundle or a checkpoint is data, never code.

Weights are read only with safetensors and cards only with json; nothing in a bundle folder is unpickled
or even opened besides ``card.json`` and ``weights.safetensors``. A pickle payload put in a bundle (as
the weights, with or without the card's hash edited to match, or beside them as ``model.pt``) is
refused or ignored without running: the payload would create a file, which must never appear. A card
that is damaged, edited or inconsistent with the weights raises :class:`BundleError` naming the problem,
never a raw exception. A damaged checkpoint of an interrupted training run raises
:class:`TrainingError` telling the user to start again with ``--overwrite``.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import pickle
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from learning_helpers import make_learning_store, write_descriptor

from starlabel.bundle import CARD_FILE, WEIGHTS_FILE, BundleError, load_bundle, read_card
from starlabel.descriptor import load_descriptor
from starlabel.errors import StarlabelError
from starlabel.plugins import Plugins, load_plugins
from starlabel.predict import predict
from starlabel.train import TrainingError, TrainOptions, train

QUIET = TrainOptions(progress=False)


class Payload:
    """Unpickling this creates ``marker``: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (builtins.open, (self.marker, "w"))


def raw_pickle(marker: Path) -> bytes:
    """A plain pickle whose loading creates ``marker``."""
    return pickle.dumps({"member0.trunk.0.weight": Payload(marker)})


def torch_pickle(path: Path, marker: Path) -> Path:
    """A ``torch.save`` file (zip of pickles) whose loading creates ``marker``."""
    torch.save({"member0.head.weight": torch.zeros(2, 2), "extra": Payload(marker)}, path)
    return path


# --------------------------------------------------------------------------------------------- auditing
_SEEN: list[tuple[str, Any]] | None = None
_HOOKED = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _SEEN is not None and event in ("open", "pickle.find_class"):
        _SEEN.append((event, args[0] if event == "open" else args))


@contextmanager
def audited() -> Iterator[list[tuple[str, Any]]]:
    """The Python-level file opens and pickle class look-ups made inside the block.

    The audit hook stays installed for the rest of the session (hooks cannot be removed) but records
    nothing outside this block.
    """
    global _SEEN, _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED = True
    seen: list[tuple[str, Any]] = []
    _SEEN = seen
    try:
        yield seen
    finally:
        _SEEN = None


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return load_plugins(entry_points=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, plugins: Plugins) -> tuple[Path, Path, Path]:
    """A 2-member bundle trained for one epoch on 200 stars: (descriptor, store, bundle)."""
    folder = tmp_path_factory.mktemp("safe")
    descriptor = write_descriptor(folder, ensemble=2, epochs=1)
    store = make_learning_store(folder, 200, descriptor=descriptor, chunk_rows=100)
    bundle = folder / "bundle"
    train(load_descriptor(descriptor, plugins), plugins, store, bundle, QUIET)
    return descriptor, store, bundle


def copy_bundle(bundle: Path, tmp_path: Path, name: str = "bundle") -> Path:
    target = tmp_path / name
    shutil.copytree(bundle, target)
    return target


def edit_card(bundle: Path, edit: Callable[[dict[str, Any]], None], *, rehash: bool = False) -> None:
    """Apply ``edit`` to the card's JSON; ``rehash`` also records the weights' current SHA-256 in it."""
    card = json.loads((bundle / CARD_FILE).read_text())
    edit(card)
    if rehash:
        card["weights"]["sha256"] = hashlib.sha256((bundle / WEIGHTS_FILE).read_bytes()).hexdigest()
    (bundle / CARD_FILE).write_text(json.dumps(card))


def refused(bundle: Path, plugins: Plugins, match: str) -> BundleError:
    """``load_bundle`` raises a BundleError matching ``match`` (and nothing else)."""
    with pytest.raises(BundleError, match=match) as info:
        load_bundle(bundle, plugins)
    return info.value


# ------------------------------------------------------------------------------------------ pickles
def test_a_pickle_as_weights_is_refused_without_running(
    trained: tuple[Path, Path, Path], plugins: Plugins, tmp_path: Path
) -> None:
    _, _, source = trained
    marker = tmp_path / "pwned"
    for kind in ("raw", "torch"):
        bundle = copy_bundle(source, tmp_path, kind)
        weights = bundle / WEIGHTS_FILE
        if kind == "raw":
            weights.write_bytes(raw_pickle(marker))
        else:
            torch_pickle(weights, marker)
        # the card's hash protects the weights
        refused(
            bundle,
            plugins,
            r"weights.safetensors: SHA-256 \w+… does not match the card's \w+…; the weights were changed",
        )
        # with the hash edited to match, safetensors cannot parse a pickle
        edit_card(bundle, lambda card: None, rehash=True)
        with audited() as seen:
            error = refused(
                bundle,
                plugins,
                r"weights.safetensors: not a readable safetensors file \(.*header.*\); only safetensors weights are "
                r"loaded \(never pickles\)",
            )
        assert not any(event == "pickle.find_class" for event, _ in seen), seen
        assert isinstance(error, StarlabelError) and error.exit_code == 2
    assert not marker.exists()
    # the payload is live: unpickling it (which starlabel never does) would have created the marker
    pickle.loads(raw_pickle(marker))
    assert marker.exists()


def test_predict_refuses_a_pickle_bundle_from_the_command_line(
    trained: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from starlabel.cli import main

    _, store, source = trained
    bundle = copy_bundle(source, tmp_path)
    marker = tmp_path / "pwned"
    torch_pickle(bundle / WEIGHTS_FILE, marker)
    out = tmp_path / "cat.fits"
    args = ["predict", str(bundle), "--store", str(store), "--out", str(out), "--quiet"]
    for rehash, expected in ((False, "SHA-256"), (True, "not a readable safetensors file")):
        edit_card(bundle, lambda card: None, rehash=rehash)
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, err
        assert err.startswith(f"starlabel: error: {bundle / WEIGHTS_FILE}: ") and expected in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert not marker.exists() and not out.exists() and not Path(str(out) + ".parts").exists()


def test_pickle_files_beside_the_weights_are_never_opened(
    trained: tuple[Path, Path, Path], plugins: Plugins, tmp_path: Path
) -> None:
    _, _, source = trained
    bundle = copy_bundle(source, tmp_path)
    marker = tmp_path / "pwned"
    extras = [bundle / "model.pt", bundle / "pytorch_model.bin", bundle / "weights.pkl", bundle / "optimizer.pt"]
    torch_pickle(extras[0], marker)
    torch_pickle(extras[1], marker)
    extras[2].write_bytes(raw_pickle(marker))
    extras[3].write_bytes(raw_pickle(marker))
    with audited() as seen:
        loaded = load_bundle(bundle, plugins)
    assert len(loaded.members) == 2
    opened = {str(path) for event, path in seen if event == "open" and isinstance(path, str | Path)}
    assert not opened & {str(p) for p in extras}, opened
    assert str(bundle / CARD_FILE) in opened
    assert not any(event == "pickle.find_class" for event, _ in seen)
    assert not marker.exists()


def test_the_card_cannot_point_the_weights_at_another_file(
    trained: tuple[Path, Path, Path], plugins: Plugins, tmp_path: Path
) -> None:
    _, _, source = trained
    bundle = copy_bundle(source, tmp_path)
    marker = tmp_path / "pwned"
    torch_pickle(bundle / "model.pt", marker)

    def point(card: dict[str, Any]) -> None:
        card["weights"]["file"] = "model.pt"

    edit_card(bundle, point)
    error = refused(
        bundle, plugins, r"card.json: not a valid model card: weights.file: Input should be 'weights.safetensors'"
    )
    with pytest.raises(BundleError, match="weights.file"):
        read_card(bundle)
    assert "the card is damaged" in str(error) and not marker.exists()


# --------------------------------------------------------------------------------------- tampered cards
def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit setting the dotted ``path`` of the card to ``value``."""

    def edit(card: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = card
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(card: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = card
        for key in parents:
            node = node[key]
        del node[last]

    return edit


def _add_label(card: dict[str, Any]) -> None:
    """A third label, added consistently everywhere in the card: only the weights can tell."""
    card["input_spec"]["labels"].append("logg")
    norm = card["normalisation"]
    norm["label_names"].append("logg")
    norm["label_units"]["logg"] = "dex"
    norm["label_mean"].append(4.0)
    norm["label_std"].append(0.5)
    coverage = card["coverage"]
    coverage["names"].append("logg")
    coverage["lo"].append(3.0)
    coverage["hi"].append(5.0)
    coverage["percentiles"]["logg"] = coverage["percentiles"]["teff"]


TAMPERS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown key": (_set("loader", "torch.load"), r"not a valid model card: loader: Extra inputs are not permitted"),
    "unknown nested key": (
        _set("weights.pickle", True),
        r"not a valid model card: weights.pickle: Extra inputs are not permitted",
    ),
    "missing key": (_drop("normalisation"), r"not a valid model card: normalisation: Field required"),
    "wrong type": (_set("members", "two"), r"not a valid model card: members: Input should be a valid integer"),
    "no members": (_set("members", 0), r"members: Input should be greater than or equal to 1"),
    "bad hash": (_set("weights.sha256", "abc"), r"weights.sha256: String should match pattern"),
    "other hash": (_set("weights.sha256", "0" * 64), r"SHA-256 \w+… does not match the card's 0000000000000000…"),
    "future format": (
        _set("format_version", 7),
        r"bundle format version 7 is newer than this starlabel reads \(1\); upgrade starlabel",
    ),
    "text format version": (_set("format_version", "1"), r"format_version: Input should be a valid integer"),
    "other format": (_set("format", "pytorch"), r"not a starlabel-bundle card \(format 'pytorch'\)"),
    "unknown architecture": (
        _set("architecture.name", "hybrid_cnx"),
        r"card.json: the model needs unknown architecture 'hybrid_cnx'\. Did you mean hybrid_cnn\? Available: .*"
        r"hybrid_cnn.*; install the plugin that provides it",
    ),
    "unknown option": (
        _set("architecture.options.exec", "rm -rf /"),
        r"architecture.options are not valid options of hybrid_cnn: exec: Extra inputs are not permitted",
    ),
    "invalid option": (
        _set("architecture.options.kernel_size", 4),
        r"architecture.options are not valid options of hybrid_cnn: kernel_size: Value error, kernel_size must be odd",
    ),
    "other layer width": (
        _set("architecture.options.conv_filters", [8, 32]),
        r"bundle: member 0 does not fit architecture hybrid_cnn with the card's options and input_spec: "
        r"size mismatch for .*; the card and the weights do not belong together",
    ),
    "other arm pixels": (
        _set("input_spec.arm_pixels", [80]),
        r"transform.arm_pixels \[81\] differ from input_spec.arm_pixels \[80\]; the input transform in the weights "
        r"has \(81,\) pixels",
    ),
    "other aux count": (_set("input_spec.n_aux", 4), r"input_spec.n_aux is 4, the 1 aux columns give 2"),
    "labels of the spec only": (
        _set("input_spec.labels", ["teff", "logg"]),
        r"input_spec.labels \['teff', 'logg'\] differ from normalisation.label_names \['teff', 'm_h'\]",
    ),
    "a label everywhere": (
        _add_label,
        r"member 0 does not fit architecture hybrid_cnn .*size mismatch for .*torch.Size\(\[2",
    ),
    "short label mean": (
        _set("normalisation.label_mean", [5000.0]),
        r"normalisation.label_mean has 1 values for 2 labels",
    ),
    "long aux std": (
        _set("normalisation.aux_std", [1.0, 1.0]),
        r"normalisation.aux_std has 2 values for 1 aux columns",
    ),
    "zero label std": (
        _set("normalisation.label_std", [0.0, 1.0]),
        r"normalisation.label_std must be finite and positive",
    ),
    "unit of no label": (
        _set("normalisation.label_units", {"teff": "K"}),
        r"normalisation.label_units names \['teff'\]",
    ),
    "other aux columns": (
        _set("transform.aux_columns", ["phot.c9"]),
        r"transform.aux_columns \['phot.c9'\] differ from normalisation.aux_columns \['phot.c1'\]",
    ),
    "flux scale": (_set("transform.flux_scale", -1), r"transform.flux_scale must be a finite positive number, got -1"),
    "more members": (_set("members", 3), r"the card says 3 member\(s\), the weights hold 2 \(member0, member1\)"),
    "fewer members": (_set("members", 1), r"the card says 1 member\(s\), the weights hold 2 \(member0, member1\)"),
    "ood threshold": (_set("ood.threshold", 0.0), r"ood.threshold must be a finite positive number, got 0.0"),
    "no ood": (_set("ood", None), r"the weights hold an input-coverage model \(ood\.\*\) but the card's ood is null"),
    "coverage of other labels": (
        _set("coverage.names", ["m_h", "teff"]),
        r"coverage.names \['m_h', 'teff'\] differ from the labels \['teff', 'm_h'\]",
    ),
    "damaged coverage": (_drop("coverage.lo"), r"the input transform or coverage does not fit the weights: .*lo"),
    "split without seed": (_drop("split.seed"), r"split: Value error, must hold exactly seed, train, valid and test"),
    "descriptor without hash": (
        _drop("descriptor.hash"),
        r"descriptor: Value error, must hold exactly 'name' and 'hash'",
    ),
    "no training options": (_drop("training.options"), r"training: Value error, must hold the training 'options'"),
    "zero mc samples": (
        _set("training.options.mc_samples", 0),
        r"training: Value error, options.mc_samples must be a positive integer, got 0",
    ),
    "variance head claimed": (
        _set("heteroscedastic", True),
        r"heteroscedastic is true but architecture hybrid_cnn with these options has no variance head",
    ),
    "mc dropout claimed": (_set("mc_dropout", True), r"mc_dropout is true but architecture hybrid_cnn"),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_a_tampered_card_is_refused_with_a_clear_error(
    trained: tuple[Path, Path, Path], plugins: Plugins, tmp_path: Path, tamper: str
) -> None:
    _, _, source = trained
    bundle = copy_bundle(source, tmp_path)
    edit, match = TAMPERS[tamper]
    edit_card(bundle, edit)
    error = refused(bundle, plugins, match)
    assert str(error).startswith(str(bundle)), error
    assert error.exit_code == 2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", r"card.json: not valid JSON \(.*\); the card is damaged"),
        ("", r"card.json: not valid JSON"),
        (b"\xff\xfe{}", r"card.json: not valid JSON"),
        ("[1, 2]", r"card.json: not a starlabel-bundle card \(a JSON list, not an object\)"),
        ('"starlabel-bundle"', r"a JSON str, not an object"),
        ("{}", r"not a starlabel-bundle card \(format None\)"),
    ],
)
def test_a_card_that_is_not_a_card_is_refused(
    trained: tuple[Path, Path, Path], plugins: Plugins, tmp_path: Path, text: str | bytes, match: str
) -> None:
    _, _, source = trained
    bundle = copy_bundle(source, tmp_path)
    if isinstance(text, bytes):
        (bundle / CARD_FILE).write_bytes(text)
    else:
        (bundle / CARD_FILE).write_text(text)
    refused(bundle, plugins, match)


def test_weights_that_are_safetensors_of_another_model_are_refused(
    trained: tuple[Path, Path, Path], plugins: Plugins, tmp_path: Path
) -> None:
    from safetensors.numpy import load_file, save_file

    _, _, source = trained
    bundle = copy_bundle(source, tmp_path)
    tensors = load_file(str(bundle / WEIGHTS_FILE))
    # one member dropped, an unknown tensor added, the hash updated: a well-formed file that does not fit
    kept = {k: v for k, v in tensors.items() if not k.startswith("member1.")} | {"payload.code": np.zeros(3, np.uint8)}
    save_file(kept, str(bundle / WEIGHTS_FILE))
    edit_card(bundle, lambda card: None, rehash=True)
    refused(
        bundle,
        plugins,
        r"the card says 2 member\(s\), the weights hold 1 \(member0\); the weights hold tensors of no known part: "
        r"payload.code",
    )
    # a member tensor of the wrong shape
    tensors[
        "member1.head.0.weight"
        if "member1.head.0.weight" in tensors
        else sorted(k for k in tensors if k.startswith("member1."))[0]
    ] = np.zeros((1, 1), np.float32)
    save_file(tensors, str(bundle / WEIGHTS_FILE))
    edit_card(bundle, lambda card: None, rehash=True)
    refused(bundle, plugins, r"member 1 does not fit architecture hybrid_cnn .*size mismatch")
    # no input transform
    save_file(
        {k: v for k, v in load_file(str(source / WEIGHTS_FILE)).items() if not k.startswith("inputs.")},
        str(bundle / WEIGHTS_FILE),
    )
    edit_card(bundle, lambda card: None, rehash=True)
    refused(bundle, plugins, r"the weights hold no input transform \(inputs.pixels, inputs.flux_mean\)")


def test_an_unfinished_bundle_is_refused_with_the_resume_hint(
    trained: tuple[Path, Path, Path], plugins: Plugins, tmp_path: Path
) -> None:
    _, _, source = trained
    bundle = copy_bundle(source, tmp_path)
    (bundle / CARD_FILE).unlink()
    refused(bundle, plugins, r"not a model bundle \(no card.json\); make one with `starlabel train`")
    (bundle / "_work").mkdir()
    refused(
        bundle,
        plugins,
        r"not a model bundle \(no card.json\); its training did not finish; re-run `starlabel train \.\.\. --resume`",
    )
    shutil.copy(source / CARD_FILE, bundle / CARD_FILE)
    (bundle / WEIGHTS_FILE).unlink()
    refused(bundle, plugins, r"weights file weights.safetensors is missing; the bundle is incomplete")


def test_the_untampered_bundle_loads(trained: tuple[Path, Path, Path], plugins: Plugins) -> None:
    _, _, bundle = trained
    loaded = load_bundle(bundle, plugins)
    assert len(loaded.members) == 2 and loaded.labels == ["teff", "m_h"] and loaded.ood is not None


# ------------------------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory, plugins: Plugins) -> tuple[Path, Path, Path]:
    """A run killed right after member 1's first checkpoint: member 0 finished, member 1 has epoch-0000."""
    import starlabel.train as train_module

    folder = tmp_path_factory.mktemp("ckpt")
    descriptor = write_descriptor(folder, ensemble=2, epochs=1)
    store = make_learning_store(folder, 200, descriptor=descriptor, chunk_rows=100)
    out = folder / "run"
    real, calls = train_module.save_checkpoint, {"n": 0}

    def dying(*args: Any, **kwargs: Any) -> Path:
        path = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:  # member 1, epoch 0: killed once its checkpoint is in place
            raise KeyboardInterrupt
        return path

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "save_checkpoint", dying)
        with pytest.raises(KeyboardInterrupt):
            train(load_descriptor(descriptor, plugins), plugins, store, out, QUIET)
    work = out / "_work"
    assert (work / "member0" / "final.json").is_file() and (work / "member1" / "epoch-0000" / "state.json").is_file()
    return descriptor, store, out


def _checkpoint_tampers(marker: Path) -> dict[str, tuple[str, Callable[[Path], None], str]]:
    def replace_bytes(data: bytes) -> Callable[[Path], None]:
        return lambda path: path.write_bytes(data)

    def truncate(path: Path) -> None:
        path.write_bytes(path.read_bytes()[:100])

    def drop_model_tensor(path: Path) -> None:
        from safetensors.torch import load_file, save_file

        tensors = load_file(str(path))
        del tensors[sorted(k for k in tensors if k.startswith("model."))[0]]
        save_file(tensors, str(path))

    def edit_json(**changes: Any) -> Callable[[Path], None]:
        def edit(path: Path) -> None:
            record = json.loads(path.read_text())
            record.update(changes)
            path.write_text(json.dumps(record))

        return edit

    def other_param_groups(path: Path) -> None:
        record = json.loads(path.read_text())
        record["optimizer"]["param_groups"][0]["params"] = [0, 1]
        path.write_text(json.dumps(record))

    state = "member1/epoch-0000/state"
    return {
        "pickle as state.safetensors": (f"{state}.safetensors", replace_bytes(raw_pickle(marker)), r"header"),
        "truncated state.safetensors": (f"{state}.safetensors", truncate, r"SafetensorError"),
        "state of another model": (f"{state}.safetensors", drop_model_tensor, r"RuntimeError: .*Missing key"),
        "state.json not JSON": (f"{state}.json", replace_bytes(b"{oops"), r"JSONDecodeError"),
        "state.json a pickle": (
            f"{state}.json",
            replace_bytes(raw_pickle(marker)),
            r"UnicodeDecodeError|JSONDecodeError",
        ),
        "state.json epoch text": (
            f"{state}.json",
            edit_json(epoch="0"),
            r"epoch is missing or of the wrong type \('0'\)",
        ),
        "state.json no optimizer": (f"{state}.json", edit_json(optimizer=None), r"optimizer is missing"),
        "state.json other param groups": (f"{state}.json", other_param_groups, r"ValueError"),
    }


CHECKPOINT_TAMPERS = list(_checkpoint_tampers(Path("unused")))


@pytest.mark.parametrize("tamper", CHECKPOINT_TAMPERS)
def test_a_damaged_checkpoint_stops_resume_with_a_typed_error(
    interrupted: tuple[Path, Path, Path], plugins: Plugins, tmp_path: Path, tamper: str
) -> None:
    descriptor, store, source = interrupted
    out = tmp_path / "run"
    shutil.copytree(source, out)
    marker = tmp_path / "pwned"
    name, damage, detail = _checkpoint_tampers(marker)[tamper]
    damage(out / "_work" / name)
    checkpoint = out / "_work" / "member1" / "epoch-0000"
    with pytest.raises(
        TrainingError,
        match=rf"^{re.escape(str(checkpoint))}: damaged checkpoint \(.*({detail}).*\); the interrupted run at "
        rf"{re.escape(str(out))} cannot be resumed from it: use --overwrite to start it again$",
    ):
        train(load_descriptor(descriptor, plugins), plugins, store, out, TrainOptions(resume=True, progress=False))
    assert not marker.exists() and not (out / CARD_FILE).exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("run.json", b"{broken"),
        ("run.json", b"[]"),
        ("inputs.json", b"{}"),
        ("inputs.safetensors", b"\x80\x04junk"),
        ("member0/final.json", b"{broken"),
    ],
)
def test_damaged_files_of_an_interrupted_run_stop_resume_with_a_typed_error(
    interrupted: tuple[Path, Path, Path], plugins: Plugins, tmp_path: Path, name: str, content: bytes
) -> None:
    descriptor, store, source = interrupted
    out = tmp_path / "run"
    shutil.copytree(source, out)
    (out / "_work" / name).write_bytes(content)
    with pytest.raises(
        TrainingError,
        match=rf"_work/{name}: a damaged file of the interrupted training run at {re.escape(str(out))} .*use --overwrite "
        "to start it again",
    ):
        train(load_descriptor(descriptor, plugins), plugins, store, out, TrainOptions(resume=True, progress=False))


def test_an_intact_interrupted_run_resumes(
    interrupted: tuple[Path, Path, Path], plugins: Plugins, tmp_path: Path
) -> None:
    descriptor, store, source = interrupted
    out = tmp_path / "run"
    shutil.copytree(source, out)
    report = train(load_descriptor(descriptor, plugins), plugins, store, out, TrainOptions(resume=True, progress=False))
    assert report.resumed_members == [0, 1]
    assert len(load_bundle(out, plugins).members) == 2


def test_predict_never_unpickles(trained: tuple[Path, Path, Path], plugins: Plugins, tmp_path: Path) -> None:
    """An untampered bundle predicts without a single pickle class look-up."""
    _, store, bundle = trained
    with audited() as seen:
        predict(bundle, store, tmp_path / "cat.parquet", plugins, progress=False)
    assert not any(event == "pickle.find_class" for event, _ in seen)
