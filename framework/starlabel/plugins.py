"""Builds the plugin manager and exposes it through a small typed facade.

This is the only module that calls ``pm.hook.*``. Nothing here runs at import time: every caller
(the CLI, a test) builds its own :class:`Plugins` with :func:`load_plugins`.

Order of registration: the core's defaults and the built-in plugins from :data:`BUILTIN_PLUGINS`,
then third-party plugins from the ``starlabel`` entry-point group (unless
``STARLABEL_DISABLE_PLUGIN_AUTOLOAD=1``), then any ``extra`` plugin objects; finally unknown hooks are
refused and the registries are filled.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from starlabel import hookspecs
from starlabel._version import __version__
from starlabel.components import COMPONENT_KINDS, Component
from starlabel.errors import PluginError, PluginImportError, UnknownHookError
from starlabel.markers import PROJECT
from starlabel.registry import Registry

if TYPE_CHECKING:
    import click

BUILTIN_PLUGINS: tuple[str, ...] = (
    "starlabel.defaults",
    "starlabel_continuum.plugin",
    "starlabel_tables.plugin",
    "starlabel_gaia.plugin",
    "starlabel_apogee.plugin",
    "starlabel_gaiaeso.plugin",
    "starlabel_fourmost.plugin",
    "starlabel_nets.plugin",
    "starlabel_synth.plugin",
)
"""Modules registered as built-in plugins, in order. Each is shaped like a third-party plugin."""

CORE_PLUGIN = "starlabel.defaults"
DISABLE_ENV = "STARLABEL_DISABLE_PLUGINS"
NO_AUTOLOAD_ENV = "STARLABEL_DISABLE_PLUGIN_AUTOLOAD"

_REGISTRATION_HOOKS: dict[str, str] = {
    "reader": "register_instrument_readers",
    "auxiliary": "register_auxiliary_providers",
    "label_source": "register_label_sources",
    "architecture": "register_architectures",
    "synthesizer": "register_synthesizers",
    "normaliser": "register_normalisers",
}


@dataclass
class PluginInfo:
    """What ``starlabel plugins`` shows about one plugin."""

    name: str
    distribution: str
    version: str
    file: str
    builtin: bool
    blocked: bool = False
    hooks: list[str] = field(default_factory=list)
    components: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def plugin_name(module_name: str) -> str:
    """Name of a built-in plugin: its top-level package (``starlabel_gaia.plugin`` → ``starlabel_gaia``)."""
    return module_name if module_name == CORE_PLUGIN else module_name.split(".")[0]


def blocked_names(environ: Mapping[str, str]) -> set[str]:
    """Plugin names listed in ``STARLABEL_DISABLE_PLUGINS`` (comma separated)."""
    return {name.strip() for name in environ.get(DISABLE_ENV, "").split(",") if name.strip()}


class Plugins:
    """A loaded plugin manager with one registry per component kind.

    Parameters
    ----------
    pm : pluggy.PluginManager
        Manager with every plugin registered and checked.
    infos : dict of str to PluginInfo
        Plugins seen, including blocked ones, by name.
    """

    def __init__(self, pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
        self.pm = pm
        self.infos = infos
        self.registries: dict[str, Registry[Any]] = {kind: Registry(base) for kind, base in COMPONENT_KINDS.items()}
        for kind, hook in _REGISTRATION_HOOKS.items():
            for plugin, classes in self._collect(hook):
                if not isinstance(classes, (list, tuple)):
                    raise PluginError(f"plugin {plugin!r}: hook {hook} must return a list of classes, got {classes!r}")
                for cls in classes:
                    self.registries[kind].add(cls, plugin)
                    self.infos[plugin].components.setdefault(kind, []).append(
                        {"name": cls.name, "status": cls.status, "class": f"{cls.__module__}.{cls.__qualname__}"}
                    )

    # ------------------------------------------------------------------------------------------ registries
    def registry(self, kind: str) -> Registry[Any]:
        """Registry of ``kind`` (one of :data:`starlabel.components.COMPONENT_KINDS`)."""
        return self.registries[kind]

    @property
    def readers(self) -> Registry[Any]:
        """Instrument readers."""
        return self.registries["reader"]

    @property
    def auxiliary(self) -> Registry[Any]:
        """Auxiliary providers."""
        return self.registries["auxiliary"]

    @property
    def label_sources(self) -> Registry[Any]:
        """Label sources."""
        return self.registries["label_source"]

    @property
    def architectures(self) -> Registry[Any]:
        """Network architectures."""
        return self.registries["architecture"]

    @property
    def normalisers(self) -> Registry[Any]:
        """Continuum normalisers."""
        return self.registries["normaliser"]

    @property
    def synthesizers(self) -> Registry[Any]:
        """Synthesizers."""
        return self.registries["synthesizer"]

    def components(self) -> Iterable[tuple[str, type[Component], str]]:
        """Every registered component as ``(kind, class, plugin)``."""
        for kind, registry in self.registries.items():
            for entry in registry:
                yield kind, entry.cls, entry.plugin

    # ------------------------------------------------------------------------------------------ other hooks
    def survey_descriptors(self) -> list[tuple[Path, str]]:
        """Descriptor files registered by plugins, as ``(path, plugin)``."""
        return [(Path(p), plugin) for plugin, paths in self._collect("register_survey_descriptors") for p in paths]

    def locate_survey_data(self, survey: str, release: str | None = None) -> Path | None:
        """First plugin answer for where ``survey``'s data live locally, or None."""
        found = self.pm.hook.locate_survey_data(survey=survey, release=release)
        return Path(found) if found is not None else None

    def add_commands(self, cli: click.Group) -> None:
        """Let every plugin add sub-commands to ``cli``."""
        self.pm.hook.register_commands(cli=cli)

    def versions(self) -> dict[str, str]:
        """``{plugin: version}`` of the active plugins, for provenance records."""
        return {name: info.version for name, info in self.infos.items() if not info.blocked}

    def _collect(self, hook: str) -> list[tuple[str, Any]]:
        """Call each implementation of a collected hook separately, to know which plugin said what."""
        results = []
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                result = impl.function()
            except Exception as error:
                raise PluginError(
                    f"plugin {impl.plugin_name!r}: hook {hook} raised {type(error).__name__}: {error}"
                ) from error
            if result is not None:
                results.append((impl.plugin_name, result))
        return results


def load_plugins(
    *,
    builtins: Sequence[str] = BUILTIN_PLUGINS,
    entry_points: bool | None = None,
    extra: Sequence[tuple[str, object]] = (),
    environ: Mapping[str, str] | None = None,
) -> Plugins:
    """Build a fresh plugin manager.

    Parameters
    ----------
    builtins : sequence of str
        Modules to register as built-in plugins.
    entry_points : bool, optional
        Load third-party plugins from the ``starlabel`` entry-point group. Default: yes, unless
        ``STARLABEL_DISABLE_PLUGIN_AUTOLOAD`` is set to a true value.
    extra : sequence of (name, plugin)
        Further plugin objects (modules, classes or instances with hook implementations); used by tests.
    environ : mapping, optional
        Environment to read the ``STARLABEL_*`` switches from (default :data:`os.environ`).

    Returns
    -------
    Plugins

    Raises
    ------
    PluginImportError
        A plugin failed to import.
    UnknownHookError
        A plugin implements a hook that is not specified.
    DuplicateComponentError, InvalidComponentError, PluginError
        A plugin's registrations are inconsistent.
    """
    environ = os.environ if environ is None else environ
    if entry_points is None:
        entry_points = environ.get(NO_AUTOLOAD_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}
    blocked = blocked_names(environ)
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}

    for module_name in builtins:
        name = plugin_name(module_name)
        info = PluginInfo(name, "starlabel", __version__, "", builtin=True)
        infos[name] = info
        if name in blocked:
            info.blocked = True
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            raise PluginImportError(name, "starlabel", __version__, error) from error
        info.file = str(getattr(module, "__file__", ""))
        _register(pm, module, name)

    if entry_points:
        for ep in sorted(metadata.entry_points(group=PROJECT), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else "unknown"
            version = ep.dist.version if ep.dist else "unknown"
            info = PluginInfo(ep.name, dist, version, "", builtin=False)
            if ep.name in infos:
                raise PluginError(
                    f"entry point {ep.name!r} of distribution {dist} {version} reuses the name of an "
                    f"already registered plugin; rename the entry point"
                )
            infos[ep.name] = info
            if ep.name in blocked or dist in blocked:
                info.blocked = True
                continue
            try:
                plugin = ep.load()
            except Exception as error:
                raise PluginImportError(ep.name, dist, version, error) from error
            info.file = str(getattr(plugin, "__file__", "") or getattr(plugin, "__module__", ""))
            _register(pm, plugin, ep.name)

    for name, plugin in extra:
        infos[name] = PluginInfo(name, "(in-process)", "", str(getattr(plugin, "__file__", "")), builtin=False)
        if name in blocked:
            infos[name].blocked = True
            continue
        _register(pm, plugin, name)

    _check_hooks(pm)
    for name, info in infos.items():
        plugin = pm.get_plugin(name)
        if plugin is not None:
            info.hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
    return Plugins(pm, infos)


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as error:
        raise PluginError(f"plugin {name!r}: {error}") from error
    except ValueError as error:
        raise PluginError(f"plugin {name!r} cannot be registered: {error}") from error


def _check_hooks(pm: pluggy.PluginManager) -> None:
    """Refuse hook implementations that match no specification (pluggy's check_pending, with hints)."""
    known = [name for name in dir(hookspecs) if name.startswith(("register_", "locate_"))]
    for name in dir(pm.hook):
        if name.startswith("_"):
            continue
        caller = getattr(pm.hook, name)
        if isinstance(caller, pluggy.HookCaller) and caller.spec is None:
            for impl in caller.get_hookimpls():
                if not impl.optionalhook:
                    raise UnknownHookError(impl.plugin_name, name, known)
    pm.check_pending()
