"""Fixtures of the starlabel_fourmost tests: the seeded generators, their files, a plugin manager."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from starlabel.testing import load_script

DATA = Path(__file__).resolve().parents[2] / "data"


def _load(folder: str, script: str) -> ModuleType:
    return load_script(DATA / folder / script)


@pytest.fixture(scope="session")
def fourmost_maker() -> ModuleType:
    """The generator script ``tests/data/starlabel_fourmost/make_fourmost.py``, imported by path."""
    return _load("starlabel_fourmost", "make_fourmost.py")


@pytest.fixture(scope="session")
def fourmost_files(tmp_path_factory: pytest.TempPathFactory, fourmost_maker: ModuleType) -> dict[str, Path]:
    """Generated LRS (3), HRS and label files on the default stand-in grid (read-only for tests)."""
    return fourmost_maker.write(tmp_path_factory.mktemp("fourmost"))


@pytest.fixture(scope="session")
def gaiaeso_generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files of the Gaia-ESO generator (ESO SDP 1D spectra of GIRAFFE and UVES)."""
    return _load("starlabel_gaiaeso", "make_gaiaeso.py").write(tmp_path_factory.mktemp("gaiaeso"))


@pytest.fixture(scope="session")
def fourmost_plugins():  # type: ignore[no-untyped-def]
    """A fresh plugin manager with the built-in plugins only (no entry points)."""
    from starlabel.plugins import load_plugins

    return load_plugins(entry_points=False, environ={})
