"""Hook implementations of the example third-party plugin."""

from __future__ import annotations

from typing import Any

from starlabel import hookimpl


@hookimpl
def register_instrument_readers() -> list[type[Any]]:
    """``example_ascii``."""
    from starlabel_example.reader import ExampleAscii

    return [ExampleAscii]
