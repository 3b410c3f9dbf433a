"""Hook implementations of the ``starlabel_gaiaeso`` plugin.

Component modules are imported inside the hooks, so loading the plugin stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlabel import hookimpl

SURVEYS_DIR = Path(__file__).resolve().parent / "surveys"


@hookimpl
def register_instrument_readers() -> list[type[Any]]:
    """``eso_sdp_1d``."""
    from starlabel_gaiaeso.sdp1d import EsoSdp1d

    return [EsoSdp1d]


@hookimpl
def register_label_sources() -> list[type[Any]]:
    """``gaia_eso_idr``."""
    from starlabel_gaiaeso.idr import GaiaEsoIdr

    return [GaiaEsoIdr]


@hookimpl
def register_survey_descriptors() -> list[Path]:
    """Every ``*.yaml`` descriptor in the package's ``surveys/`` folder."""
    return sorted(SURVEYS_DIR.glob("*.yaml"))
