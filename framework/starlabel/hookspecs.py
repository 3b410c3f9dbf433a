"""Hook specifications: the contract between the starlabel core and its plugins.

This module only declares. Each registration hook is *collected*: every plugin that implements it
contributes a list of component classes, and the core files them into one registry per kind. Class
bodies are imported when the plugin module is; keep heavy imports (torch, zarr) inside methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlabel.markers import hookspec

if TYPE_CHECKING:
    import click

    from starlabel.components import (
        Architecture,
        AuxiliaryProvider,
        InstrumentReader,
        LabelSource,
        Normaliser,
        Synthesizer,
    )


@hookspec
def register_instrument_readers() -> list[type[InstrumentReader]]:
    """Return instrument-reader classes.

    A reader turns one survey file into spectra on the instrument's native wavelength grid (flux,
    uncertainty, mask, source ids). Its ``identify(path)`` must be cheap and never raise.
    """


@hookspec
def register_auxiliary_providers() -> list[type[AuxiliaryProvider]]:
    """Return auxiliary-provider classes.

    A provider supplies per-star non-spectral inputs (photometry, parallax, XP coefficients, table
    columns) aligned to source ids, with a mask of missing values.
    """


@hookspec
def register_label_sources() -> list[type[LabelSource]]:
    """Return label-source classes.

    A label source supplies reference labels with errors and quality flags, after its selection cuts.
    """


@hookspec
def register_architectures() -> list[type[Architecture]]:
    """Return network-architecture classes, built from the input shapes a descriptor implies."""


@hookspec
def register_synthesizers() -> list[type[Synthesizer]]:
    """Return synthesizer classes: forward models from labels to normalised spectra."""


@hookspec
def register_normalisers() -> list[type[Normaliser]]:
    """Return normaliser classes: pseudo-continuum normalisation methods named by ``normalise.method``."""


@hookspec
def register_survey_descriptors() -> list[Path]:
    """Return paths of survey descriptor YAML files shipped inside the plugin's package.

    The core finds a descriptor by name (its ``name:`` field) among these and the ``surveys/``
    folders it searches.
    """


@hookspec(firstresult=True)
def locate_survey_data(survey: str, release: str | None) -> Path | None:
    """Return a local folder or file holding the data of ``survey`` (optionally ``release``), or None.

    The first non-None answer wins. The core's own answer (the ``STARLABEL_DATA_DIR`` folder) is
    marked ``trylast`` so any plugin that knows better is asked first.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``starlabel`` command-line group ``cli``."""
