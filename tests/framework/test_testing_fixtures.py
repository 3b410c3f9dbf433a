"""The fixtures starlabel.testing gives plugin authors behave as documented."""

from __future__ import annotations

import numpy as np

from starlabel.containers import Spectra
from starlabel.descriptor import GridSection
from starlabel.plugins import Plugins


def test_tiny_grid(tiny_grid: GridSection) -> None:
    wave = tiny_grid.wavelength()
    assert wave.shape == (41,) and wave[0] == 500.0 and wave[-1] == 520.0


def test_fake_spectra_are_seeded_and_consistent(fake_spectra: Spectra, tiny_grid: GridSection) -> None:
    assert len(fake_spectra) == 8 and fake_spectra.flux.shape == (8, 41)
    assert fake_spectra.mask[:, 3].all() and (fake_spectra.ivar[:, 3] == 0).all()
    line = int(np.argmin(np.abs(tiny_grid.wavelength() - 510.0)))
    np.testing.assert_allclose(1 - fake_spectra.flux[:, line], fake_spectra.meta["depth"], atol=0.1)
    assert fake_spectra.source_id.dtype == np.int64 and fake_spectra.source_id[0] == 4_000_000_000_000_000_000


def test_factory_builds_independent_managers(starlabel_plugins_factory, starlabel_plugins: Plugins) -> None:
    other = starlabel_plugins_factory(environ={"STARLABEL_DISABLE_PLUGINS": "starlabel_tables"})
    assert "table_labels" in starlabel_plugins.label_sources
    assert "table_labels" not in other.label_sources
    assert "example" not in starlabel_plugins.infos  # entry points off by default


def test_spectra_container_refuses_float_ids(fake_spectra: Spectra) -> None:
    import pytest

    with pytest.raises(TypeError, match="never float"):
        Spectra(
            fake_spectra.source_id.astype(float),
            fake_spectra.wavelength,
            fake_spectra.flux,
            fake_spectra.ivar,
            fake_spectra.mask,
        )
    with pytest.raises(ValueError, match=r"wavelength shape \(40,\) fits neither"):
        Spectra(
            fake_spectra.source_id,
            fake_spectra.wavelength[:40],
            fake_spectra.flux,
            fake_spectra.ivar,
            fake_spectra.mask,
        )
