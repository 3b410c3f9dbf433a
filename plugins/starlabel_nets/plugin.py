"""Hook implementations of the ``starlabel_nets`` plugin."""

from __future__ import annotations

from typing import Any

from starlabel import hookimpl


@hookimpl
def register_architectures() -> list[type[Any]]:
    """``hybrid_cnn``, ``starnet`` and ``bcnn``."""
    from starlabel_nets.bcnn import BayesianCNN
    from starlabel_nets.hybrid_cnn import HybridCNN
    from starlabel_nets.starnet import StarNet

    return [HybridCNN, StarNet, BayesianCNN]
