"""Hook implementations of the ``starlabel_continuum`` plugin."""

from __future__ import annotations

from typing import Any

from starlabel import hookimpl


@hookimpl
def register_normalisers() -> list[type[Any]]:
    """Pseudo-continuum normalisers fitted to the spectra."""
    return []
