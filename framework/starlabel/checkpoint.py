"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is a folder ``epoch-NNNN`` holding ``state.safetensors`` (the model's parameters, the best
parameters so far and the optimizer's tensors) and ``state.json`` (epoch, early-stopping record, the
optimizer's hyper-parameters). It is written under a temporary name and renamed into place, so a folder
with the final name is always whole; older checkpoints are removed after the new one is in place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

_NAME = re.compile(r"^epoch-(\d{4,})$")


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
    """Write checkpoint ``epoch`` into ``folder`` atomically and drop older ones; return its path."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"epoch-{epoch:04d}"
    tmp = folder / f"epoch-{epoch:04d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    opt_tensors, opt_json = _optimizer_tensors(optimizer)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.items()}
    tensors |= {f"best.{k}": v.detach().cpu().contiguous() for k, v in best.items()}
    save_file(tensors | opt_tensors, str(tmp / "state.safetensors"))
    (tmp / "state.json").write_text(json.dumps(record | {"epoch": epoch, "optimizer": opt_json}))
    for path in (tmp / "state.safetensors", tmp / "state.json"):
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
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
    """Restore ``model`` and ``optimizer`` from checkpoint ``path``; return the best parameters and the record."""
    from safetensors.torch import load_file

    tensors = load_file(str(path / "state.safetensors"))
    record = json.loads((path / "state.json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    opt = record.pop("optimizer")
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, values in opt["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": opt["param_groups"]})
    return best, record
