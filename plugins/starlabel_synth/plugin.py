"""Hook implementations of the ``starlabel_synth`` plugin."""

from __future__ import annotations

from typing import Any

from starlabel import hookimpl


@hookimpl
def register_synthesizers() -> list[type[Any]]:
    """``linelist``."""
    from starlabel_synth.model import LineListSynthesizer

    return [LineListSynthesizer]
