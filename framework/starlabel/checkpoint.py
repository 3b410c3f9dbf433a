"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is a folder ``epoch-NNNN`` holding ``state.safetensors`` (the model's parameters, the best
parameters so far and the optimizer's tensors) and ``state.json`` (epoch, early-stopping record, the
optimizer's hyper-parameters). It is written under a temporary name and renamed into place, so a folder
with the final name is always whole; older checkpoints are removed after the new one is in place.

Loading reads nothing but that JSON and those safetensors, and checks them against the model and the
optimizer being restored: a damaged or edited checkpoint raises :class:`CheckpointError`, never a raw
exception from deep inside torch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from starlabel.errors import StarlabelError

_NAME = re.compile(r"^epoch-(\d{4,})$")
_RECORD_KEYS = {"epoch": int, "best_loss": (int, float), "best_epoch": int, "bad_epochs": int, "history": list}


class CheckpointError(StarlabelError):
    """A checkpoint cannot be read back: damaged, edited, or written for another model or optimizer."""

    exit_code = 2


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_checkpoint(
    folder: Path,
    epoch: int,
    model: dict[str, torch.Tensor],
    best: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    record: dict[str, Any],
) -> Path:
    """Write checkpoint ``epoch`` into ``folder`` atomically and drop older ones; return its path.

    Raises
    ------
    OSError
        When the folder cannot be written; the temporary folder is removed and the previous checkpoint
        is kept.
    """
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"epoch-{epoch:04d}"
    tmp = folder / f"epoch-{epoch:04d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        opt_tensors, opt_json = _optimizer_tensors(optimizer)
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.items()}
        tensors |= {f"best.{k}": v.detach().cpu().contiguous() for k, v in best.items()}
        save_file(tensors | opt_tensors, str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps(record | {"epoch": epoch, "optimizer": opt_json}))
        for path in (tmp / "state.safetensors", tmp / "state.json"):
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # free the space; the previous checkpoint stays the newest
        raise
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in folder.iterdir():
        match = _NAME.match(old.name)
        if match and int(match.group(1)) < epoch:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest whole checkpoint in ``folder``, or None."""
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name)) and p.is_dir()]
    found = [(e, p) for e, p in found if (p / "state.json").is_file() and (p / "state.safetensors").is_file()]
    return max(found)[1] if found else None


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore ``model`` and ``optimizer`` from checkpoint ``path``; return the best parameters and the record.

    Raises
    ------
    CheckpointError
        A missing, unreadable, damaged or edited ``state.safetensors`` or ``state.json``, or one written for
        another model or optimizer. ``model`` and ``optimizer`` may be partly restored by then.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path / "state.safetensors"))
        record = json.loads((path / "state.json").read_text())
        _check_record(record)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        expected = model.state_dict()
        if set(best) != set(expected) or any(best[k].shape != expected[k].shape for k in best):
            raise ValueError("its best parameters do not fit the model")
        opt = record.pop("optimizer")
        state: dict[int, dict[str, Any]] = {}
        for name, value in tensors.items():
            if name.startswith("opt."):
                _, index, key = name.split(".", 2)
                state.setdefault(int(index), {})[key] = value
        for index, values in opt["scalars"].items():
            state.setdefault(int(index), {}).update(values)
        optimizer.load_state_dict({"state": state, "param_groups": opt["param_groups"]})
    except (
        SafetensorError,
        OSError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        RuntimeError,
    ) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = " ".join(lines[:3]) if lines else type(error).__name__
        raise CheckpointError(f"{path}: damaged checkpoint ({type(error).__name__}: {detail[:300]})") from None
    return best, record


def _check_record(record: Any) -> None:
    """The JSON half of a checkpoint must be an object with the fields training reads, of the right types."""
    if not isinstance(record, dict):
        raise ValueError(f"state.json holds a JSON {type(record).__name__}, not an object")
    for key, kind in _RECORD_KEYS.items():
        if isinstance(record.get(key), bool) or not isinstance(record.get(key), kind):
            raise ValueError(f"state.json: {key} is missing or of the wrong type ({record.get(key)!r})")
    optimizer = record.get("optimizer")
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("scalars"), dict):
        raise ValueError("state.json: optimizer is missing or not an object with 'scalars' and 'param_groups'")
