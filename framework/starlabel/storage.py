"""Operating-system storage failures turned into errors a user can act on.

Writing a store, a training run, a bundle or a catalogue can fail for reasons outside starlabel: the
location is on a read-only file system, the user may not write there, or the disk (or quota) is full.
:func:`storage_errors` wraps the input/output of one such step and turns the :class:`OSError` into the
caller's typed :class:`~starlabel.errors.StarlabelError` (``StoreError``, ``TrainingError``,
``CatalogueError``, ``BundleError``, or :class:`~starlabel.errors.StorageError`), whose message names the
location, the file that failed, the reason in words and what to do::

    with storage_errors(store_path, "write rows to the store", StoreError, then=RESUME_INGEST):
        ...

The writers keep their completion markers last (a store's ``completion.complete``, a bundle's
``card.json``, a catalogue renamed into place), so whatever a failure leaves behind is never taken for a
finished result and re-running the same command resumes or redoes the unfinished step.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlabel.errors import StarlabelError, StorageError

_WRITE_FIX = {
    errno.EROFS: "choose a location on a writable file system",
    errno.EACCES: "choose a location you may write to, or ask for write permission on it",
    errno.EPERM: "choose a location you may write to, or ask for write permission on it",
    errno.ENOSPC: "free some space on that disk or choose a location on another one",
    errno.EDQUOT: "free some space within your quota or choose a location on another disk",
    errno.EFBIG: "choose a location on a file system that allows larger files",
}
_READ_FIX = {
    errno.EACCES: "ask for read permission on it, or copy it to a place you may read",
    errno.EPERM: "ask for read permission on it, or copy it to a place you may read",
}
_REASON = {
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
}


def describe_os_error(error: OSError, location: str | Path, what: str, *, then: str = "", write: bool = True) -> str:
    """One paragraph: where, what could not be done, why (in words) and what to do.

    Parameters
    ----------
    error : OSError
        The failure.
    location : str | Path
        What the user named (``--store``, ``--out``, a bundle folder); the failing file, when it is
        another one, is named too.
    what : str
        The step, as a verb phrase: ``"write rows to the store"``.
    then : str
        What to do once the cause is fixed, e.g. how to resume.
    write : bool
        Whether the step writes (the advice for permission errors differs).
    """
    code = error.errno
    reason = _REASON.get(code) if code is not None else None
    reason = reason or (error.strerror or str(error)).rstrip(".").lower() or type(error).__name__
    fix = (_WRITE_FIX if write else _READ_FIX).get(code or 0, "check the location and try again")
    failed = error.filename
    where = f" ({failed})" if failed is not None and str(failed) != str(location) else ""
    text = f"{location}: cannot {what}: {reason}{where}; {fix}"
    return text + (f", then {then}" if then else "")


@contextmanager
def storage_errors(
    location: str | Path,
    what: str,
    error: type[StarlabelError] = StorageError,
    *,
    then: str = "",
    write: bool = True,
) -> Iterator[None]:
    """Turn an :class:`OSError` raised inside the block into ``error`` with a message that says what to do.

    A :class:`~starlabel.errors.StarlabelError` passes through unchanged (some are also ``OSError``
    subclasses). The raised error carries ``os_errno`` and ``filename`` and chains the original.

    Parameters
    ----------
    location, what, then, write
        See :func:`describe_os_error`.
    error : type[StarlabelError]
        The error type to raise (the caller's domain error).

    Raises
    ------
    StarlabelError
        Of type ``error``, for any ``OSError`` in the block.
    """
    try:
        yield
    except StarlabelError:
        raise
    except OSError as failure:
        raised = error(describe_os_error(failure, location, what, then=then, write=write))
        raised.os_errno = failure.errno  # type: ignore[attr-defined]
        raised.filename = failure.filename  # type: ignore[attr-defined]
        raise raised from failure
