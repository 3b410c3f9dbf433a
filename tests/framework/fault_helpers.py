"""Storage faults on demand, for everything written under one folder: a read-only or forbidden location, a full disk.

Tests usually run as root in containers, where ``chmod`` does not stop a write, and mounting a small or
read-only file system needs privileges; so the faults are injected where Python touches the file system
(``open``, ``os.open``, ``os.mkdir``, ``os.replace``, ``os.rename``, ``os.link``, ``os.unlink``,
``os.rmdir``) and where safetensors writes from Rust (``save_file``, redirected through Python ``open``).
Only paths under ``root`` whose file name matches ``names`` (a ``fnmatch`` pattern, default every name)
are affected, so reading code, libraries and other files works as usual.

* :meth:`FaultyDisk.read_only` (``errno.EROFS``, or ``errno.EACCES`` for missing permissions): creating,
  writing, renaming or removing anything under ``root`` fails, as on a read-only mount.
* :meth:`FaultyDisk.full`: writes succeed until a byte budget or a number of ``write`` calls is used up,
  then fail with ``errno.ENOSPC`` (the write that does not fit writes nothing), as on a full disk: the
  files opened so far stay, partly written.

Use as a context manager (it undoes its own patches on exit); :attr:`FaultyDisk.failures` counts the
faults raised and :attr:`FaultyDisk.writes` the writes that went through.
"""

from __future__ import annotations

import builtins
import errno
import fnmatch
import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class _CountingFile:
    """A file object whose ``write`` draws on the disk's budget; everything else goes to the real file."""

    def __init__(self, raw: Any, disk: FaultyDisk, path: str) -> None:
        self._raw, self._disk, self._path = raw, disk, path

    def write(self, data: Any) -> int:
        size = len(data) if isinstance(data, str) else memoryview(data).nbytes
        self._disk._spend(size, self._path)
        return self._raw.write(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def __iter__(self) -> Any:
        return iter(self._raw)

    def __enter__(self) -> _CountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()


class FaultyDisk:
    """Injects one kind of storage fault under ``root`` while active (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        code: int,
        *,
        names: str = "*",
        budget_bytes: int | None = None,
        budget_writes: int | None = None,
    ) -> None:
        self.monkeypatch = pytest.MonkeyPatch()
        self.root = os.path.realpath(root)
        self.names = names
        self.code = code
        self.budget_bytes = budget_bytes
        self.budget_writes = budget_writes
        self.failures = 0
        self.writes = 0
        self._lock = threading.Lock()
        self._active = False

    # ------------------------------------------------------------------------------------------ factories
    @classmethod
    def read_only(cls, root: Path, code: int = errno.EROFS, *, names: str = "*") -> FaultyDisk:
        """Nothing under ``root`` can be created, changed or removed (``EROFS``, or ``EACCES``/``EPERM``)."""
        return cls(root, code, names=names)

    @classmethod
    def full(
        cls, root: Path, *, names: str = "*", after_bytes: int | None = None, after_writes: int | None = None
    ) -> FaultyDisk:
        """Writes under ``root`` fail with ``ENOSPC`` once ``after_bytes`` bytes or ``after_writes`` writes are used.

        Without a budget nothing fails, and :attr:`writes` counts the writes (to choose where to fail).
        """
        return cls(root, errno.ENOSPC, names=names, budget_bytes=after_bytes, budget_writes=after_writes)

    # ------------------------------------------------------------------------------------------- checks
    def _resolve(self, path: Any, dir_fd: int | None = None) -> str | None:
        """The absolute path of ``path`` (relative to ``dir_fd`` when given) when it lies under root, else None."""
        if isinstance(path, int) or path is None:
            return None
        text = os.fsdecode(path)
        if dir_fd is not None and not os.path.isabs(text):
            try:
                text = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), text)
            except OSError:
                return None
        full = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(text))), os.path.basename(text))
        if not (full == self.root or full.startswith(self.root + os.sep)):
            return None
        return full if fnmatch.fnmatchcase(os.path.basename(full), self.names) else None

    def _under(self, path: Any, dir_fd: int | None = None) -> bool:
        return self._resolve(path, dir_fd) is not None

    def _fail(self, path: Any) -> None:
        self.failures += 1
        raise OSError(self.code, os.strerror(self.code), os.fsdecode(path))

    def _spend(self, size: int, path: str) -> None:
        if not self._active:
            return
        with self._lock:
            over_writes = self.budget_writes is not None and self.writes >= self.budget_writes
            over_bytes = self.budget_bytes is not None and size > self.budget_bytes
            if over_writes or over_bytes:
                self._fail(path)
            self.writes += 1
            if self.budget_bytes is not None:
                self.budget_bytes -= size

    @property
    def _read_only(self) -> bool:
        return self.code != errno.ENOSPC

    # ------------------------------------------------------------------------------------------ patches
    def __enter__(self) -> FaultyDisk:
        real_open, real_os_open = io.open, os.open
        disk = self

        def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            writing = any(c in mode for c in "wax+")
            if not (disk._active and writing and disk._under(file)):
                return real_open(file, mode, *args, **kwargs)
            if disk._read_only:
                disk._fail(file)
            return _CountingFile(real_open(file, mode, *args, **kwargs), disk, os.fsdecode(file))

        def fake_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if disk._active and disk._read_only and flags & _WRITE_FLAGS and disk._under(path, kwargs.get("dir_fd")):
                disk._fail(path)
            return real_os_open(path, flags, *args, **kwargs)

        def guard(real: Callable[..., Any], *, existing_only: bool = False, paths: int = 1) -> Callable[..., Any]:
            def fake(*args: Any, **kwargs: Any) -> Any:
                if disk._active and disk._read_only:
                    for path in args[:paths]:
                        full = disk._resolve(path, kwargs.get("dir_fd"))
                        if full is not None and (not existing_only or os.path.lexists(full)):
                            disk._fail(full)
                return real(*args, **kwargs)

            return fake

        self.monkeypatch.setattr(io, "open", fake_open)
        self.monkeypatch.setattr(builtins, "open", fake_open)
        self.monkeypatch.setattr(os, "open", fake_os_open)
        self.monkeypatch.setattr(os, "mkdir", guard(os.mkdir))
        for name in ("replace", "rename", "link"):
            self.monkeypatch.setattr(os, name, guard(getattr(os, name), paths=2))
        for name in ("unlink", "remove", "rmdir"):
            self.monkeypatch.setattr(os, name, guard(getattr(os, name), existing_only=True))
        self._patch_safetensors()
        self._active = True
        return self

    def _patch_safetensors(self) -> None:
        """safetensors writes from Rust: serialise in memory and write through (patched) Python ``open``."""
        import safetensors.numpy
        import safetensors.torch

        for module, serialise in (
            (safetensors.numpy, safetensors.numpy.save),
            (safetensors.torch, safetensors.torch.save),
        ):
            real_save_file = module.save_file

            def save_file(
                tensors: Any,
                filename: Any,
                metadata: Any = None,
                *,
                _real: Any = real_save_file,
                _save: Any = serialise,
            ) -> None:
                if not (self._active and self._under(filename)):
                    return _real(tensors, filename, metadata)
                data = _save(tensors, metadata)
                with open(filename, "wb") as handle:
                    handle.write(data)

            self.monkeypatch.setattr(module, "save_file", save_file)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._active = False
        self.monkeypatch.undo()
