"""Progress bars on standard error (rich), or nothing when disabled (quiet runs, non-zero ranks)."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any


class Progress:
    """A context manager with tasks showing a bar, completed/total, loss fields and the ETA.

    Parameters
    ----------
    enabled : bool
        False gives a silent object with the same methods.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
                transient=False,
            )
            self._bar.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, trace)
            self._bar = None

    def task(self, description: str, total: float, completed: float = 0) -> int:
        """Add a task; returns its id (-1 when disabled)."""
        if self._bar is None:
            return -1
        return int(self._bar.add_task(description, total=total, completed=completed, status=""))

    def advance(self, task: int, steps: float = 1, **fields: float) -> None:
        """Advance ``task`` by ``steps``; ``fields`` (e.g. loss=0.12) are shown beside the bar."""
        if self._bar is not None and task >= 0:
            self._bar.update(task, advance=steps, status=_status(fields))

    def set(self, task: int, completed: float, **fields: float) -> None:
        """Set ``task``'s completed count (and fields)."""
        if self._bar is not None and task >= 0:
            update: dict[str, Any] = {"completed": completed}
            if fields:
                update["status"] = _status(fields)
            self._bar.update(task, **update)

    def note(self, text: str) -> None:
        """Print a line above the bars."""
        if self._bar is not None:
            self._bar.console.print(text)


def _status(fields: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in fields.items())
