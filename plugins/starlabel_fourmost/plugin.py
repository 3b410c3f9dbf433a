"""Hook implementations of the ``starlabel_fourmost`` plugin (4MOST LRS, stub).

Component modules are imported inside the hooks, so loading the plugin stays cheap. The reader reuses
the ESO SDP code of the ``starlabel_gaiaeso`` plugin package, as any third-party plugin may depend on
another installed plugin package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlabel import hookimpl

SURVEYS_DIR = Path(__file__).resolve().parent / "surveys"


@hookimpl
def register_instrument_readers() -> list[type[Any]]:
    """``fourmost_lr_l1`` (stub)."""
    from starlabel_fourmost.l1 import FourmostLrL1

    return [FourmostLrL1]


@hookimpl
def register_survey_descriptors() -> list[Path]:
    """Every ``*.yaml`` descriptor in the package's ``surveys/`` folder."""
    return sorted(SURVEYS_DIR.glob("*.yaml"))
