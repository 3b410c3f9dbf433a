"""Finding survey descriptors by path or by name.

A name is looked up, in order, in the folders of ``STARLABEL_SURVEY_PATH`` (``os.pathsep``
separated), in ``./surveys`` of the working directory, then among the files plugins register. The
first file whose ``name:`` (or file stem) matches wins, so a local file can override a shipped one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from starlabel.errors import DescriptorNotFoundError

if TYPE_CHECKING:
    from starlabel.plugins import Plugins

SURVEY_PATH_ENV = "STARLABEL_SURVEY_PATH"


@dataclass(frozen=True)
class KnownSurvey:
    """A descriptor file found on the search path."""

    name: str
    path: Path
    origin: str


def search_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Folders searched for descriptor files, before plugin-registered ones."""
    environ = os.environ if environ is None else environ
    dirs = [Path(p) for p in environ.get(SURVEY_PATH_ENV, "").split(os.pathsep) if p]
    return [*dirs, Path.cwd() / "surveys"]


def known_surveys(plugins: Plugins, environ: Mapping[str, str] | None = None) -> dict[str, KnownSurvey]:
    """Every descriptor reachable by name; earlier places shadow later ones."""
    found: dict[str, KnownSurvey] = {}
    candidates = [(p, str(d)) for d in search_dirs(environ) if d.is_dir() for p in sorted(d.glob("*.y*ml"))]
    candidates += [(p, f"plugin {plugin}") for p, plugin in plugins.survey_descriptors()]
    for path, origin in candidates:
        name = _declared_name(path) or path.stem
        found.setdefault(name, KnownSurvey(name, path, origin))
    return found


def find_descriptor(ref: str | Path, plugins: Plugins, environ: Mapping[str, str] | None = None) -> Path:
    """Return the descriptor file for ``ref``: an existing file path, or a survey name.

    Raises
    ------
    DescriptorNotFoundError
        With the known survey names and the closest one.
    """
    path = Path(ref)
    if path.is_file():
        return path
    known = known_surveys(plugins, environ)
    if str(ref) in known:
        return known[str(ref)].path
    raise DescriptorNotFoundError(str(ref), known)


def _declared_name(path: Path) -> str | None:
    """The ``name:`` a descriptor declares, or None if the file cannot be read (it is reported later)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None
