"""Choosing the instrument reader for a file: none, one, or an ambiguous tie."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlabel.components import InstrumentReader
from starlabel.errors import AmbiguousReaderError, NoReaderError
from starlabel.registry import Registry


def _identifies(cls: type[InstrumentReader], path: Path) -> bool:
    """``cls.identify(path)``, treating a reader that breaks its never-raise promise as a no."""
    try:
        return bool(cls.identify(path))
    except Exception:
        return False


def matching_readers(path: str | Path, readers: Registry[Any]) -> list[type[InstrumentReader]]:
    """Readers that identify ``path``, highest priority first (ties in name order)."""
    path = Path(path)
    found = [entry.cls for entry in readers if _identifies(entry.cls, path)]
    return sorted(found, key=lambda cls: (-cls.priority, cls.name))


def choose_reader(path: str | Path, readers: Registry[Any]) -> type[InstrumentReader]:
    """Return the one reader for ``path``.

    Raises
    ------
    NoReaderError
        No reader identifies the file; lists the readers tried.
    AmbiguousReaderError
        Several readers share the highest priority; lists them.
    """
    found = matching_readers(path, readers)
    if not found:
        raise NoReaderError(str(path), readers.names())
    top = [cls for cls in found if cls.priority == found[0].priority]
    if len(top) > 1:
        raise AmbiguousReaderError(str(path), [cls.name for cls in top])
    return found[0]
