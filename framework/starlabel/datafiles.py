"""Where a survey's files are: the descriptor's ``data:`` section resolved to real paths."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from starlabel.errors import StarlabelError

if TYPE_CHECKING:
    from starlabel.descriptor import ResolvedDescriptor
    from starlabel.plugins import Plugins


class DataNotFoundError(StarlabelError, FileNotFoundError):
    """A survey's data folder or files cannot be found."""

    exit_code = 2


def data_root(resolved: ResolvedDescriptor, plugins: Plugins, override: str | Path | None = None) -> Path:
    """Folder (or file) the ``data:`` patterns are relative to.

    Order: ``override`` (a command-line option), then ``data.root`` (relative to the descriptor file),
    then the first plugin answer to ``locate_survey_data(name, release)``.
    """
    if override is not None:
        root = Path(override)
    elif resolved.model.data.root is not None:
        base = resolved.path.parent if resolved.path is not None else Path.cwd()
        root = base / resolved.model.data.root
    else:
        found = plugins.locate_survey_data(resolved.name, resolved.model.data.release)
        if found is None:
            raise DataNotFoundError(
                f"no local data for survey {resolved.name!r} (release {resolved.model.data.release}): no plugin "
                f"located it and the descriptor has no data.root; pass the folder explicitly (--data PATH), "
                f"set STARLABEL_DATA_DIR, or install the package that ships it"
            )
        root = found
    if not root.exists():
        raise DataNotFoundError(f"data folder {root} for survey {resolved.name!r} does not exist")
    return root


def expand_one(root: Path, pattern: str, what: str) -> Path:
    """The single file under ``root`` matching ``pattern``; several matches are an error listing them."""
    files = expand(root, [pattern], what)
    if len(files) > 1:
        listing = ", ".join(p.name for p in files[:5]) + (", ..." if len(files) > 5 else "")
        raise DataNotFoundError(
            f"{len(files)} {what} files under {root} match {pattern} ({listing}); the pattern must name one"
        )
    return files[0]


def expand(root: Path, patterns: Sequence[str], what: str) -> list[Path]:
    """Files under ``root`` matching any of ``patterns`` (sorted, unique); ``root`` itself if it is a file."""
    if root.is_file():
        return [root]
    files = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    if not files:
        raise DataNotFoundError(
            f"no {what} files under {root} match {', '.join(patterns) or '(no pattern given in data:)'}"
        )
    return files
