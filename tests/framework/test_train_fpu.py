"""Training flushes subnormal floats to zero while it runs, and leaves the caller's arithmetic as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from learning_helpers import make_learning_store, write_descriptor

from starlabel.descriptor import load_descriptor
from starlabel.plugins import load_plugins
from starlabel.train import TrainOptions, train

SMALLEST = np.float64(5e-324)  # the smallest positive subnormal float64


def test_subnormals_survive_a_training_run(tmp_path: Path) -> None:
    plugins = load_plugins(entry_points=False)
    descriptor = write_descriptor(tmp_path, ensemble=1, epochs=1)
    store = make_learning_store(tmp_path, 200, descriptor=descriptor)
    assert SMALLEST * np.float64(3.0) > 0  # before: subnormal arithmetic is exact
    train(load_descriptor(descriptor, plugins), plugins, store, tmp_path / "bundle", TrainOptions(progress=False))
    assert SMALLEST * np.float64(3.0) == pytest.approx(1.5e-323, rel=0.5) and SMALLEST * np.float64(3.0) > 0
    assert float("1e-320") > 0
