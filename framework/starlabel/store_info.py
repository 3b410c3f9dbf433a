"""A summary of a store: counts, grid, coverage, provenance (``starlabel store info``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from starlabel.store import Store


def store_info(path: str | Path) -> dict[str, Any]:
    """Summarise the store at ``path`` (complete or not), reading it chunk by chunk."""
    store = Store.open(path, "r", allow_incomplete=True)
    meta = store.meta
    n = store.n_rows
    keep = store.array("keep")[:n] if n else np.zeros(0, bool)
    masked = 0
    for start, stop in store.chunk_ranges():
        masked += int(store.array("mask")[start:stop].sum())
    grid = dict(meta["grid"])
    wave = grid.get("values")
    summary_grid = {
        "n_pixels": store.layout.n_pixels,
        "start": grid.get("start", wave[0] if wave else float("nan")),
        "stop": grid.get("stop", wave[-1] if wave else float("nan")),
        "unit": grid.get("unit", "?"),
        "medium": grid.get("medium", "?"),
        "spacing": grid.get("spacing", "explicit"),
    }
    aux = {}
    for name, columns in store.layout.aux.items():
        missing = store.array(f"aux/{name}_missing")[:n]
        aux[name] = {c: float((~missing[keep, i]).mean()) if keep.any() else 0.0 for i, c in enumerate(columns)}
    labels = {}
    for name, unit in store.layout.labels.items():
        ok = store.array(f"labels/{name}_ok")[:n] & keep
        labels[name] = {"ok": int(ok.sum()), "fraction": float(ok.sum() / max(1, keep.sum())), "unit": unit}
    return {
        "path": str(store.path),
        "complete": store.complete,
        "survey": meta["descriptor"].get("name"),
        "descriptor_hash": store.descriptor_hash,
        "rows": n,
        "kept": int(keep.sum()),
        "chunk_rows": store.chunk_rows,
        "chunks": -(-n // store.chunk_rows),
        "grid": summary_grid,
        "masked_fraction": masked / max(1, n * store.layout.n_pixels),
        "aux": aux,
        "labels": labels,
        "code_version": meta["code_version"],
        "created": meta["created"],
        "plugins": meta["plugins"],
        "completion": meta["completion"],
    }
