from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from starlabel import hookimpl
from starlabel.components import InstrumentReader
from starlabel.errors import DuplicateComponentError, PluginError, PluginImportError, UnknownHookError
from starlabel.plugins import BUILTIN_PLUGINS, load_plugins


class _Reader(InstrumentReader):
    """Reads nothing."""

    name = "table_labels_twin"

    def read(self, path: Path):  # pragma: no cover
        raise NotImplementedError


class GoodPlugin:
    @hookimpl
    def register_instrument_readers(self) -> list[type]:
        return [_Reader]

    @hookimpl
    def locate_survey_data(self, survey: str, release: str | None) -> Path | None:
        return Path("/data/from/plugin") if survey == "mine" else None


class TypoPlugin:
    @hookimpl
    def register_instrument_reader(self) -> list[type]:  # typo: missing final "s"
        return []


def test_fresh_manager_has_builtins_and_no_shared_state() -> None:
    first = load_plugins(entry_points=False, environ={})
    second = load_plugins(entry_points=False, extra=[("good", GoodPlugin())], environ={})
    assert "table_labels" in first.label_sources
    assert "table_labels_twin" in second.readers
    assert "table_labels_twin" not in first.readers  # nothing leaked between managers
    assert list(first.infos) == [
        "starlabel.defaults",
        "starlabel_continuum",
        "starlabel_tables",
        "starlabel_gaia",
        "starlabel_apogee",
        "starlabel_gaiaeso",
        "starlabel_fourmost",
        "starlabel_nets",
        "starlabel_synth",
    ]
    assert len(BUILTIN_PLUGINS) == 9


def test_disable_plugins_blocks_builtin_and_extra() -> None:
    plugins = load_plugins(
        entry_points=False,
        extra=[("good", GoodPlugin())],
        environ={"STARLABEL_DISABLE_PLUGINS": " starlabel_tables , good"},
    )
    assert "table_labels" not in plugins.label_sources
    assert "table_labels_twin" not in plugins.readers
    assert plugins.infos["starlabel_tables"].blocked and plugins.infos["good"].blocked


def test_unknown_hook_is_refused_with_suggestion() -> None:
    with pytest.raises(UnknownHookError) as info:
        load_plugins(entry_points=False, extra=[("typo", TypoPlugin())], environ={})
    assert str(info.value) == (
        "plugin 'typo' implements unknown hook 'register_instrument_reader'. "
        "Did you mean register_instrument_readers? Known hooks: locate_survey_data, register_architectures, "
        "register_auxiliary_providers, register_commands, register_instrument_readers, register_label_sources, "
        "register_normalisers, register_survey_descriptors, register_synthesizers"
    )


def test_duplicate_component_across_plugins() -> None:
    class Clash:
        @hookimpl
        def register_instrument_readers(self) -> list[type]:
            return [_Reader]

    with pytest.raises(DuplicateComponentError, match="duplicate instrument reader name 'table_labels_twin'"):
        load_plugins(entry_points=False, extra=[("good", GoodPlugin()), ("clash", Clash())], environ={})


def test_hook_that_raises_or_returns_junk_names_the_plugin() -> None:
    class Raises:
        @hookimpl
        def register_label_sources(self) -> list[type]:
            raise RuntimeError("catalogue missing")

    class NotAList:
        @hookimpl
        def register_label_sources(self) -> type:
            return _Reader

    with pytest.raises(
        PluginError, match="plugin 'raises': hook register_label_sources raised RuntimeError: catalogue missing"
    ):
        load_plugins(entry_points=False, extra=[("raises", Raises())], environ={})
    with pytest.raises(PluginError, match="plugin 'junk': hook register_label_sources must return a list of classes"):
        load_plugins(entry_points=False, extra=[("junk", NotAList())], environ={})


def test_builtin_that_fails_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_builtin.py").write_text("raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginImportError) as info:
        load_plugins(builtins=("broken_builtin",), entry_points=False, environ={})
    assert "plugin 'broken_builtin' (distribution starlabel" in str(info.value)
    assert "ImportError: needs libfoo" in str(info.value)
    assert str(info.value).endswith("To run without it, block it: STARLABEL_DISABLE_PLUGINS=broken_builtin")


def test_locate_survey_data_first_result_and_core_default(tmp_path: Path) -> None:
    plugins = load_plugins(entry_points=False, extra=[("good", GoodPlugin())], environ={})
    assert plugins.locate_survey_data("mine") == Path("/data/from/plugin")
    assert plugins.locate_survey_data("unknown_survey") is None
    (tmp_path / "unknown_survey" / "dr1").mkdir(parents=True)
    os.environ["STARLABEL_DATA_DIR"] = str(tmp_path)  # removed again by the autouse fixture
    try:
        assert plugins.locate_survey_data("unknown_survey", "dr1") == tmp_path / "unknown_survey" / "dr1"
        assert plugins.locate_survey_data("unknown_survey", "dr2") == tmp_path / "unknown_survey"
        # a plugin's answer wins over the core's trylast default
        (tmp_path / "mine").mkdir()
        assert plugins.locate_survey_data("mine") == Path("/data/from/plugin")
    finally:
        del os.environ["STARLABEL_DATA_DIR"]


def _fake_distribution(site: Path, module_body: str, dist: str = "starlabel-broken", name: str = "broken") -> None:
    """Install a real (tiny) distribution into ``site``: a module plus a dist-info with an entry point."""
    (site / f"{name}_plugin.py").write_text(textwrap.dedent(module_body))
    info = site / f"{dist.replace('-', '_')}-9.9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 9.9.9\n")
    (info / "entry_points.txt").write_text(f"[starlabel]\n{name} = {name}_plugin\n")
    (info / "RECORD").write_text("")


def _run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STARLABEL_")} | env
    return subprocess.run(
        [sys.executable, "-m", "starlabel", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_entry_point_plugin_that_raises_on_import_stops_the_cli(tmp_path: Path) -> None:
    _fake_distribution(tmp_path, "import numpy\nraise RuntimeError('incompatible numpy')\n")
    env = {"PYTHONPATH": str(tmp_path)}
    result = _run_cli("plugins", env=env)
    assert result.returncode == 3
    assert result.stderr == (
        "starlabel: error: plugin 'broken' (distribution starlabel-broken 9.9.9) failed to import: "
        "RuntimeError: incompatible numpy\n"
        "  To run without it, block it: STARLABEL_DISABLE_PLUGINS=broken\n"
    )
    blocked = _run_cli("plugins", "--json", env=env | {"STARLABEL_DISABLE_PLUGINS": "broken"})
    assert blocked.returncode == 0, blocked.stderr
    assert '"broken"' not in blocked.stdout
    listed = _run_cli("plugins", "--all", "--json", env=env | {"STARLABEL_DISABLE_PLUGINS": "broken"})
    assert '"name": "broken"' in listed.stdout and '"blocked": true' in listed.stdout


def test_entry_point_plugin_with_unknown_hook_stops_the_cli(tmp_path: Path) -> None:
    _fake_distribution(
        tmp_path,
        """
        from starlabel import hookimpl

        @hookimpl
        def register_architecture():
            return []
        """,
        dist="starlabel-typo",
        name="typo",
    )
    result = _run_cli("plugins", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 3
    assert (
        "plugin 'typo' implements unknown hook 'register_architecture'. Did you mean register_architectures?"
        in result.stderr
    )
    autoload_off = _run_cli(
        "plugins", "--json", env={"PYTHONPATH": str(tmp_path), "STARLABEL_DISABLE_PLUGIN_AUTOLOAD": "1"}
    )
    assert autoload_off.returncode == 0
    assert '"typo"' not in autoload_off.stdout
