"""A small store where the labels are a known non-linear function of the spectra, for learning tests.

Three Gaussian absorption lines on an 81-pixel grid: line 1's depth is a sigmoid of ``teff``, line 2's
a square of ``m_h``, line 3's depth grows with their product; one auxiliary column is ``teff`` + ``m_h``
scaled, with noise. Labels have errors and some are missing. The store is written through the real
:class:`~starlabel.store.Store` with the resolved descriptor's metadata, exactly as ingest would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from starlabel.descriptor import load_descriptor
from starlabel.grid import WavelengthGrid
from starlabel.plugins import load_plugins
from starlabel.store import Store, StoreBatch, StoreLayout

CENTRES = (504.0, 510.0, 516.0)
SIGMA_NM = 0.6


def descriptor_dict(**training: Any) -> dict[str, Any]:
    """A descriptor (as a dict) for the learning store; ``training`` overrides the training section."""
    train = {
        "seed": 3,
        "ensemble": 1,
        "epochs": 25,
        "batch_size": 64,
        "learning_rate": 3e-3,
        "patience": 8,
        "split": {"train": 0.7, "valid": 0.15, "test": 0.15},
    }
    network = training.pop("network", {"architecture": "hybrid_cnn", "options": {"conv_filters": [8, 16], "dropout": 0.0}})
    arms = training.pop("arms", [])
    train.update(training)
    return {
        "schema_version": 1,
        "name": "toy_learning",
        "instrument": {"reader": "gaia_xp_sampled", "resolution": 1000, "arms": arms},
        "grid": {"start": 500.0, "stop": 520.0, "step": 0.25, "unit": "nm", "medium": "vacuum"},
        "auxiliary": [
            {"provider": "table_columns", "name": "phot", "options": {"id_column": "source_id", "columns": {"c1": "c1"}}}
        ],
        "labels": {
            "source": "table_labels",
            "columns": ["teff", "m_h"],
            "options": {
                "id_column": "source_id",
                "columns": {"teff": "teff", "m_h": "m_h"},
                "units": {"teff": "K", "m_h": "dex"},
            },
        },
        "network": network,
        "training": train,
    }


def write_descriptor(folder: Path, **training: Any) -> Path:
    """Write the descriptor YAML into ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "toy_learning.yaml"
    path.write_text(yaml.safe_dump(descriptor_dict(**training), sort_keys=False))
    return path


def true_flux(wavelength: np.ndarray, teff: np.ndarray, m_h: np.ndarray) -> np.ndarray:
    """Noise-free spectra for labels ``teff`` (K) and ``m_h`` (dex)."""
    a = (teff - 5000.0) / 800.0
    b = m_h / 0.5
    depths = (0.5 / (1 + np.exp(-3 * a)), 0.3 * (b + 1) ** 2 / 4 + 0.05, 0.1 + 0.1 * (1 + a * b))
    flux = np.ones((teff.size, wavelength.size))
    for centre, depth in zip(CENTRES, depths, strict=True):
        flux -= depth[:, None] * np.exp(-0.5 * ((wavelength[None, :] - centre) / SIGMA_NM) ** 2)
    return flux


def make_learning_store(
    folder: Path,
    n: int = 1500,
    *,
    seed: int = 0,
    snr: float = 100.0,
    chunk_rows: int = 256,
    missing: float = 0.1,
    descriptor: Path | None = None,
    name: str = "store.zarr",
    string_ids: bool = False,
    sort_by_teff: bool = False,
) -> Path:
    """Write the store (and the descriptor, unless given) into ``folder``; return the store path."""
    descriptor = descriptor or write_descriptor(folder)
    plugins = load_plugins(entry_points=False)
    resolved = load_descriptor(descriptor, plugins)
    grid = WavelengthGrid.from_section(resolved.model.grid)
    rng = np.random.default_rng(seed)
    teff = rng.uniform(4200.0, 5800.0, n)
    if sort_by_teff:  # stores are often ordered (by field, magnitude, type): nothing may assume random order
        teff = np.sort(teff)
    m_h = rng.uniform(-0.5, 0.5, n)
    flux = true_flux(grid.wavelength, teff, m_h)
    sigma = 1.0 / snr
    flux = (flux + rng.normal(0, sigma, flux.shape)).astype(np.float32)
    ivar = np.full(flux.shape, 1 / sigma**2, np.float32)
    mask = np.zeros(flux.shape, bool)
    aux = ((teff - 5000) / 800 + m_h / 0.5 + rng.normal(0, 0.1, n)).astype(np.float32)[:, None]
    aux_missing = rng.random((n, 1)) < missing
    aux[aux_missing] = np.nan
    teff_ok, m_h_ok = rng.random(n) > missing, rng.random(n) > missing
    ids = (rng.choice(10**9, n, replace=False) + 10**12).astype(np.int64)
    if string_ids:
        ids = np.array([f"star-{i}" for i in ids])
    layout = StoreLayout(len(grid), "str" if string_ids else "int", {"phot": ["c1"]}, {"teff": "K", "m_h": "dex"}, chunk_rows)
    store = Store.create(
        folder / name,
        layout,
        descriptor=resolved.resolved(),
        descriptor_hash=resolved.hash(),
        grid=grid.as_dict(),
        plugins=plugins.versions(),
    )
    store.append(
        StoreBatch(
            ids,
            flux,
            ivar,
            mask,
            np.full(n, snr, np.float32),
            {"phot": (aux, aux_missing)},
            {
                "teff": (np.where(teff_ok, teff, np.nan).astype(np.float32), np.full(n, 20.0, np.float32), teff_ok),
                "m_h": (np.where(m_h_ok, m_h, np.nan).astype(np.float32), np.full(n, 0.02, np.float32), m_h_ok),
            },
        )
    )
    store.set_keep(np.ones(n, bool))
    store.finish({})
    return folder / name
