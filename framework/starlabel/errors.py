"""Typed errors raised by starlabel.

Every error says what went wrong, where (file, line, key, plugin) and what is allowed or what would fix
it. The command line prints ``str(error)`` and exits with :attr:`StarlabelError.exit_code`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlabel.suggest import did_you_mean


class StarlabelError(Exception):
    """Base class of every error starlabel raises on purpose."""

    exit_code: int = 1


# --------------------------------------------------------------------------------------------------- plugins
class PluginError(StarlabelError):
    """A plugin could not be loaded, validated or registered."""

    exit_code = 3


class PluginImportError(PluginError):
    """A plugin module or entry point raised while being imported."""

    def __init__(self, plugin: str, distribution: str, version: str, error: BaseException) -> None:
        self.plugin, self.distribution, self.version, self.original = plugin, distribution, version, error
        super().__init__(
            f"plugin {plugin!r} (distribution {distribution} {version}) failed to import: "
            f"{type(error).__name__}: {error}\n"
            f"  To run without it, block it: STARLABEL_DISABLE_PLUGINS={plugin}"
        )


class UnknownHookError(PluginError):
    """A plugin implements a hook that no specification declares."""

    def __init__(self, plugin: str, hook: str, known: Sequence[str]) -> None:
        self.plugin, self.hook = plugin, hook
        super().__init__(
            f"plugin {plugin!r} implements unknown hook {hook!r}.{did_you_mean(hook, known)} "
            f"Known hooks: {', '.join(sorted(known))}"
        )


class DuplicateComponentError(PluginError):
    """Two components of one kind share a name."""

    def __init__(self, kind: str, name: str, first: str, second: str) -> None:
        self.kind, self.name = kind, name
        super().__init__(
            f"duplicate {kind} name {name!r}: {first} and {second} both register it; "
            f"rename one of them or block one plugin with STARLABEL_DISABLE_PLUGINS"
        )


class InvalidComponentError(PluginError):
    """A hook returned something that is not a valid component class."""


# ------------------------------------------------------------------------------------------------ components
class UnknownComponentError(StarlabelError, LookupError):
    """A name asked for is not registered for that kind of component."""

    exit_code = 2

    def __init__(self, kind: str, name: str, available: Iterable[str]) -> None:
        self.kind, self.name = kind, name
        self.available = sorted(available)
        listing = ", ".join(self.available) if self.available else "(none installed)"
        super().__init__(f"unknown {kind} {name!r}.{did_you_mean(name, self.available)} Available: {listing}")


class ReaderSelectionError(StarlabelError):
    """No reader, or more than one equally good reader, claims a file."""

    exit_code = 2


class NoReaderError(ReaderSelectionError):
    """No registered reader identifies the file."""

    def __init__(self, path: str, tried: Sequence[str]) -> None:
        self.path, self.tried = path, list(tried)
        super().__init__(
            f"{path}: no instrument reader recognises this file (tried: {', '.join(tried) or 'none'}); "
            f"name the reader in the descriptor (instrument.reader) or check the file's format"
        )


class AmbiguousReaderError(ReaderSelectionError):
    """Several readers of equal priority identify the file."""

    def __init__(self, path: str, candidates: Sequence[str]) -> None:
        self.path, self.candidates = path, list(candidates)
        super().__init__(
            f"{path}: ambiguous, several readers of equal priority recognise this file: "
            f"{', '.join(candidates)}; name one in the descriptor (instrument.reader)"
        )


# ----------------------------------------------------------------------------------------------- descriptors
@dataclass(frozen=True)
class DescriptorIssue:
    """One problem found in a survey descriptor.

    Attributes
    ----------
    file : str
        Descriptor file as given by the user.
    line : int | None
        1-based line of the offending key or value, when known.
    key : str
        Dotted key, e.g. ``auxiliary[1].provider``; empty for the document as a whole.
    message : str
        What is wrong and what is allowed.
    column : int | None
        1-based column, for syntax errors.
    """

    file: str
    line: int | None
    key: str
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class DescriptorError(StarlabelError):
    """A survey descriptor is invalid; holds every problem found, one per line."""

    exit_code = 2

    def __init__(self, issues: Sequence[DescriptorIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class DescriptorNotFoundError(StarlabelError, FileNotFoundError):
    """A descriptor name or path resolves to no file."""

    exit_code = 2

    def __init__(self, ref: str, known: Iterable[str]) -> None:
        self.ref = ref
        known = sorted(known)
        super().__init__(
            f"no survey descriptor {ref!r}: not a file, and not a known survey name."
            f"{did_you_mean(ref, known)} Known surveys: {', '.join(known) or '(none)'}"
        )


# ------------------------------------------------------------------------------------------------ data files
class DataFileError(StarlabelError):
    """A data file cannot be read as the component expects; names the file and the fix."""

    exit_code = 2

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class MissingColumnError(DataFileError, KeyError):
    """A table lacks a column a component needs."""

    def __init__(self, path: str, column: str, available: Sequence[str], hint: str = "") -> None:
        self.column = column
        listing = ", ".join(available)
        super().__init__(
            path,
            f"no column {column!r}.{did_you_mean(column, available)} Columns in the file: {listing}"
            + (f". {hint}" if hint else ""),
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


# ---------------------------------------------------------------------------------------------------- storage
class StorageError(StarlabelError):
    """A file or folder could not be written or read: read-only file system, permissions, disk full.

    Raised by :func:`starlabel.storage.storage_errors` when no more specific error type is given; the
    stores, catalogues, bundles and training runs raise their own error types with the same message.
    """

    exit_code = 2


# ---------------------------------------------------------------------------------------------------- simulation
class SimulationError(StarlabelError):
    """Simulating or degrading spectra is impossible as asked: a component that cannot write its format,
    a label the synthesizer does not model, a target grid the source does not cover."""

    exit_code = 2
