"""Errors raised by the ``starlabel_continuum`` normalisers."""

from __future__ import annotations

from starlabel.errors import StarlabelError


class ContinuumInputError(StarlabelError, ValueError):
    """Arrays handed to a normaliser do not fit together, or an arm is not a valid wavelength range."""

    exit_code = 2
