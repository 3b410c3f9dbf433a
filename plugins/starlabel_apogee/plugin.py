"""Hook implementations of the ``starlabel_apogee`` plugin.

Component modules are imported inside the hooks, so loading the plugin stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlabel import hookimpl

SURVEYS_DIR = Path(__file__).resolve().parent / "surveys"


@hookimpl
def register_instrument_readers() -> list[type[Any]]:
    """``apogee_apstar``, ``apogee_aspcapstar``, ``apogee_apvisit``."""
    from starlabel_apogee.apstar import ApogeeApStar
    from starlabel_apogee.apvisit import ApogeeApVisit
    from starlabel_apogee.aspcapstar import ApogeeAspcapStar

    return [ApogeeApStar, ApogeeAspcapStar, ApogeeApVisit]


@hookimpl
def register_label_sources() -> list[type[Any]]:
    """``apogee_dr17_allstar``."""
    from starlabel_apogee.allstar import ApogeeDr17AllStar

    return [ApogeeDr17AllStar]


@hookimpl
def register_survey_descriptors() -> list[Path]:
    """Every ``*.yaml`` descriptor in the package's ``surveys/`` folder."""
    return sorted(SURVEYS_DIR.glob("*.yaml"))
