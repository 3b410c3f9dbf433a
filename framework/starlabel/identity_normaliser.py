"""The core's ``none`` normaliser: spectra that come continuum-normalised pass through unchanged.

It is the default of ``normalise.method``, so the core provides it itself (see :mod:`starlabel.defaults`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from starlabel.components import Normalised, Normaliser


class NoNormalisation(Normaliser):
    """Leave the flux as it is (continuum 1): for spectra already normalised by the survey pipeline."""

    name = "none"
    citation = ""
    data_model_url = ""
    status = "stable"

    def normalise(
        self,
        wavelength: np.ndarray,
        flux: np.ndarray,
        ivar: np.ndarray,
        mask: np.ndarray,
        arms: Sequence[tuple[float, float]] = (),
    ) -> Normalised:
        """Return the inputs, with a continuum of ones."""
        return Normalised(flux, ivar, mask, np.ones_like(flux))
