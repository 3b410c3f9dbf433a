"""Ensemble training from a store into a model bundle: seeded, checkpointed every epoch, resumable.

Each ensemble member has its own seed and its own train/valid division of the non-test stars (the
test stars are the same for every member, so they stay held out). A member trains with AdamW under a
per-epoch learning-rate schedule, a loss masked for missing labels (optionally the Gaussian negative
log-likelihood with the reference-label errors), augmentation from the descriptor, and early stopping on
its validation split; its best weights are kept. Every epoch ends with a checkpoint; ``resume`` picks
up from the newest one and, because every epoch's random streams are re-seeded from (seed, member,
epoch, rank), ends at the same weights as an uninterrupted run on the same machine.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the same code runs DistributedDataParallel: each rank reads
its own store chunks with ``batch_size / world_size`` rows per step (so the effective batch is
unchanged), uneven shards are handled by ``Join``, validation losses are summed over ranks, and rank 0
alone writes checkpoints and the bundle.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from starlabel._version import __version__
from starlabel.augment import AugmentSpec, augment
from starlabel.bundle import BUNDLE_FORMAT, BUNDLE_VERSION, CARD_FILE, input_fingerprint, load_bundle, read_card
from starlabel.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from starlabel.components import InputSpec
from starlabel.data import SplitSpec, Stats, StoreDataset, compute_stats, labelled_rows, rows_in_split
from starlabel.descriptor import ResolvedDescriptor
from starlabel.ensemble import Ensemble
from starlabel.errors import StarlabelError
from starlabel.inputs import InputTransform, fit_input_transform, input_spec
from starlabel.losses import masked_loss
from starlabel.plugins import Plugins
from starlabel.progress import Progress
from starlabel.storage import storage_errors
from starlabel.store import Store

WORK = "_work"
COVERAGE_BINS = 12
"""Bins per label of the training-label histograms behind the ``sparse`` flag: with 20, one in ten held-out
stars of the Gaia XP × APOGEE library fell in a cell with fewer than 3 training stars; with 12, one in twenty."""


RESUME = "re-run the same `starlabel train` command with --resume to continue from the last checkpoint"


class TrainingError(StarlabelError):
    """Training cannot start or continue as asked."""

    exit_code = 2


@contextmanager
def _work_file(path: Path, out: Path) -> Iterator[None]:
    """Reading a file of an interrupted run: damage becomes a :class:`TrainingError` that says what to do."""
    from safetensors import SafetensorError

    with storage_errors(path, "read the interrupted training run", TrainingError, write=False):
        try:
            yield
        except (SafetensorError, ValueError, KeyError, TypeError, IndexError, AttributeError, RuntimeError) as error:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            detail = " ".join(lines[:3])[:300] or type(error).__name__
            raise TrainingError(
                f"{path}: a damaged file of the interrupted training run at {out} ({type(error).__name__}: {detail}); "
                "the run cannot be resumed: use --overwrite to start it again"
            ) from None


@dataclass
class TrainOptions:
    """Command-line choices that are not part of the descriptor."""

    resume: bool = False
    overwrite: bool = False
    device: str = "cpu"
    init_from: Path | None = None
    freeze_trunk: bool = False
    epochs: int | None = None
    ensemble: int | None = None
    progress: bool = True


@dataclass
class TrainReport:
    """What a training run produced."""

    bundle: Path
    members: list[dict[str, Any]]
    metrics: dict[str, Any]
    seconds: float
    resumed_members: list[int] = field(default_factory=list)


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def sum(self, *values: float) -> list[float]:
        if not self.enabled:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return t.tolist()


def _start_distributed(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return _Dist(dist.get_rank(), dist.get_world_size(), local)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, member, epoch, rank...), stable across runs and platforms."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def _learning_rate(base: float, epoch: int, epochs: int, schedule: str, warmup: int) -> float:
    if schedule == "constant":
        return base
    if epoch < warmup:
        return base * (epoch + 1) / (warmup + 1)
    span = max(epochs - warmup, 1)
    progress = min((epoch - warmup) / span, 1.0)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def _check_store(resolved: ResolvedDescriptor, store: Store, labels: list[str]) -> None:
    """The store must have been ingested with inputs this descriptor defines, and hold its labels."""
    mine = resolved.resolved()
    theirs = store.meta["descriptor"]
    differ = [k for k in ("grid", "mask", "normalise", "auxiliary") if mine.get(k) != theirs.get(k)]
    for key in ("arms", "resolution"):
        if mine["instrument"].get(key) != theirs["instrument"].get(key):
            differ.append(f"instrument.{key}")
    if differ:
        raise TrainingError(
            f"{store.path}: was ingested with a descriptor whose {', '.join(differ)} differ from "
            f"{resolved.path}; re-ingest with this descriptor, or train with the one the store was made with"
        )
    if list(store.layout.labels) != labels:
        raise TrainingError(
            f"{store.path}: holds labels [{', '.join(store.layout.labels) or 'none'}] but the descriptor's labels.columns "
            f"are [{', '.join(labels)}]; ingest with this descriptor so that the store holds exactly its labels"
        )


@dataclass
class _Run:
    """Everything a member's training needs."""

    resolved: ResolvedDescriptor
    store: Store
    out: Path
    work: Path
    options: TrainOptions
    dist: _Dist
    arch: Any
    transform: InputTransform
    stats: Stats
    labels: list[str]
    loss: str
    init_states: list[dict[str, torch.Tensor]]
    progress: Progress

    @property
    def training(self) -> Any:
        return self.resolved.model.training

    @property
    def epochs(self) -> int:
        return self.options.epochs or self.training.epochs

    @property
    def members(self) -> int:
        return self.options.ensemble or self.training.ensemble


def train(
    resolved: ResolvedDescriptor,
    plugins: Plugins,
    store_path: str | Path,
    out: str | Path,
    options: TrainOptions | None = None,
) -> TrainReport:
    """Train the descriptor's network on ``store_path`` and write a bundle to ``out``.

    Raises
    ------
    TrainingError
        No network section, a store that does not match the descriptor, an existing bundle or an
        interrupted run at ``out`` (see ``overwrite`` and ``resume``), a loss the network cannot give, a
        damaged file of the interrupted run (checkpoint, inputs, member weights), or ``out`` cannot be
        written (read-only file system, no permission, disk full; ``--resume`` continues once fixed).
    starlabel.bundle.BundleError
        The bundle cannot be written (``--resume`` writes it once fixed), or ``init_from`` is no bundle.
    """
    # Adam's second-moment estimates and small weights drift into subnormal floats, which x86 CPUs
    # process up to 100x slower; flushing them to zero changes no result that matters. It is a setting of
    # the calling thread's floating-point unit: set back afterwards, so that the caller's own arithmetic
    # (e.g. parsing numbers into subnormals) is not changed by having trained.
    torch.set_flush_denormal(True)
    try:
        return _train(resolved, plugins, store_path, out, options or TrainOptions())
    finally:
        torch.set_flush_denormal(False)


def _train(
    resolved: ResolvedDescriptor, plugins: Plugins, store_path: str | Path, out: str | Path, options: TrainOptions
) -> TrainReport:
    """:func:`train`, with subnormal floats flushed to zero."""
    started = time.perf_counter()
    out = Path(out)
    network = resolved.model.network
    if network is None:
        raise TrainingError(
            f"{resolved.path}: has no 'network:' section; add one, e.g. network: {{architecture: hybrid_cnn}} "
            f"(available: {', '.join(plugins.architectures.names())})"
        )
    if resolved.model.labels is None:
        raise TrainingError(f"{resolved.path}: has no 'labels:' section: there is nothing to learn")
    if options.device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("--device cuda: no CUDA device is available here; use --device cpu")
    labels = list(resolved.model.labels.columns)
    store = Store.open(store_path)
    _check_store(resolved, store, labels)
    training = resolved.model.training
    arch = plugins.architectures.get(network.architecture)(resolved.options["network"])
    spec = input_spec(store, resolved.model.instrument.arms, labels)
    probe = arch.build(spec)
    loss = training.loss
    if loss == "auto":
        loss = "gaussian_nll" if probe.heteroscedastic else "mse"
    if loss == "gaussian_nll" and not probe.heteroscedastic:
        raise TrainingError(
            f"training.loss gaussian_nll needs a variance head, and architecture {network.architecture} with these "
            "options has none; use an architecture that is heteroscedastic (e.g. bcnn, or variance_head: true "
            "where an architecture offers it) or training.loss: mse"
        )
    if options.freeze_trunk and options.init_from is None:
        raise TrainingError("--freeze-trunk needs --init-from BUNDLE (a trunk to keep)")
    init_states = _init_states(options, plugins, spec, labels, network.architecture)
    dist = _start_distributed(options.device)
    work = out / WORK
    fingerprint = _fingerprint(resolved, store, options, dist)
    if _prepare_out(out, work, fingerprint, options, dist):
        card = read_card(out)
        members = list(card.training["members"])
        return TrainReport(out, members, card.metrics, time.perf_counter() - started, list(range(len(members))))
    base = SplitSpec(training.seed, training.split.train, training.split.valid)
    transform, stats = _fit_or_load_inputs(work, store, base, resolved, dist)
    if options.device.startswith("cuda") and dist.enabled:
        torch.cuda.set_device(dist.local_rank)
    report_members: list[dict[str, Any]] = []
    with Progress(enabled=options.progress and dist.main) as progress:
        run = _Run(resolved, store, out, work, options, dist, arch, transform, stats, labels, loss, init_states, progress)
        resumed = []
        for member in range(run.members):
            record, was_resumed = _train_member(run, member)
            report_members.append(record)
            if was_resumed:
                resumed.append(member)
        metrics: dict[str, Any] = {}
        if dist.main:
            progress.note("fitting coverage and writing the bundle")
            metrics = _write_bundle(run, report_members, loss, probe, plugins)
            shutil.rmtree(work, ignore_errors=True)
    dist.barrier()
    if dist.enabled:
        torch.distributed.destroy_process_group()
    return TrainReport(out, report_members, metrics, time.perf_counter() - started, resumed)


def _fingerprint(resolved: ResolvedDescriptor, store: Store, options: TrainOptions, dist: _Dist) -> dict[str, Any]:
    init = None
    if options.init_from is not None:
        init = read_card(options.init_from).weights.sha256
    return {
        "descriptor_hash": resolved.hash(),
        "store_descriptor_hash": store.descriptor_hash,
        "store_rows": store.n_rows,
        "epochs": options.epochs,
        "ensemble": options.ensemble,
        "init_from": init,
        "freeze_trunk": options.freeze_trunk,
        "world_size": dist.world,
    }


def _prepare_out(out: Path, work: Path, fingerprint: dict[str, Any], options: TrainOptions, dist: _Dist) -> bool:
    """Refuse to clobber a bundle or an interrupted run unless asked; check a resumed run is the same run.

    Returns True when ``--resume`` finds the run already finished (a kill after the bundle was written).
    """
    if (out / CARD_FILE).exists() and not options.overwrite:
        if options.resume:
            if dist.main:
                shutil.rmtree(work, ignore_errors=True)  # a run killed after writing its bundle, before tidying up
            dist.barrier()
            return True
        raise TrainingError(f"{out}: a finished bundle is already there; use --overwrite or another --out")
    run_file = work / "run.json"
    if run_file.exists() and not options.overwrite:
        if not options.resume:
            raise TrainingError(
                f"{out}: holds an interrupted training run; add --resume to continue it or --overwrite to start again"
            )
        with _work_file(run_file, out):
            previous = json.loads(run_file.read_text())
            if not isinstance(previous, dict):
                raise ValueError(f"a JSON {type(previous).__name__}, not an object")
        if previous != fingerprint:
            changed = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
            raise TrainingError(
                f"{out}: the interrupted run there was started with different inputs ({', '.join(changed)}); "
                "--resume needs the same descriptor, store and options, or use --overwrite to start again"
            )
        return False
    unstarted = out.exists() and [p.name for p in out.iterdir()] == [WORK]  # killed before run.json was written
    if out.exists() and any(out.iterdir()) and not options.overwrite and not (unstarted and options.resume):
        raise TrainingError(f"{out}: exists and is not empty; choose another --out or use --overwrite")
    dist.barrier()
    if dist.main:
        with storage_errors(out, "prepare the training folder", TrainingError, then="run the command again"):
            if (options.overwrite or unstarted) and out.exists():
                shutil.rmtree(out)
            work.mkdir(parents=True, exist_ok=True)
            tmp = work / "run.json.tmp"
            tmp.write_text(json.dumps(fingerprint))
            os.replace(tmp, run_file)
    dist.barrier()
    return False


def _fit_or_load_inputs(
    work: Path, store: Store, base: SplitSpec, resolved: ResolvedDescriptor, dist: _Dist
) -> tuple[InputTransform, Stats]:
    """Input transform and label/aux statistics from the base training split, saved for resumption."""
    from safetensors.numpy import load_file, save_file

    saved = work / "inputs.json"
    if dist.main and not saved.exists():
        transform = fit_input_transform(store, base, resolved.model.instrument.arms)
        stats = compute_stats(store, base)
        with storage_errors(work.parent, "save the input transform", TrainingError, then=RESUME):
            save_file(transform.arrays(), str(work / "inputs.safetensors"))
            tmp = work / "inputs.json.tmp"
            tmp.write_text(json.dumps({"transform": transform.params(), "stats": stats.to_dict()}))
            os.replace(tmp, saved)
    dist.barrier()
    with _work_file(work / "inputs.safetensors", work.parent):
        arrays = load_file(str(work / "inputs.safetensors"))
    with _work_file(saved, work.parent):
        params = json.loads(saved.read_text())
        transform = InputTransform.from_parts(arrays, params["transform"])
        stats = Stats(**params["stats"])
    return transform, stats


def _init_states(
    options: TrainOptions, plugins: Plugins, spec: InputSpec, labels: list[str], architecture: str
) -> list[dict[str, torch.Tensor]]:
    """Member weights of the ``--init-from`` bundle, after checking they fit the network to train."""
    if options.init_from is None:
        return []
    source = load_bundle(options.init_from, plugins)
    problems = []
    if source.card.architecture.name != architecture:
        problems.append(f"architecture {source.card.architecture.name} (this run: {architecture})")
    if source.card.input_spec.arm_pixels != list(spec.arm_pixels) or source.card.input_spec.n_aux != spec.n_aux:
        problems.append(
            f"inputs {source.card.input_spec.arm_pixels} px + {source.card.input_spec.n_aux} aux "
            f"(this run: {list(spec.arm_pixels)} px + {spec.n_aux} aux)"
        )
    if source.labels != labels:
        problems.append(f"labels {source.labels} (this run: {labels})")
    if problems:
        raise TrainingError(f"--init-from {options.init_from}: cannot start from this bundle: " + "; ".join(problems))
    return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in source.members]


def _member_dataset(run: _Run, member: int, split: str, shuffle: bool, batch: int) -> StoreDataset:
    t = run.training
    spec = SplitSpec(t.seed, t.split.train, t.split.valid, member)
    return StoreDataset(
        run.store.path,
        split,
        spec,
        run.stats,
        shuffle=shuffle,
        buffer_rows=t.buffer_rows,
        rank=run.dist.rank,
        world_size=run.dist.world,
        batch_size=batch,
        labelled_only=True,
    )


def _count_rows(store: Store, split: str, spec: SplitSpec) -> int:
    """Labelled rows of ``split`` (what a training epoch sees)."""
    return int(
        sum((rows_in_split(store, a, b, split, spec) & labelled_rows(store, a, b)).sum() for a, b in store.chunk_ranges())
    )


def _step_inputs(run: _Run, batch: dict[str, torch.Tensor], generator: torch.Generator | None) -> tuple[torch.Tensor, ...]:
    flux, ivar, mask = batch["flux"], batch["ivar"], batch["mask"]
    spec = _augment_spec(run)
    if generator is not None and spec.active:
        wavelength = torch.as_tensor(_wavelength(run.store), dtype=torch.float64)
        flux, ivar, mask = augment(flux, ivar, mask, wavelength, spec, generator)
    device = run.options.device
    x = run.transform.flux(flux, mask).to(device)
    a = run.transform.aux(batch["aux"], batch["aux_missing"]).to(device)
    return x, a, batch["labels"].to(device), batch["label_ok"].to(device), batch["label_err"].to(device)


_WAVELENGTHS: dict[str, np.ndarray] = {}


def _wavelength(store: Store) -> np.ndarray:
    key = str(store.path)
    if key not in _WAVELENGTHS:
        from starlabel.grid import WavelengthGrid

        _WAVELENGTHS[key] = np.array(WavelengthGrid.from_dict(store.meta["grid"]).wavelength)
    return _WAVELENGTHS[key]


def _augment_spec(run: _Run) -> AugmentSpec:
    a = run.training.augment
    return AugmentSpec(tuple(a.snr) if a.snr else None, a.rv_kms, a.mask_fraction, a.probability)


def _validation_loss(run: _Run, module: torch.nn.Module, dataset: StoreDataset) -> float:
    module.eval()
    total, count = 0.0, 0.0
    with torch.no_grad():
        for batch in torch.utils.data.DataLoader(dataset, batch_size=None):
            x, a, y, ok, err = _step_inputs(run, batch, None)
            mean, log_var = module(x, a)
            s, c = masked_loss(mean, log_var, y, ok, err if run.training.label_errors else None, run.loss)
            total += float(s)
            count += float(c)
    total, count = run.dist.sum(total, count)
    return total / count if count else float("nan")


def _train_member(run: _Run, member: int) -> tuple[dict[str, Any], bool]:
    """Train (or finish, or skip when done) one member; its best weights end in ``work/member{k}/final``."""
    from safetensors.torch import save_file

    folder = run.work / f"member{member}"
    final = folder / "final.json"
    if final.exists():
        run.progress.note(f"member {member + 1}/{run.members}: already trained")
        with _work_file(final, run.out):
            summary = json.loads(final.read_text())
            if not isinstance(summary, dict):
                raise ValueError(f"a JSON {type(summary).__name__}, not an object")
        return summary, True
    t = run.training
    seed = derived_seed(t.seed, member)
    torch.manual_seed(seed)
    module = run.arch.build(run.transform.spec(run.labels))
    if run.init_states:
        module.load_state_dict(run.init_states[member % len(run.init_states)])
    if run.options.freeze_trunk:
        for parameter in module.trunk.parameters():
            parameter.requires_grad_(False)
    module.to(run.options.device)
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=t.learning_rate, weight_decay=t.weight_decay)
    record: dict[str, Any] = {"best_loss": math.inf, "best_epoch": -1, "bad_epochs": 0, "history": []}
    best = {k: v.detach().clone() for k, v in module.state_dict().items()}
    start = 0
    checkpoint = latest_checkpoint(folder)
    resumed = checkpoint is not None
    if checkpoint is not None:
        try:
            best, record = load_checkpoint(checkpoint, module, optimizer)
        except CheckpointError as error:
            raise TrainingError(
                f"{error}; the interrupted run at {run.out} cannot be resumed from it: use --overwrite to start "
                "it again"
            ) from None
        start = record.pop("epoch") + 1
    net: torch.nn.Module = module
    if run.dist.enabled:
        net = torch.nn.parallel.DistributedDataParallel(module, device_ids=None)
    per_rank = max(1, t.batch_size // run.dist.world)
    train_set = _member_dataset(run, member, "train", True, per_rank)
    valid_set = _member_dataset(run, member, "valid", False, 1024)
    n_train = _count_rows(run.store, "train", train_set.spec)
    steps = math.ceil(n_train / run.dist.world / per_rank)
    task = run.progress.task(f"member {member + 1}/{run.members}", total=steps * run.epochs, completed=steps * start)
    for epoch in range(start, run.epochs):
        if record["bad_epochs"] >= t.patience:
            break
        lr = _learning_rate(t.learning_rate, epoch, run.epochs, t.schedule, t.warmup_epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        epoch_seed = derived_seed(t.seed, member, epoch, run.dist.rank)
        torch.manual_seed(epoch_seed)
        generator = torch.Generator().manual_seed(epoch_seed)
        train_set.set_epoch(epoch)
        net.train()
        total, count = 0.0, 0.0
        context = _join(net, run.dist)
        with context:
            for batch in torch.utils.data.DataLoader(train_set, batch_size=None):
                x, a, y, ok, err = _step_inputs(run, batch, generator)
                mean, log_var = net(x, a)
                s, c = masked_loss(mean, log_var, y, ok, err if t.label_errors else None, run.loss)
                loss = s / c.clamp(min=1)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 10.0)
                optimizer.step()
                total += float(s.detach())
                count += float(c)
                run.progress.advance(task, loss=total / max(count, 1))
        total, count = run.dist.sum(total, count)
        valid = _validation_loss(run, module, valid_set)
        entry = {"epoch": epoch, "lr": lr, "train_loss": total / max(count, 1), "valid_loss": valid}
        record["history"].append(entry)
        if valid < record["best_loss"]:
            record.update(best_loss=valid, best_epoch=epoch, bad_epochs=0)
            best = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            record["bad_epochs"] += 1
        run.progress.set(task, completed=steps * (epoch + 1), loss=entry["train_loss"], valid=valid)
        if run.dist.main:
            with storage_errors(run.out, f"write the checkpoint of member {member}, epoch {epoch}", TrainingError, then=RESUME):
                save_checkpoint(folder, epoch, module.state_dict(), best, optimizer, record)
        run.dist.barrier()
    run.progress.set(task, completed=steps * run.epochs)
    summary = {
        "member": member,
        "seed": seed,
        "epochs_run": len(record["history"]),
        "best_epoch": record["best_epoch"],
        "best_valid_loss": record["best_loss"],
        "n_train": n_train,
        "history": record["history"],
    }
    if run.dist.main:
        with storage_errors(run.out, f"save the weights of member {member}", TrainingError, then=RESUME):
            save_file({k: v.cpu().contiguous() for k, v in best.items()}, str(folder / "final.safetensors"))
            tmp = folder / "final.json.tmp"
            tmp.write_text(json.dumps(summary))
            os.replace(tmp, final)
    run.dist.barrier()
    return summary, resumed


def _join(net: torch.nn.Module, dist: _Dist) -> Any:
    from contextlib import nullcontext

    if not dist.enabled:
        return nullcontext()
    from torch.distributed.algorithms.join import Join

    return Join([net])


def _final_members(run: _Run) -> list[torch.nn.Module]:
    from safetensors.torch import load_file

    members = []
    for member in range(run.members):
        module = run.arch.build(run.transform.spec(run.labels))
        path = run.work / f"member{member}" / "final.safetensors"
        with _work_file(path, run.out):
            module.load_state_dict(load_file(str(path)))
        members.append(module.to(run.options.device).eval())
    return members


def _label_arrays(store: Store, split: str, spec: SplitSpec, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    values, oks = [], []
    for a, b in store.chunk_ranges():
        rows = rows_in_split(store, a, b, split, spec)
        values.append(np.stack([store.array(f"labels/{n}")[a:b][rows] for n in labels], axis=1))
        oks.append(np.stack([store.array(f"labels/{n}_ok")[a:b][rows] for n in labels], axis=1))
    return np.concatenate(values).astype(np.float64), np.concatenate(oks)


def _input_sample(run: _Run, spec: SplitSpec, limit: int) -> np.ndarray:
    """Network inputs (flux and aux side by side) of about ``limit`` training stars spread over the whole
    store (a seeded random subset of every chunk: stores are often ordered by field, magnitude or type),
    for the input-coverage model."""
    total = _count_split(run.store, "train", spec)
    fraction = min(1.0, limit / max(total, 1))
    rng = np.random.default_rng(derived_seed(run.training.seed, 7))
    ens = _ensemble(run, [], run.stats)
    parts = []
    for a, b in run.store.chunk_ranges():
        rows = np.flatnonzero(rows_in_split(run.store, a, b, "train", spec))
        rows = rows[rng.random(rows.size) < fraction]
        if rows.size == 0:
            continue
        batch = run.store.read(a, b).take(rows)
        aux, missing = _raw_aux(batch, run.store)
        x, av = ens.inputs(batch.flux, batch.mask, aux, missing)
        parts.append(torch.cat([x, av], dim=1).cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 0))


def _count_split(store: Store, split: str, spec: SplitSpec) -> int:
    return int(sum(rows_in_split(store, a, b, split, spec).sum() for a, b in store.chunk_ranges()))


def _raw_aux(batch: Any, store: Store) -> tuple[np.ndarray, np.ndarray]:
    n = len(batch)
    if not store.layout.aux:
        return np.zeros((n, 0)), np.zeros((n, 0), bool)
    values = np.concatenate([batch.aux[k][0] for k in store.layout.aux], axis=1)
    missing = np.concatenate([batch.aux[k][1] for k in store.layout.aux], axis=1)
    return values, missing


def _ensemble(run: _Run, members: list[torch.nn.Module], stats: Stats, probe: Any = None, loss: str = "mse") -> Ensemble:
    hetero = bool(probe is not None and probe.heteroscedastic and loss == "gaussian_nll")
    return Ensemble(
        members,
        run.transform,
        np.asarray(stats.label_mean),
        np.asarray(stats.label_std),
        np.asarray(stats.aux_mean),
        np.asarray(stats.aux_std),
        hetero,
        bool(probe is not None and probe.mc_dropout),
        run.training.mc_samples,
        run.options.device,
    )


def robust_metrics(pred: np.ndarray, truth: np.ndarray, ok: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Per label: n, bias (median of pred − truth) and robust scatter (1.4826 × MAD) of the residuals."""
    out = {}
    for i, name in enumerate(names):
        use = ok[:, i] & np.isfinite(pred[:, i]) & np.isfinite(truth[:, i])
        d = pred[use, i] - truth[use, i]
        if d.size == 0:
            out[name] = {"n": 0, "bias": None, "scatter": None}
            continue
        median = float(np.median(d))
        out[name] = {"n": int(d.size), "bias": median, "scatter": float(1.4826 * np.median(np.abs(d - median)))}
    return out


def _write_bundle(run: _Run, members_info: list[dict[str, Any]], loss: str, probe: Any, plugins: Plugins) -> dict:
    from starlabel.bundle import write_bundle
    from starlabel.coverage import InputCoverage, LabelCoverage

    t = run.training
    base = SplitSpec(t.seed, t.split.train, t.split.valid)
    members = _final_members(run)
    labels_train, ok_train = _label_arrays(run.store, "train", base, run.labels)
    coverage = LabelCoverage.fit(labels_train, ok_train, run.labels, bins=COVERAGE_BINS)
    n_inputs = int(run.transform.pixels.size + 2 * len(run.transform.aux_columns))
    sample = _input_sample(run, base, min(20000, max(2000, int(5e7 // max(n_inputs, 1)))))
    ood = InputCoverage.fit(sample) if sample.shape[0] >= 2 else None
    ensemble = _ensemble(run, members, run.stats, probe, loss)
    metrics = {"valid": _split_metrics(run, ensemble, "valid", base)}
    tensors: dict[str, np.ndarray] = {}
    for k, module in enumerate(members):
        tensors |= {f"member{k}.{n}": v.detach().cpu().numpy() for n, v in module.state_dict().items()}
    tensors |= {f"inputs.{k}": v for k, v in run.transform.arrays().items()}
    if ood is not None:
        tensors |= {f"ood.{k}": np.asarray(v, np.float32) for k, v in ood.arrays().items()}
    card = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {
            "starlabel": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            **{f"plugin:{k}": v for k, v in plugins.versions().items()},
        },
        "architecture": {"name": run.resolved.model.network.architecture, "options": run.arch.options.model_dump(mode="json")},
        "input_spec": {
            "arm_pixels": list(run.transform.arm_pixels),
            "n_aux": 2 * len(run.transform.aux_columns),
            "labels": run.labels,
        },
        "members": len(members),
        "heteroscedastic": ensemble.heteroscedastic,
        "mc_dropout": ensemble.mc_dropout,
        "descriptor": {"name": run.resolved.name, "hash": run.resolved.hash()},
        "inputs": input_fingerprint(run.store),
        "transform": run.transform.params(),
        "normalisation": {
            "label_names": run.labels,
            "label_units": {n: run.store.layout.labels[n] for n in run.labels},
            "label_mean": run.stats.label_mean,
            "label_std": run.stats.label_std,
            "aux_columns": run.stats.aux_columns,
            "aux_mean": run.stats.aux_mean,
            "aux_std": run.stats.aux_std,
        },
        "split": {"seed": t.seed, "train": t.split.train, "valid": t.split.valid, "test": t.split.test},
        "training": {
            "options": t.model_dump(mode="json"),
            "loss": loss,
            "epochs": run.epochs,
            "world_size": run.dist.world,
            "device": run.options.device,
            "init_from": str(run.options.init_from) if run.options.init_from else None,
            "freeze_trunk": run.options.freeze_trunk,
            "members": [{k: v for k, v in m.items()} for m in members_info],
        },
        "coverage": coverage.to_dict(),
        "ood": ood.params() if ood is not None else None,
        "metrics": metrics,
    }
    write_bundle(run.out, _finite(card), tensors)
    return metrics


def _split_metrics(run: _Run, ensemble: Ensemble, split: str, spec: SplitSpec) -> dict[str, Any]:
    preds, truths, oks = [], [], []
    for a, b in run.store.chunk_ranges():
        rows = np.flatnonzero(rows_in_split(run.store, a, b, split, spec))
        if rows.size == 0:
            continue
        batch = run.store.read(a, b).take(rows)
        aux, missing = _raw_aux(batch, run.store)
        x, av = ensemble.inputs(batch.flux, batch.mask, aux, missing)
        preds.append(ensemble.predict(x, av, seed=a).mean)
        truths.append(np.stack([batch.labels[n][0] for n in run.labels], axis=1))
        oks.append(np.stack([batch.labels[n][2] for n in run.labels], axis=1))
    if not preds:
        return {}
    return robust_metrics(np.concatenate(preds), np.concatenate(truths), np.concatenate(oks), run.labels)


def _finite(value: Any) -> Any:
    """JSON-safe: infinities and NaN become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
