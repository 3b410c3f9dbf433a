"""``Spectra.ivar_from_sigma``: 1/sigma² only where it is a finite positive number."""

from __future__ import annotations

import numpy as np

from starlabel.containers import Spectra


def test_ivar_from_sigma_is_zero_where_sigma_is_bad_or_its_square_underflows() -> None:
    sigma = np.array([0.5, 0.0, -1.0, np.nan, np.inf, 1e-300, 1e-150, 5e-324])
    ivar = Spectra.ivar_from_sigma(sigma)
    assert np.all(np.isfinite(ivar))
    np.testing.assert_array_equal(ivar[:6], [4.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert np.isclose(ivar[6], 1e300) and ivar[7] == 0.0
