"""Hook implementations of the ``starlabel_tables`` plugin."""

from __future__ import annotations

from typing import Any

from starlabel import hookimpl


@hookimpl
def register_auxiliary_providers() -> list[type[Any]]:
    """``table_columns``."""
    from starlabel_tables.columns import TableColumns

    return [TableColumns]


@hookimpl
def register_label_sources() -> list[type[Any]]:
    """``table_labels``."""
    from starlabel_tables.labels import TableLabels

    return [TableLabels]
