"""Fixtures of the starlabel_gaiaeso tests: the seeded generator, its files and truth, a plugin manager."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from starlabel.testing import load_script

GENERATOR = Path(__file__).resolve().parents[2] / "data" / "starlabel_gaiaeso" / "make_gaiaeso.py"


@pytest.fixture(scope="session")
def gaiaeso_maker() -> ModuleType:
    """The generator script ``tests/data/starlabel_gaiaeso/make_gaiaeso.py``, imported by path."""
    return load_script(GENERATOR)


@pytest.fixture(scope="session")
def gaiaeso_files(tmp_path_factory: pytest.TempPathFactory, gaiaeso_maker: ModuleType) -> dict[str, Path]:
    """Generated HR15N (4), HR10, UVES and catalogue files (read-only for tests)."""
    return gaiaeso_maker.write(tmp_path_factory.mktemp("gaiaeso"))


@pytest.fixture(scope="session")
def gaiaeso_truth(gaiaeso_maker: ModuleType) -> dict[str, Any]:
    """Exact expected arrays of the generated files."""
    return gaiaeso_maker.truth()


@pytest.fixture(scope="session")
def gaiaeso_plugins():  # type: ignore[no-untyped-def]
    """A fresh plugin manager with the built-in plugins only (no entry points)."""
    from starlabel.plugins import load_plugins

    return load_plugins(entry_points=False, environ={})
