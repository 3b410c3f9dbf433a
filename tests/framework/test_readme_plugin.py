"""The README's "write your own plugin" example works as printed."""

from __future__ import annotations

import re
import types
from pathlib import Path

import numpy as np

from starlabel.identify import choose_reader
from starlabel.plugins import load_plugins

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_plugin() -> types.ModuleType:
    text = README.read_text()
    section = text[text.index("## Write your own plugin") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 17
    module = types.ModuleType("my_survey.plugin")
    exec(compile(code, "README.md", "exec"), module.__dict__)
    return module


def test_readme_plugin_registers_and_reads(tmp_path: Path) -> None:
    plugins = load_plugins(entry_points=False, extra=[("my_survey", readme_plugin())], environ={})
    assert plugins.infos["my_survey"].hooks == ["register_instrument_readers"]
    path = tmp_path / "batch.npz"
    err = np.array([[0.1, 0.0, 0.2]])
    np.savez(
        path, ids=np.array([7, 8]), wave=np.array([1.0, 2.0, 3.0]), flux=np.ones((2, 3)), err=np.vstack([err, err])
    )
    reader = choose_reader(path, plugins.readers)
    assert reader.name == "my_survey_npz"
    spectra = reader().read(path)
    assert spectra.source_id.tolist() == [7, 8]
    assert spectra.mask[0].tolist() == [False, True, False]
    np.testing.assert_allclose(spectra.ivar[0], [100.0, 0.0, 25.0])
