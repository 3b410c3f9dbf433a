"""Hook implementations of the ``starlabel_continuum`` plugin."""

from __future__ import annotations

from typing import Any

from starlabel import hookimpl


@hookimpl
def register_normalisers() -> list[type[Any]]:
    """``chebyshev`` and ``running_quantile``."""
    from starlabel_continuum.chebyshev import ChebyshevContinuum
    from starlabel_continuum.running_quantile import RunningQuantileContinuum

    return [ChebyshevContinuum, RunningQuantileContinuum]
