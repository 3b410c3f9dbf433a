"""The core's own hook implementations, registered like any built-in plugin.

They answer last (``trylast``), so every plugin that knows better is asked first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlabel.markers import hookimpl

DATA_DIR_ENV = "STARLABEL_DATA_DIR"


@hookimpl
def register_normalisers() -> list[type[Any]]:
    """``none``, the default of ``normalise.method``."""
    from starlabel.identity_normaliser import NoNormalisation

    return [NoNormalisation]


@hookimpl(trylast=True)
def locate_survey_data(survey: str, release: str | None) -> Path | None:
    """Look for ``$STARLABEL_DATA_DIR/<survey>/<release>``, then ``$STARLABEL_DATA_DIR/<survey>``."""
    root = os.environ.get(DATA_DIR_ENV)
    if not root:
        return None
    candidates = [Path(root) / survey / release] if release else []
    candidates.append(Path(root) / survey)
    return next((path for path in candidates if path.exists()), None)
