"""Name → component-class registries, one per component kind."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from starlabel.components import STATUSES, Component, LabelCuts, LabelSource
from starlabel.errors import DuplicateComponentError, InvalidComponentError, UnknownComponentError

C = TypeVar("C", bound=Component)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def qualname(cls: type) -> str:
    """``module.Class`` of a class, for messages."""
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class Entry(Generic[C]):
    """A registered component class and the plugin that contributed it."""

    cls: type[C]
    plugin: str


class Registry(Generic[C]):
    """Components of one kind, by name.

    Parameters
    ----------
    base : type[Component]
        Every registered class must subclass it.
    """

    def __init__(self, base: type[C]) -> None:
        self.base = base
        self.kind = base.kind
        self._entries: dict[str, Entry[C]] = {}

    def add(self, cls: object, plugin: str) -> None:
        """Register ``cls`` from ``plugin``, refusing invalid classes and duplicate names."""
        check_component(cls, self.base, plugin)
        name = cls.name  # type: ignore[attr-defined]
        if name in self._entries:
            first = self._entries[name]
            raise DuplicateComponentError(
                self.kind,
                name,
                f"{qualname(first.cls)} (plugin {first.plugin})",
                f"{qualname(cls)} (plugin {plugin})",  # type: ignore[arg-type]
            )
        self._entries[name] = Entry(cls, plugin)  # type: ignore[arg-type]

    def get(self, name: str) -> type[C]:
        """Return the class registered as ``name``; unknown names raise with suggestions."""
        try:
            return self._entries[name].cls
        except KeyError:
            raise UnknownComponentError(self.kind, name, self._entries) from None

    def entry(self, name: str) -> Entry[C]:
        """Return the :class:`Entry` for ``name``: the class and the plugin that registered it."""
        self.get(name)
        return self._entries[name]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[C]]:
        return iter(self._entries[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._entries)


def check_component(cls: object, base: type[Component], plugin: str) -> None:
    """Raise :class:`InvalidComponentError` unless ``cls`` is a complete ``base`` subclass."""
    where = f"plugin {plugin!r} registered {cls!r} as {base.kind}"
    if not isinstance(cls, type) or not issubclass(cls, base):
        raise InvalidComponentError(f"{where}: it must be a subclass of {qualname(base)}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidComponentError(
            f"{where}: its 'name' must be lower-case letters, digits and underscores, got {name!r}"
        )
    if cls.status not in STATUSES:
        raise InvalidComponentError(f"{where}: status {cls.status!r} is not one of {', '.join(STATUSES)}")
    if not (isinstance(cls.Options, type) and issubclass(cls.Options, BaseModel)):
        raise InvalidComponentError(f"{where}: 'Options' must be a pydantic model class")
    if issubclass(cls, LabelSource) and not (isinstance(cls.Cuts, type) and issubclass(cls.Cuts, LabelCuts)):
        raise InvalidComponentError(f"{where}: 'Cuts' must subclass {qualname(LabelCuts)}")
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    if abstract:
        raise InvalidComponentError(f"{where}: it does not implement {', '.join(abstract)}")
