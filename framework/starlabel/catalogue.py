"""Resumable, streaming writer of prediction catalogues (FITS binary table or Parquet), and a reader.

A prediction writes its catalogue in numbered *parts*, in any order, each one atomically, into a parts
folder beside the output; :meth:`CatalogueWriter.finish` then assembles the parts in order into the
output file, streaming one part at a time (memory stays bounded by about one part), and removes the
parts folder. An interrupted prediction leaves the parts folder behind: a new writer given the same
columns, number of parts and fingerprint resumes it (:meth:`CatalogueWriter.done` says which parts are
already there); one given anything else refuses it, and ``overwrite=True`` starts over. Other processes
(the Dask workers of ``starlabel predict --dask``) may write parts for a writer that holds the lock,
through :class:`CatalogueParts` given its ``out``, columns, ``n_parts`` and fingerprint; they write the
same files the writer would.

Layout while writing ``out = cat.fits``::

    cat.fits.lock                     exclusive lock: JSON {"pid", "host", "token"} of the writer
    cat.fits.parts/_run.json          columns, n_parts and fingerprint of the run
    cat.fits.parts/part-000000.npz    one part: arrays c0, c1, ... in column order (np.savez, no pickles)
    cat.fits.tmp                      the output being assembled by finish(), renamed to cat.fits at the end

A file at ``out`` is therefore always complete. The output holds no creation date or other
time-dependent content, so identical inputs give byte-identical files (pass a ``DATE`` header entry if
one is wanted).

Formats, chosen by the suffix of ``out``: ``.fits``/``.fit`` (an empty primary HDU and one BINTABLE
extension ``EXTNAME = 'CATALOGUE'``) or ``.parquet``/``.pq`` (one row group per non-empty part).

Column types (``Column.dtype``), with their FITS ``TFORMn`` and Parquet types:

    ==========  =====  =======
    int64       K      int64
    int32       J      int32
    int16       I      int16
    float32     E      float
    float64     D      double
    bool        L      bool
    <U{n}       {n}A   string    (FITS: ASCII only; trailing blanks and NULs are not kept)
    ==========  =====  =======

Header entries (``header={key: (value, comment)}``) are the same for both formats:

- a key starting with ``COMMENT`` or ``HISTORY`` (any case; e.g. ``COMMENT_FLAGS_1``, since keys of a
  mapping are unique) becomes COMMENT or HISTORY text: ``value`` followed by ``comment`` when that is
  not empty. In FITS the text is wrapped into cards of at most 72 characters (one or more cards per
  entry, a new card at every newline);
- any other key is upper-cased and must be a FITS keyword of at most 8 characters (``A-Z 0-9 _ -``)
  that is not one of the table's structural keywords; its value must be a bool, int, finite float or
  ASCII string (long strings use the FITS ``CONTINUE`` convention); the comment is cut to fit its card.

FITS columns get ``TTYPEn``/``TFORMn``, ``TUNITn`` when the column has a unit, and, when it has a
description, ``TCOMMn`` (the HEASARC convention) plus the description as the ``TTYPEn`` card's comment
(cut to fit). The fingerprint is stored as JSON in the ``SLFPRINT`` keyword (FITS) or the
``starlabel.fingerprint`` schema metadata (Parquet); Parquet fields carry ``unit`` and ``description``
metadata and the schema carries ``starlabel.header`` (JSON list of ``[key, value, comment]``) and
``starlabel.columns`` (the column definitions, so string widths round-trip).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import textwrap
import uuid
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from starlabel.errors import StarlabelError
from starlabel.storage import storage_errors

RUN_FILE = "_run.json"
RUN_FORMAT = "starlabel-catalogue-parts"
RUN_FORMAT_VERSION = 1
FITS_EXTNAME = "CATALOGUE"
FINGERPRINT_KEY = "SLFPRINT"
ALLOWED_SUFFIXES = (".fits", ".fit", ".parquet", ".pq")
RESUME = "re-run the same prediction to resume it (the parts written so far are kept)"

_PART_RE = re.compile(r"^part-(\d{6,})\.npz$")
_KEY_RE = re.compile(r"^[A-Z0-9_-]{1,8}$")
_STRUCTURAL_RE = re.compile(
    r"^(SIMPLE|EXTEND|XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|THEAP|END|CONTINUE|"
    r"T(TYPE|FORM|UNIT|COMM|DIM|NULL|SCAL|ZERO|DISP)\d+|" + FINGERPRINT_KEY + r")$"
)
_FITS_FORMS = {"int64": "K", "int32": "J", "int16": "I", "float32": "E", "float64": "D", "bool": "L"}
_SNIFF = {b"SIMPLE  =": "fits", b"PAR1": "parquet"}


class CatalogueError(StarlabelError):
    """A catalogue cannot be written or read: bad path, columns, parts, lock or file."""

    exit_code = 2


class StaleLockWarning(UserWarning):
    """A lock left by a writer that no longer runs was taken over."""


@dataclass(frozen=True)
class Column:
    """One column of a catalogue.

    Attributes
    ----------
    name : str
        Column name (ASCII for FITS).
    dtype : str
        numpy dtype string: ``'int64'``, ``'int32'``, ``'int16'``, ``'float32'``, ``'float64'``, ``'bool'``,
        or ``'<U{n}'`` for strings of at most n characters (e.g. string source ids).
    unit : str | None
        Unit (FITS ``TUNITn``, Parquet field metadata ``unit``), or None.
    description : str
        One-line description (FITS ``TCOMMn``, Parquet field metadata ``description``).
    """

    name: str
    dtype: str
    unit: str | None = None
    description: str = ""


# ------------------------------------------------------------------------------------------------ helpers
def _format_of(path: Path) -> str:
    """``'fits'`` or ``'parquet'`` from the suffix of ``path``."""
    suffix = path.suffix.lower()
    if suffix in (".fits", ".fit"):
        return "fits"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    extra = " (compressed FITS is not written; compress the finished file if needed)" if suffix == ".gz" else ""
    raise CatalogueError(
        f"{path}: unknown catalogue format {suffix or '(no suffix)'!r}{extra}; "
        f"name the output with one of the suffixes {', '.join(ALLOWED_SUFFIXES)}"
    )


def _column_dtype(column: Column) -> np.dtype:
    """The numpy dtype of ``column``, checked against the allowed kinds."""
    try:
        dtype = np.dtype(column.dtype)
    except TypeError as error:
        dtype, reason = None, str(error)
    else:
        reason = ""
    if dtype is not None and (dtype.name in _FITS_FORMS or (dtype.kind == "U" and dtype.itemsize > 0)):
        return dtype.newbyteorder("=")
    raise CatalogueError(
        f"column {column.name!r}: dtype {column.dtype!r} is not allowed{': ' + reason if reason else ''}; "
        f"use one of {', '.join(_FITS_FORMS)} or '<U{{n}}' (strings of at most n characters, n >= 1)"
    )


def _str_width(dtype: np.dtype) -> int:
    return dtype.itemsize // np.dtype("U1").itemsize


def _json_canonical(value: Any, what: str) -> Any:
    """``value`` as it reads back from JSON (so records compare equal across runs)."""
    try:
        return json.loads(json.dumps(value, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise CatalogueError(
            f"the catalogue {what} must be JSON-serialisable (plain str/int/float/...): {error}"
        ) from None


def _python_scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _is_ascii_printable(text: str) -> bool:
    return all(32 <= ord(c) < 127 for c in text)


def _normalise_header(header: Mapping[str, tuple[Any, str]] | None) -> list[tuple[str, Any, str]]:
    """Checked header entries ``(KEY, value, comment)`` in order; see the module docstring for the rules."""
    entries: list[tuple[str, Any, str]] = []
    seen: dict[str, str] = {}
    for raw_key, item in (header or {}).items():
        if not isinstance(item, tuple) or len(item) != 2:
            raise CatalogueError(f"header entry {raw_key!r}: give a (value, comment) pair, not {item!r}")
        value, comment = _python_scalar(item[0]), item[1] if item[1] is not None else ""
        key = str(raw_key).upper()
        if key in seen:
            raise CatalogueError(f"header entries {seen[key]!r} and {raw_key!r} are the same keyword {key!r}")
        seen[key] = str(raw_key)
        if not isinstance(comment, str) or not _is_ascii_printable(comment):
            raise CatalogueError(f"header entry {raw_key!r}: the comment must be printable ASCII text")
        if key.startswith(("COMMENT", "HISTORY")):
            text = " ".join(t for t in ("" if value is None else str(value), comment) if t)
            if not all(_is_ascii_printable(line) for line in text.split("\n")):
                raise CatalogueError(f"header entry {raw_key!r}: {key[:7]} text must be printable ASCII")
            entries.append((key, text, ""))
            continue
        if not _KEY_RE.match(key):
            raise CatalogueError(
                f"header key {raw_key!r} is not a FITS keyword (at most 8 characters of A-Z, 0-9, '_', '-'); "
                f"shorten it, or put longer text under a key starting with 'COMMENT' or 'HISTORY'"
            )
        if _STRUCTURAL_RE.match(key):
            raise CatalogueError(
                f"header key {raw_key!r} is reserved for the table structure (written by the catalogue writer); "
                f"choose another keyword"
            )
        if isinstance(value, float) and not np.isfinite(value):
            raise CatalogueError(
                f"header entry {raw_key!r}: FITS cannot hold the value {value!r}; give a finite number"
            )
        if isinstance(value, str):
            if not _is_ascii_printable(value):
                raise CatalogueError(f"header entry {raw_key!r}: the value must be printable ASCII text")
        elif not isinstance(value, bool | int | float):
            raise CatalogueError(
                f"header entry {raw_key!r}: value {value!r} of type {type(value).__name__} is not allowed; "
                f"give a bool, int, float or str"
            )
        entries.append((key, value, comment))
    return entries


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort; not possible on every platform)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (True when it cannot be told)."""
    if os.name == "nt":  # os.kill(pid, 0) would send a signal there; assume it runs
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def _npy_header(archive: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the array ``name`` in an .npz archive, read without loading its data."""
    from numpy.lib import format as npformat

    with archive.open(f"{name}.npy") as handle:
        version = npformat.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = npformat.read_array_header_1_0(handle)
        else:
            shape, _, dtype = npformat.read_array_header_2_0(handle)
    return shape, dtype


# -------------------------------------------------------------------------------------------------- parts
class CatalogueParts:
    """The part-writing half of :class:`CatalogueWriter`: a table checked and written as one part, atomically.

    A :class:`CatalogueWriter` takes the lock, prepares the parts folder and assembles the catalogue; the
    parts themselves may be written by other processes (the Dask workers of ``starlabel predict --dask``)
    through a ``CatalogueParts`` built with the writer's ``out``, ``columns``, ``n_parts`` and
    ``fingerprint``: its parts are the same files, byte for byte, as the writer's own. It takes no lock
    and creates no folder.

    Parameters
    ----------
    out : str | Path
        The catalogue file the parts belong to (its suffix picks the format, as for the writer).
    columns : Sequence[Column]
        The columns, in file order (those of the writer).
    n_parts : int
        Number of parts, indexed ``0 .. n_parts - 1``.
    fingerprint : Mapping[str, Any], optional
        The run's fingerprint. When given, a part is written only into a parts folder that is this run's
        (its run record has these columns, ``n_parts`` and fingerprint; checked before writing and again
        just before the rename), so a late task of an abandoned run never writes into the parts folder of
        a run with other inputs; a late part of the same run is the very file that run writes.

    Raises
    ------
    CatalogueError
        Unknown suffix, bad columns or ``n_parts``.
    """

    def __init__(
        self,
        out: str | Path,
        columns: Sequence[Column],
        *,
        n_parts: int,
        fingerprint: Mapping[str, Any] | None = None,
    ) -> None:
        self.out = Path(out)
        self.format = _format_of(self.out)
        self.columns: tuple[Column, ...] = tuple(columns)
        self._dtypes = [_column_dtype(c) for c in self.columns]
        self._check_columns()
        if isinstance(n_parts, bool) or not isinstance(n_parts, int | np.integer) or n_parts < 0:
            raise CatalogueError(f"{self.out}: n_parts must be an integer >= 0, not {n_parts!r}")
        self.n_parts = int(n_parts)
        self._token = uuid.uuid4().hex
        self._expected_run = None if fingerprint is None else self._run_record_of(fingerprint)

    @property
    def parts_dir(self) -> Path:
        """The folder holding the parts: ``out.with_name(out.name + '.parts')``."""
        return self.out.with_name(self.out.name + ".parts")

    def _part_path(self, index: int) -> Path:
        return self.parts_dir / f"part-{index:06d}.npz"

    def write_part(self, index: int, table: Mapping[str, np.ndarray]) -> None:
        """Write part ``index`` atomically (write a temporary file, fsync, rename); rewriting a part replaces it.

        Parameters
        ----------
        index : int
            Part number in ``[0, n_parts)``.
        table : Mapping[str, np.ndarray]
            Exactly the catalogue's columns, as 1-d arrays of one length whose values cast to the column
            types without loss of kind (int to float is fine, float to int is not; integers must fit,
            strings must fit their width, and be ASCII for FITS).

        Raises
        ------
        CatalogueError
            Index out of range, columns missing or unexpected, lengths differ, or values that do not fit;
            with ``fingerprint``: the parts folder is not (or no longer) that of this run.
        """
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < self.n_parts:
            raise CatalogueError(
                f"{self.out}: part index {index!r} is out of range; this catalogue has parts 0 to {self.n_parts - 1}"
            )
        arrays = self._check_table(int(index), table)
        self._check_same_run(int(index))
        path = self._part_path(int(index))
        tmp = self.parts_dir / f".{path.name}.{self._token}.tmp"
        with storage_errors(self.out, f"write catalogue part {index}", CatalogueError, then=RESUME):
            try:
                with open(tmp, "wb") as handle:
                    np.savez(handle, **{f"c{i}": a for i, a in enumerate(arrays)})
                    handle.flush()
                    os.fsync(handle.fileno())
                self._check_same_run(int(index))
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        _fsync_dir(self.parts_dir)

    def _check_same_run(self, index: int) -> None:
        """With ``fingerprint``: refuse to write part ``index`` unless the parts folder is this run's."""
        if self._expected_run is None:
            return
        try:
            recorded = json.loads((self.parts_dir / RUN_FILE).read_text())
        except (OSError, ValueError):
            recorded = None
        if recorded != self._expected_run:
            raise CatalogueError(
                f"{self.out}: part {index} not written: {self.parts_dir.name} is no longer the parts folder of the "
                f"prediction that asked for it (its {RUN_FILE} is missing or records other inputs); that "
                "prediction was finished, removed or replaced by one with other inputs"
            )

    def _run_record_of(self, fingerprint: Mapping[str, Any]) -> dict[str, Any]:
        """The run record (``_run.json``) of a run with these columns, number of parts and ``fingerprint``."""
        return {
            "format": RUN_FORMAT,
            "format_version": RUN_FORMAT_VERSION,
            "columns": [asdict(c) for c in self.columns],
            "n_parts": self.n_parts,
            "fingerprint": _json_canonical(dict(fingerprint), "fingerprint"),
        }

    def _check_columns(self) -> None:
        if not self.columns:
            raise CatalogueError(f"{self.out}: a catalogue needs at least one column")
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise CatalogueError(f"{self.out}: duplicate column names: {', '.join(dupes)}")
        for column in self.columns:
            if not isinstance(column.name, str) or not column.name:
                raise CatalogueError(f"{self.out}: every column needs a non-empty name, not {column.name!r}")
            texts = [column.name, column.unit or "", column.description]
            if self.format == "fits" and not all(_is_ascii_printable(t) for t in texts):
                raise CatalogueError(
                    f"{self.out}: column {column.name!r}: FITS names, units and descriptions must be printable ASCII"
                )
        if self.format == "fits" and len(self.columns) > 999:
            raise CatalogueError(f"{self.out}: FITS tables hold at most 999 columns, not {len(self.columns)}")

    def _check_table(self, index: int, table: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        where = f"{self.out}: part {index}"
        expected = [c.name for c in self.columns]
        missing = [n for n in expected if n not in table]
        unexpected = [str(n) for n in table if n not in expected]
        if missing or unexpected:
            raise CatalogueError(
                f"{where}: the table's columns do not match the catalogue: missing: {', '.join(missing) or 'none'}; "
                f"unexpected: {', '.join(unexpected) or 'none'}. Expected: {', '.join(expected)}"
            )
        arrays: list[np.ndarray] = []
        lengths: dict[str, int] = {}
        for column, dtype in zip(self.columns, self._dtypes, strict=True):
            values = np.asarray(table[column.name])
            if values.ndim != 1:
                raise CatalogueError(f"{where}: column {column.name!r} must be 1-d, has shape {values.shape}")
            lengths[column.name] = values.shape[0]
            arrays.append(self._cast(where, column, dtype, values))
        if len(set(lengths.values())) > 1:
            listing = ", ".join(f"{k}={v}" for k, v in lengths.items())
            raise CatalogueError(f"{where}: columns differ in length: {listing}")
        return arrays

    def _cast(self, where: str, column: Column, dtype: np.dtype, values: np.ndarray) -> np.ndarray:
        src = values.dtype
        what = f"{where}: column {column.name!r} ({column.dtype})"
        if values.size == 0:  # np.asarray([]) is float64: any empty column is fine
            return np.empty(0, dtype=dtype)
        if dtype.kind == "U":
            if src.kind not in "US":
                raise CatalogueError(f"{what}: got {src} values; give strings")
            width = _str_width(dtype)
            if values.size and src.kind == "S":
                values = values.astype(f"U{src.itemsize or 1}")
            if values.size and int(np.char.str_len(values).max()) > width:
                raise CatalogueError(f"{what}: a value is longer than {width} characters; widen the column")
            out = values.astype(dtype)
            if self.format == "fits":
                try:
                    out.astype(f"S{width}")
                except UnicodeEncodeError:
                    raise CatalogueError(f"{what}: FITS strings must be ASCII; a value is not") from None
            return out
        if src.kind == "O" or not np.can_cast(src, dtype, casting="same_kind"):
            raise CatalogueError(f"{what}: got {src} values, which do not cast to {dtype.name}")
        if dtype.kind == "i" and src.kind in "iu" and not np.can_cast(src, dtype, casting="safe") and values.size:
            info = np.iinfo(dtype)
            if int(values.min()) < info.min or int(values.max()) > info.max:
                raise CatalogueError(f"{what}: values outside [{info.min}, {info.max}]; use a wider integer column")
        return values.astype(dtype)


# ------------------------------------------------------------------------------------------------- writer
class CatalogueWriter(CatalogueParts):
    """Writes a catalogue in numbered parts (any order, each atomically), then assembles them in order.

    Parameters
    ----------
    out : str | Path
        Output file; its suffix picks the format (``.fits``, ``.fit``, ``.parquet``, ``.pq``).
    columns : Sequence[Column]
        The columns, in file order.
    n_parts : int
        Number of parts, indexed ``0 .. n_parts - 1``.
    fingerprint : Mapping[str, Any]
        JSON-serialisable identity of the run's inputs (model, data, options); a parts folder left by an
        interrupted run is resumed only when its fingerprint, columns and ``n_parts`` are the same.
    header : Mapping[str, tuple[Any, str]] | None
        Extra header entries ``{key: (value, comment)}`` (see the module docstring). They are not part of
        the run's identity: the writer that calls :meth:`finish` writes its own.
    overwrite : bool
        Remove an existing ``out`` and any parts folder left by an earlier run, and start over.

    Raises
    ------
    CatalogueError
        Unknown suffix, bad columns or header, ``out`` exists (without ``overwrite``), another writer holds
        the lock, or a parts folder left by a run with other inputs is in the way.

    Notes
    -----
    The writer holds the lock file ``out + '.lock'`` from construction until :meth:`close` (or the end of
    a ``with`` block, or :meth:`finish`). A lock whose process no longer runs on this host is taken over
    with a :class:`StaleLockWarning`.
    """

    def __init__(
        self,
        out: str | Path,
        columns: Sequence[Column],
        *,
        n_parts: int,
        fingerprint: Mapping[str, Any],
        header: Mapping[str, tuple[Any, str]] | None = None,
        overwrite: bool = False,
    ) -> None:
        super().__init__(out, columns, n_parts=n_parts)
        self.fingerprint = _json_canonical(dict(fingerprint), "fingerprint")
        self.header = _normalise_header(header)
        if not self.out.parent.is_dir():
            raise CatalogueError(f"{self.out}: the folder {self.out.parent} does not exist; create it first")
        self.lock_path = Path(str(self.out) + ".lock")
        self._tmp_path = Path(str(self.out) + ".tmp")
        self._locked = False
        self._closed = False
        with storage_errors(self.out, f"take the lock {self.lock_path.name}", CatalogueError):
            self._acquire_lock()
        try:
            with storage_errors(self.out, f"prepare the parts folder {self.parts_dir.name}", CatalogueError):
                self._prepare(overwrite)
        except BaseException:
            self._release_lock()
            raise

    # ------------------------------------------------------------------------------------------ properties
    def done(self) -> set[int]:
        """Indices of the parts already written (by this writer or an interrupted earlier one)."""
        found: set[int] = set()
        if not self.parts_dir.is_dir():
            return found
        for entry in os.scandir(self.parts_dir):
            match = _PART_RE.match(entry.name)
            if match and int(match.group(1)) < self.n_parts:
                found.add(int(match.group(1)))
        return found

    # --------------------------------------------------------------------------------------------- writing
    def write_part(self, index: int, table: Mapping[str, np.ndarray]) -> None:
        """Write part ``index`` atomically (write a temporary file, fsync, rename); rewriting a part replaces it.

        See :meth:`CatalogueParts.write_part`; a closed writer refuses.
        """
        self._check_open("write_part")
        super().write_part(index, table)

    def finish(self) -> Path:
        """Assemble parts ``0 .. n_parts - 1`` in order into ``out``, remove the parts folder, release the lock.

        The parts are streamed one at a time into ``out + '.tmp'``, which is fsynced and renamed to ``out``.

        Returns
        -------
        Path
            ``out``.

        Raises
        ------
        CatalogueError
            Parts are missing (the first few are listed) or a part file is damaged.
        """
        self._check_open("finish")
        missing = [i for i in range(self.n_parts) if not self._part_path(i).is_file()]
        if missing:
            shown = ", ".join(str(i) for i in missing[:10]) + (", ..." if len(missing) > 10 else "")
            raise CatalogueError(
                f"{self.out}: cannot finish, {len(missing)} of {self.n_parts} parts are missing: {shown}; "
                f"write them (re-run the same prediction to resume) before finishing"
            )
        lengths = [self._part_length(i) for i in range(self.n_parts)]
        with storage_errors(self.out, "assemble the catalogue", CatalogueError, then=RESUME):
            try:
                with open(self._tmp_path, "wb") as handle:
                    if self.format == "fits":
                        self._write_fits(handle, lengths)
                    else:
                        self._write_parquet(handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(self._tmp_path, self.out)
            except BaseException:
                self._tmp_path.unlink(missing_ok=True)  # never left where it could be taken for a catalogue
                raise
        _fsync_dir(self.out.parent)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        self.close()
        return self.out

    def close(self) -> None:
        """Release the lock; parts already written stay for a later writer to resume. Idempotent."""
        self._closed = True
        self._release_lock()

    def __enter__(self) -> CatalogueWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- lock
    def _lock_record(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "token": self._token}

    def _acquire_lock(self) -> None:
        payload = json.dumps(self._lock_record()).encode()
        for _ in range(5):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read_lock()
                pid, host = holder.get("pid"), holder.get("host")
                stale = isinstance(pid, int) and host == socket.gethostname() and not _pid_alive(pid)
                if not stale:
                    who = f"pid {pid}" if isinstance(pid, int) else "unknown pid"
                    if isinstance(host, str) and host != socket.gethostname():
                        who += f" on host {host}"
                    raise CatalogueError(
                        f"another prediction is writing {self.out} ({who}); wait for it or remove the stale lock "
                        f"{self.lock_path}"
                    ) from None
                warnings.warn(
                    f"{self.lock_path}: taking over the lock of pid {pid}, which no longer runs on this host "
                    f"(an interrupted prediction); resuming its parts if the inputs match",
                    StaleLockWarning,
                    stacklevel=3,
                )
                with contextlib.suppress(FileNotFoundError):
                    self.lock_path.unlink()
                continue
            try:
                os.write(fd, payload)
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    self.lock_path.unlink()  # an empty lock would look held by an unknown writer
                raise
            os.close(fd)
            self._locked = True
            return
        raise CatalogueError(f"could not take the lock {self.lock_path} (it keeps reappearing); try again")

    def _read_lock(self) -> dict[str, Any]:
        try:
            record = json.loads(self.lock_path.read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def _release_lock(self) -> None:
        if not self._locked:
            return
        self._locked = False
        if self._read_lock().get("token") == self._token:  # never remove a lock someone else took over
            with contextlib.suppress(FileNotFoundError):
                self.lock_path.unlink()

    # ----------------------------------------------------------------------------------------- preparation
    def _run_record(self) -> dict[str, Any]:
        return self._run_record_of(self.fingerprint)

    def _prepare(self, overwrite: bool) -> None:
        """With the lock held: handle an existing output, then create, resume or refuse the parts folder."""
        if self.out.is_dir():
            raise CatalogueError(f"{self.out}: is a folder; give a file path as --out")
        if self.out.exists():
            if not overwrite:
                raise CatalogueError(f"{self.out}: already exists; use --overwrite or another --out")
            self.out.unlink()
        self._tmp_path.unlink(missing_ok=True)  # left by a finish() that was killed
        parts = self.parts_dir
        if overwrite and parts.exists():
            shutil.rmtree(parts)
        if parts.exists() and not parts.is_dir():
            raise CatalogueError(f"{parts}: is not a folder; remove it (it is where the catalogue parts go)")
        run_file = parts / RUN_FILE
        if parts.is_dir():
            for entry in parts.glob(".*.tmp"):  # parts a killed writer did not finish
                entry.unlink(missing_ok=True)
            if run_file.is_file():
                self._check_resume(run_file)
                return
            if any(parts.iterdir()):
                raise CatalogueError(
                    f"{parts}: holds files but no {RUN_FILE}, so it was not left by a catalogue writer; "
                    f"remove it, or use --overwrite to start over"
                )
        parts.mkdir(exist_ok=True)
        tmp = parts / f".{RUN_FILE}.{self._token}.tmp"
        with open(tmp, "w") as handle:
            json.dump(self._run_record(), handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, run_file)
        _fsync_dir(parts)

    def _check_resume(self, run_file: Path) -> None:
        try:
            recorded = json.loads(run_file.read_text())
        except (OSError, ValueError) as error:
            raise CatalogueError(
                f"{run_file}: unreadable ({error}); use --overwrite to start over (the parts in {self.parts_dir} "
                f"are discarded)"
            ) from None
        expected = self._run_record()
        if not isinstance(recorded, dict) or recorded.get("format") != RUN_FORMAT:
            raise CatalogueError(f"{run_file}: not a catalogue run record; use --overwrite to start over")
        differ = []
        if recorded.get("columns") != expected["columns"]:
            differ.append("columns")
        if recorded.get("n_parts") != expected["n_parts"]:
            differ.append(f"number of parts ({recorded.get('n_parts')} then, {self.n_parts} now)")
        old_fp = recorded.get("fingerprint")
        if old_fp != self.fingerprint:
            if isinstance(old_fp, dict):
                keys = sorted(
                    k for k in set(old_fp) | set(self.fingerprint) if old_fp.get(k) != self.fingerprint.get(k)
                )
                differ.append(f"fingerprint ({', '.join(keys)})")
            else:
                differ.append("fingerprint")
        if differ:
            raise CatalogueError(
                f"{self.parts_dir}: an interrupted run with different inputs left this parts folder "
                f"(differs in: {'; '.join(differ)}); use --overwrite to start over (its parts are discarded), "
                f"re-run with the original inputs to resume it, or choose another --out"
            )

    # ---------------------------------------------------------------------------------------------- checks
    def _check_open(self, what: str) -> None:
        if self._closed:
            raise CatalogueError(f"{self.out}: {what}() on a closed writer; open a new CatalogueWriter to resume")

    # ------------------------------------------------------------------------------------------------ parts
    def _part_length(self, index: int) -> int:
        """Rows of part ``index``, from the array headers only; checks the part matches the columns."""
        path = self._part_path(index)
        damaged = f"{path}: damaged or written for other columns; delete it and re-run to write it again"
        try:
            with zipfile.ZipFile(path) as archive:
                names = sorted(archive.namelist())
                want = sorted(f"c{i}.npy" for i in range(len(self.columns)))
                if names != want:
                    raise CatalogueError(damaged)
                lengths = set()
                for i, dtype in enumerate(self._dtypes):
                    shape, found = _npy_header(archive, f"c{i}")
                    if len(shape) != 1 or found != dtype:
                        raise CatalogueError(damaged)
                    lengths.add(shape[0])
        except (OSError, ValueError, zipfile.BadZipFile):
            raise CatalogueError(damaged) from None
        if len(lengths) != 1:
            raise CatalogueError(damaged)
        return lengths.pop()

    def _read_parts(self) -> Iterator[list[np.ndarray]]:
        """Each part's column arrays, in order, one part in memory at a time."""
        for index in range(self.n_parts):
            with np.load(self._part_path(index), allow_pickle=False) as part:
                yield [part[f"c{i}"] for i in range(len(self.columns))]

    # ------------------------------------------------------------------------------------------------ FITS
    def _fits_record_dtype(self) -> np.dtype:
        fields = []
        for i, dtype in enumerate(self._dtypes):
            if dtype.kind == "U":
                fields.append((f"c{i}", f"S{_str_width(dtype)}"))
            elif dtype.kind == "b":
                fields.append((f"c{i}", "S1"))
            else:
                fields.append((f"c{i}", dtype.newbyteorder(">")))
        return np.dtype(fields)

    def _fits_headers(self, n_rows: int, row_bytes: int) -> bytes:
        from astropy.io import fits

        primary = fits.Header()
        primary.append(("SIMPLE", True, "conforms to FITS standard"))
        primary.append(("BITPIX", 8, "array data type"))
        primary.append(("NAXIS", 0, "number of array dimensions"))
        primary.append(("EXTEND", True))

        table = fits.Header()
        table.append(("XTENSION", "BINTABLE", "binary table extension"))
        table.append(("BITPIX", 8, "array data type"))
        table.append(("NAXIS", 2, "number of array dimensions"))
        table.append(("NAXIS1", row_bytes, "length of dimension 1 (bytes per row)"))
        table.append(("NAXIS2", n_rows, "length of dimension 2 (rows)"))
        table.append(("PCOUNT", 0, "number of group parameters"))
        table.append(("GCOUNT", 1, "number of groups"))
        table.append(("TFIELDS", len(self.columns), "number of table fields"))
        for n, (column, dtype) in enumerate(zip(self.columns, self._dtypes, strict=True), start=1):
            form = f"{_str_width(dtype)}A" if dtype.kind == "U" else _FITS_FORMS[dtype.name]
            table.append(_card(f"TTYPE{n}", column.name, column.description))
            table.append((f"TFORM{n}", form))
            if column.unit:
                table.append((f"TUNIT{n}", column.unit))
            if column.description:
                table.append((f"TCOMM{n}", column.description))
        keys = {key for key, _, _ in self.header}
        if "EXTNAME" not in keys:
            table.append(("EXTNAME", FITS_EXTNAME, "starlabel prediction catalogue"))
        for key, value, comment in self.header:
            if key.startswith(("COMMENT", "HISTORY")):
                for line in _wrap(value):
                    table.append((key[:7], line), bottom=True)
            else:
                table.append(_card(key, value, comment), bottom=True)
        table.append(_card(FINGERPRINT_KEY, json.dumps(self.fingerprint, sort_keys=True), "run fingerprint (JSON)"))
        return primary.tostring().encode("ascii") + table.tostring().encode("ascii")

    def _write_fits(self, handle: Any, lengths: list[int]) -> None:
        record = self._fits_record_dtype()
        n_rows = sum(lengths)
        handle.write(self._fits_headers(n_rows, record.itemsize))
        written = 0
        for index, arrays in enumerate(self._read_parts()):
            rows = np.empty(lengths[index], dtype=record)
            for i, (values, dtype) in enumerate(zip(arrays, self._dtypes, strict=True)):
                if dtype.kind == "b":
                    rows[f"c{i}"] = np.where(values, b"T", b"F")
                elif dtype.kind == "U":
                    rows[f"c{i}"] = values.astype(f"S{_str_width(dtype)}")
                else:
                    rows[f"c{i}"] = values
            handle.write(rows.data)  # the records, big-endian, packed: exactly the FITS row layout
            written += rows.nbytes
            del rows
        handle.write(b"\0" * (-written % 2880))

    # --------------------------------------------------------------------------------------------- Parquet
    def _arrow_schema(self) -> Any:
        import pyarrow as pa

        fields = []
        for column, dtype in zip(self.columns, self._dtypes, strict=True):
            meta = {"description": column.description}
            if column.unit:  # None and "" both mean no unit, as in FITS
                meta = {"unit": column.unit, **meta}
            arrow_type = pa.string() if dtype.kind == "U" else pa.from_numpy_dtype(dtype)
            fields.append(pa.field(column.name, arrow_type, nullable=False, metadata=meta))
        return pa.schema(
            fields,
            metadata={
                "starlabel.columns": json.dumps([asdict(c) for c in self.columns]),
                "starlabel.header": json.dumps([list(entry) for entry in self.header]),
                "starlabel.fingerprint": json.dumps(self.fingerprint, sort_keys=True),
            },
        )

    def _write_parquet(self, handle: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self._arrow_schema()
        sink = _DropAfterFailure(handle)
        writer = pq.ParquetWriter(sink, schema)
        parts = self._read_parts()
        try:
            for arrays in parts:
                n = len(arrays[0])
                if n == 0:
                    continue
                batch = pa.Table.from_arrays(
                    [pa.array(a, type=f.type) for a, f in zip(arrays, schema, strict=True)], schema=schema
                )
                writer.write_table(batch, row_group_size=n)
                del batch
            writer.close()
        except BaseException:
            # Close pyarrow's writer now, its last writes dropped: left open, it would write (and fail again)
            # whenever the garbage collector finalises it, from inside unrelated code.
            sink.failed = True
            with contextlib.suppress(Exception):
                writer.close()
            raise
        finally:
            parts.close()


class _DropAfterFailure:
    """The output file as pyarrow sees it: once a write has failed, later writes are dropped (the file is discarded)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.failed = False

    def write(self, data: Any) -> int:
        if self.failed:
            return memoryview(data).nbytes
        try:
            return self.handle.write(data)
        except BaseException:
            self.failed = True
            raise

    def flush(self) -> None:
        if not self.failed:
            self.handle.flush()

    def close(self) -> None:
        """The handle belongs to the caller, which closes it."""

    @property
    def closed(self) -> bool:
        return bool(self.handle.closed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def _card(key: str, value: Any, comment: str) -> Any:
    """A header card whose comment is cut to fit its 80 characters (dropped when there is no room)."""
    from astropy.io import fits

    card = fits.Card(key, value)
    if not comment:
        return card
    if len(card.image) > 80:  # a long string over CONTINUE cards: no room is guaranteed for a comment
        return card
    # the value field runs to column 30 at least (fixed format), then " / " and the comment
    room = 80 - max(len(card.image.rstrip()), 30) - 3
    return fits.Card(key, value, comment[:room]) if room > 0 else card


def _wrap(text: str) -> list[str]:
    """COMMENT/HISTORY text as lines of at most 72 characters (a new line at every newline)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines += textwrap.wrap(paragraph, 72, break_long_words=True, break_on_hyphens=False) or [""]
    return lines


# ------------------------------------------------------------------------------------------------- reader
def _sniff(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except FileNotFoundError:
        raise CatalogueError(f"{path}: no such catalogue file") from None
    except OSError as error:
        raise CatalogueError(f"{path}: cannot read: {error}") from None
    for magic, kind in _SNIFF.items():
        if head.startswith(magic):
            return kind
    raise CatalogueError(f"{path}: neither a FITS nor a Parquet file; give a catalogue written by starlabel predict")


def read_catalogue(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Columns (in file order) and metadata (header keywords, units, descriptions).

    Parameters
    ----------
    path : str | Path
        A FITS file (first table extension) or Parquet file, recognised by its content.

    Returns
    -------
    columns : dict[str, np.ndarray]
        Native-endian arrays in file order; strings as ``str`` (``<U{n}``).
    metadata : dict[str, Any]
        ``format`` (``'fits'`` or ``'parquet'``), ``n_rows``, ``units`` {column: unit or None},
        ``descriptions`` {column: text}, ``header`` {KEY: value} (FITS: every non-structural keyword,
        ``EXTNAME`` included), ``comments`` and ``history`` (lists of text), ``fingerprint`` (dict or None).

    Raises
    ------
    CatalogueError
        No such file, not FITS or Parquet, no table in it, a damaged or truncated file, or what an
        unfinished prediction leaves (the ``.parts`` folder, the ``.tmp`` file being assembled): those are
        never read as a catalogue.
    """
    path = Path(path)
    _refuse_unfinished(path)
    kind = _sniff(path)
    return _read_fits(path) if kind == "fits" else _read_parquet(path)


def _refuse_unfinished(path: Path) -> None:
    """Refuse the parts folder and the ``.tmp`` file of an unfinished prediction, and folders."""
    if path.is_dir():
        if path.name.endswith(".parts"):
            out = path.with_name(path.name.removesuffix(".parts"))
            raise CatalogueError(
                f"{path}: the parts folder of an unfinished prediction, not a catalogue; re-run that prediction "
                f"(same bundle, store and --out {out}) to resume and finish it, then read {out}"
            )
        raise CatalogueError(f"{path}: is a folder, not a catalogue file")
    if path.name.endswith(".tmp") and path.exists():
        out = path.with_name(path.name.removesuffix(".tmp"))
        raise CatalogueError(
            f"{path}: a catalogue being assembled (or left by an interrupted one), not a finished catalogue; "
            f"re-run the prediction to resume and finish it, then read {out}"
        )


def _check_fits_length(path: Path, hdus: Any, index: int) -> None:
    """Refuse a FITS file shorter than its headers say (a truncated copy or an unfinished write)."""
    size = path.stat().st_size
    info = hdus.fileinfo(index)
    expected = int(info["datLoc"]) + int(info["datSpan"])
    if size % 2880 or size < expected:
        raise CatalogueError(
            f"{path}: truncated FITS file ({size} bytes, its headers describe {expected}); it is not a complete "
            "catalogue: copy it again or re-run the prediction with --overwrite"
        )


def _read_fits(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from astropy.io import fits

    size = path.stat().st_size
    if size % 2880:  # every FITS file is whole 2880-byte blocks
        raise CatalogueError(
            f"{path}: truncated FITS file ({size} bytes, not a whole number of 2880-byte blocks); it is not a "
            "complete catalogue: copy it again or re-run the prediction with --overwrite"
        )
    try:
        with warnings.catch_warnings(), fits.open(path, memmap=False) as hdus:
            warnings.filterwarnings("ignore", message="File may have been truncated")  # refused below, with the fix
            tables = [(i, h) for i, h in enumerate(hdus) if isinstance(h, fits.BinTableHDU)]
            if not tables:
                raise CatalogueError(f"{path}: no binary table extension; not a catalogue")
            index, hdu = tables[0]
            _check_fits_length(path, hdus, index)
            header = hdu.header
            data = hdu.data
            columns: dict[str, np.ndarray] = {}
            units: dict[str, str | None] = {}
            descriptions: dict[str, str] = {}
            for n, col in enumerate(hdu.columns, start=1):
                values = np.asarray(data[col.name]) if data is not None else np.empty(0, dtype=col.dtype)
                if values.dtype.kind == "S":
                    values = np.char.decode(values, "ascii") if values.size else values.astype(f"U{values.itemsize}")
                    values = values.astype(f"U{col.dtype.itemsize}")
                columns[col.name] = values.astype(values.dtype.newbyteorder("="), copy=True)
                units[col.name] = col.unit or None
                descriptions[col.name] = str(header.get(f"TCOMM{n}", header.comments[f"TTYPE{n}"]))
            meta: dict[str, Any] = {"format": "fits", "n_rows": int(header["NAXIS2"])}
            keywords: dict[str, Any] = {}
            comments: list[str] = []
            history: list[str] = []
            fingerprint = None
            for card in header.cards:
                key = card.keyword
                if key == "COMMENT":
                    comments.append(str(card.value))
                elif key == "HISTORY":
                    history.append(str(card.value))
                elif key == FINGERPRINT_KEY:
                    with contextlib.suppress(ValueError):
                        fingerprint = json.loads(card.value)
                elif key and not _STRUCTURAL_RE.match(key):
                    keywords[key] = card.value
    except (OSError, ValueError, TypeError, KeyError, IndexError) as error:  # what astropy raises on damaged files
        raise CatalogueError(f"{path}: not a readable FITS file: {error}") from None
    meta.update(units=units, descriptions=descriptions, header=keywords, comments=comments, history=history)
    meta["fingerprint"] = fingerprint
    return columns, meta


def _read_parquet(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as error:
        raise CatalogueError(f"{path}: not a readable Parquet file: {error}") from None
    schema_meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}

    def load(key: str, default: Any) -> Any:
        try:
            return json.loads(schema_meta[key])
        except (KeyError, ValueError):
            return default

    declared = {c["name"]: c["dtype"] for c in load("starlabel.columns", []) if isinstance(c, dict) and "name" in c}
    columns: dict[str, np.ndarray] = {}
    units: dict[str, str | None] = {}
    descriptions: dict[str, str] = {}
    for field in table.schema:
        values = table.column(field.name).to_numpy()
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            width = max((len(v) for v in values), default=1) or 1
            values = values.astype(f"U{width}")
        if field.name in declared:
            values = values.astype(declared[field.name])
        columns[field.name] = np.ascontiguousarray(values)
        fmeta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
        units[field.name] = fmeta.get("unit") or None
        descriptions[field.name] = fmeta.get("description", "")
    keywords: dict[str, Any] = {}
    comments: list[str] = []
    history: list[str] = []
    for entry in load("starlabel.header", []):
        key, value = entry[0], entry[1]
        if key.startswith("COMMENT"):
            comments.append(value)
        elif key.startswith("HISTORY"):
            history.append(value)
        else:
            keywords[key] = value
    meta: dict[str, Any] = {
        "format": "parquet",
        "n_rows": table.num_rows,
        "units": units,
        "descriptions": descriptions,
        "header": keywords,
        "comments": comments,
        "history": history,
        "fingerprint": load("starlabel.fingerprint", None),
    }
    return columns, meta
