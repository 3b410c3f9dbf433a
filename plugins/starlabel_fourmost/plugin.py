"""Hook implementations of the ``starlabel_fourmost`` plugin."""

from __future__ import annotations

from typing import Any

from starlabel import hookimpl


@hookimpl
def register_instrument_readers() -> list[type[Any]]:
    """4MOST readers."""
    return []
