"""The example third-party package (tests/third_party/starlabel_example) proves the entry-point route."""

from __future__ import annotations

import importlib.metadata as metadata
from pathlib import Path

import numpy as np
import pytest

from starlabel.descriptor import load_descriptor
from starlabel.errors import DescriptorError
from starlabel.identify import choose_reader
from starlabel.plugins import load_plugins

DESCRIPTOR = """\
schema_version: 1
name: example_survey
instrument:
  reader: example_ascii
  options: {min_error: 0.001}
grid: {start: 500, stop: 502, step: 0.5}
"""


@pytest.fixture
def spectrum(tmp_path: Path) -> Path:
    path = tmp_path / "star.txt"
    path.write_text(
        "# starlabel-example-ascii\n# source_id: 5853418002145112704\n"
        "500.0 1.0 0.01\n500.5 0.8 0.0001\n501.0 0.9 0.02\n501.5 nan 0.02\n502.0 1.0 0.01\n"
    )
    return path


def test_installed_as_a_real_distribution() -> None:
    eps = [ep for ep in metadata.entry_points(group="starlabel") if ep.name == "example"]
    assert len(eps) == 1 and eps[0].dist is not None and eps[0].dist.name == "starlabel-example"


def test_component_usable_from_a_descriptor(tmp_path: Path, spectrum: Path) -> None:
    plugins = load_plugins(environ={})
    (tmp_path / "example.yaml").write_text(DESCRIPTOR)
    resolved = load_descriptor(tmp_path / "example.yaml", plugins)
    reader_cls = choose_reader(spectrum, plugins.readers)
    assert reader_cls.name == resolved.model.instrument.reader == "example_ascii"
    spectra = reader_cls(resolved.options["instrument"]).read(spectrum)
    assert spectra.source_id.tolist() == [5853418002145112704]  # exact, not via float
    np.testing.assert_allclose(spectra.ivar[0], [1e4, 0.0, 2500.0, 2500.0, 1e4])
    assert spectra.mask[0].tolist() == [False, True, False, True, False]


def test_disable_plugins_removes_it(tmp_path: Path) -> None:
    plugins = load_plugins(environ={"STARLABEL_DISABLE_PLUGINS": "example"})
    assert "example_ascii" not in plugins.readers
    assert plugins.infos["example"].blocked
    (tmp_path / "example.yaml").write_text(DESCRIPTOR)
    with pytest.raises(DescriptorError, match=r":4: instrument.reader: unknown instrument reader 'example_ascii'"):
        load_descriptor(tmp_path / "example.yaml", plugins)


def test_autoload_switch_skips_entry_points() -> None:
    plugins = load_plugins(environ={"STARLABEL_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "example" not in plugins.infos and "example_ascii" not in plugins.readers
