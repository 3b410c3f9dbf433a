"""Writing Gaia archive bulk files: gzip-compressed ECSV, one source per row, arrays as quoted JSON.

This is the layout of the archive's bulk downloads (``RvsMeanSpectrum_NNNNNN-MMMMMM.csv.gz``,
``XpSampledMeanSpectrum_NNNNNN-MMMMMM.csv.gz``; Gaia DR3 documentation §13.2.5, see also the project's
FORMATS sheet §1b and §2b): the YAML header lines ``# %ECSV 1.0``, ``# ---``, ``# delimiter: ','``,
``# datatype:`` with one block per column (``name``, ``datatype``, ``subtype`` for arrays, ``unit``,
``description``, ``meta: {ucd, utype}``), then the CSV header line and one line per source. Array columns
are declared ``datatype: string`` with ``subtype: 'float32[null]'`` and written ``"[v1,v2,…]"``: float32
values as the archive's Java writer spells them (:mod:`starlabel_gaia.float_text`), ``null`` for a
missing element. Missing scalars are empty fields. The gzip stream uses the fastest level (1; the
digits of noisy spectra hardly compress better at higher levels) and ``mtime = 0``, so that the same
spectra give the same bytes.

File names: ``<Prefix>_NNNNNN-MMMMMM.csv.gz`` with NNNNNN-MMMMMM the first and last HEALPix level-8 index
(``source_id >> 43``) of the file's rows, as in the archive. A name already taken in the folder (several
batches written into one folder, or ranges that overlap) gets ``_2``, ``_3``, … before ``.csv.gz``; the
name is claimed atomically (a hard link from a temporary file, which fails when the name exists), so
concurrent writers never overwrite each other and an interrupted write leaves only a hidden ``.part``
file, never a truncated ``.csv.gz``.
"""

from __future__ import annotations

import errno
import gzip
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from starlabel.containers import Spectra
from starlabel.errors import SimulationError
from starlabel_gaia.float_text import format_rows

ROWS_PER_FILE = 5000
"""Largest number of sources in one written file."""
ROWS_PER_STEP = 64
"""Rows formatted and compressed at a time (bounds the text held in memory)."""
GZIP_LEVEL = 1
"""Fastest deflate: about 15 times faster than the default level 6 on spectra, files about 20 % larger."""
HEALPIX8_SHIFT = 43
HEALPIX8_LAST = 786431
"""12 · 4^8 − 1: the last HEALPix level-8 index (the archive's last file ends with it)."""


@dataclass(frozen=True)
class EcsvColumn:
    """One column declaration of the ECSV header.

    Attributes
    ----------
    name, datatype : str
        As declared (``datatype: string`` for the JSON arrays).
    description : str
        The archive's description.
    ucd : str
        Unified content descriptor (``meta: ucd``).
    subtype : str or None
        For arrays: ``float32[null]``.
    unit : str or None
        The archive's unit string (``deg``, ``W.m**-2.nm**-1``).
    utype : str or None
        ``meta: utype`` where the archive gives one.
    """

    name: str
    datatype: str
    description: str
    ucd: str
    subtype: str | None = None
    unit: str | None = None
    utype: str | None = None


def ecsv_header(columns: Sequence[EcsvColumn]) -> str:
    """The ``#`` lines and the CSV header line of a bulk file with ``columns``."""
    lines = ["# %ECSV 1.0", "# ---", "# delimiter: ','", "# datatype:"]
    for column in columns:
        lines += ["# -", f"#   name: {column.name}", f"#   datatype: {column.datatype}"]
        if column.subtype:
            lines.append(f"#   subtype: '{column.subtype}'")
        if column.unit:
            lines.append(f"#   unit: {column.unit}")
        lines += [f"#   description: {column.description}", "#   meta:", f"#     ucd: {column.ucd}"]
        if column.utype:
            lines.append(f"#     utype: {column.utype}")
    lines.append(",".join(column.name for column in columns))
    return "\n".join(lines) + "\n"


def healpix8_range(source_id: np.ndarray) -> tuple[int, int]:
    """First and last HEALPix level-8 index of ``source_id`` (``id >> 43``, clipped to 0 … 786431)."""
    level8 = np.clip(np.asarray(source_id, dtype=np.int64) >> HEALPIX8_SHIFT, 0, HEALPIX8_LAST)
    return int(level8.min()), int(level8.max())


def write_bulk(
    folder: Path,
    prefix: str,
    columns: Sequence[EcsvColumn],
    source_id: np.ndarray,
    scalars: Mapping[str, np.ndarray],
    arrays: Mapping[str, np.ndarray],
    rows_per_file: int = ROWS_PER_FILE,
) -> list[Path]:
    """Write rows as bulk files of at most ``rows_per_file`` sources; return the paths, in row order.

    Parameters
    ----------
    folder : Path
        Created when missing.
    prefix : str
        File-name prefix (``RvsMeanSpectrum``).
    columns : sequence of EcsvColumn
        Every column, in file order; ``source_id`` among them.
    source_id : numpy.ndarray
        (N,) int64 ids.
    scalars : mapping of str to numpy.ndarray
        (N,) values of the other scalar columns: integers (``-1`` = missing) or floats (NaN = missing).
    arrays : mapping of str to numpy.ndarray
        (N, P) float32 values of the array columns (NaN = ``null``).
    rows_per_file : int
        Largest number of rows per file.

    Raises
    ------
    SimulationError
        The folder cannot be written (naming it and the system's reason).
    """
    folder = Path(folder)
    n = int(source_id.shape[0])
    cells = {"source_id": np.asarray(source_id, dtype=np.int64), **scalars}
    header = ecsv_header(columns).encode("ascii")
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for begin in range(0, n, rows_per_file):
            rows = slice(begin, min(begin + rows_per_file, n))
            first, last = healpix8_range(cells["source_id"][rows])
            temporary = folder / f".{prefix}_{uuid.uuid4().hex}.part"
            try:
                with (
                    open(temporary, "wb") as raw,
                    gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=raw, mtime=0) as stream,
                ):
                    stream.write(header)
                    for step in range(rows.start, rows.stop, ROWS_PER_STEP):
                        part = slice(step, min(step + ROWS_PER_STEP, rows.stop))
                        stream.write(_lines(columns, cells, arrays, part))
                written.append(_claim(temporary, folder, f"{prefix}_{first:06d}-{last:06d}", ".csv.gz"))
            finally:
                temporary.unlink(missing_ok=True)
    except OSError as error:
        raise SimulationError(
            f"{folder}: cannot write {prefix} files ({type(error).__name__}: {error}); choose a writable "
            "output folder with free space"
        ) from None
    return written


def _lines(
    columns: Sequence[EcsvColumn], cells: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray], rows: slice
) -> bytes:
    """The CSV lines of ``rows``."""
    texts: list[list[bytes]] = []
    for column in columns:
        if column.name in arrays:
            texts.append([b'"[' + text + b']"' for text in format_rows(arrays[column.name][rows])])
        else:
            texts.append(_scalar_texts(cells[column.name][rows]))
    return b"".join(b",".join(fields) + b"\n" for fields in zip(*texts, strict=True))


def _scalar_texts(values: np.ndarray) -> list[bytes]:
    """Integers exactly (``-1`` → empty), floats as Python's shortest repr (NaN → empty)."""
    if values.dtype.kind in "iu":
        return [b"" if v == -1 else str(v).encode() for v in values.tolist()]
    return [b"" if v != v else repr(float(v)).encode() for v in values.tolist()]


def _claim(temporary: Path, folder: Path, stem: str, suffix: str) -> Path:
    """Give ``temporary`` the first free name ``stem[_k]suffix`` in ``folder``, atomically."""
    for attempt in range(1, 100000):
        target = folder / (f"{stem}{suffix}" if attempt == 1 else f"{stem}_{attempt}{suffix}")
        try:
            os.link(temporary, target)
            return target
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            if target.exists():  # no hard links on this file system: check, then rename
                continue
            os.replace(temporary, target)
            return target
    raise FileExistsError(f"no free name {stem}_<k>{suffix} in {folder}")


def prepare(spectra: Spectra, wavelength: np.ndarray, writer: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check that ``spectra`` can be written on the archive grid ``wavelength``; return ids, flux, flux_error.

    ``flux_error = 1 / sqrt(ivar)`` where ``ivar > 0``, the flux is finite and the pixel is not masked;
    NaN (written ``null``) elsewhere, so reading back gives ``ivar = 0`` and the mask there. Flux is NaN
    only where it is not finite.

    Parameters
    ----------
    spectra : Spectra
        What to write.
    wavelength : numpy.ndarray
        (P,) archive grid in nm (vacuum).
    writer : str
        Reader name, for messages.

    Raises
    ------
    SimulationError
        Ids that are not positive integers (Gaia source ids), air wavelengths, or another grid.
    """
    ids = np.asarray(spectra.source_id)
    if len(spectra) and (ids.dtype.kind not in "iu" or ids.min() <= 0):
        shown = ids[:3].tolist()
        raise SimulationError(
            f"{writer}: cannot write spectra with source ids {shown} (dtype {ids.dtype}): the Gaia archive "
            "files need positive int64 Gaia source_ids"
        )
    if spectra.medium != "vacuum":
        raise SimulationError(f"{writer}: spectra in {spectra.medium} wavelengths; the Gaia archive grid is vacuum")
    given = _in_nm(np.asarray(spectra.wavelength, dtype=np.float64), spectra.unit, writer)
    rows = given.reshape(-1, given.shape[-1])
    if rows.shape[1] != wavelength.size or np.abs(rows - wavelength[None, :]).max(initial=0.0) > 1e-6:
        found = f"{rows.shape[1]} pixels, {np.nanmin(rows):g}-{np.nanmax(rows):g} nm" if rows.size else "no pixels"
        raise SimulationError(
            f"{writer}: spectra are on another grid ({found}); the archive grid is {wavelength.size} pixels, "
            f"{wavelength[0]:g}-{wavelength[-1]:g} nm (the reader's simulation_grid())"
        )
    flux = np.asarray(spectra.flux, dtype=np.float64)
    ivar = np.asarray(spectra.ivar, dtype=np.float64)
    good = np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0) & ~np.asarray(spectra.mask, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sigma = np.where(good, 1.0 / np.sqrt(np.where(good, ivar, 1.0)), np.nan)
    flux = np.where(np.isfinite(flux), flux, np.nan)
    return ids.astype(np.int64), flux.astype(np.float32), sigma.astype(np.float32)


def meta_column(spectra: Spectra, key: str, integer: bool) -> np.ndarray:
    """``spectra.meta[key]`` as int64 (``-1`` = missing) or float64 (NaN = missing); all missing when absent."""
    n = len(spectra)
    value = spectra.meta.get(key)
    if value is None:
        return np.full(n, -1, dtype=np.int64) if integer else np.full(n, np.nan)
    value = np.asarray(value)
    if integer:
        if value.dtype.kind in "iu":
            return value.astype(np.int64)
        numbers = value.astype(np.float64)
        return np.where(np.isfinite(numbers), numbers, -1).astype(np.int64)
    return value.astype(np.float64)


def _in_nm(wavelength: np.ndarray, unit: str, writer: str) -> np.ndarray:
    """``wavelength`` converted from ``unit`` to nm."""
    if unit.strip().lower() == "nm":
        return wavelength
    import astropy.units as u

    try:
        return (wavelength * u.Unit(unit)).to_value(u.nm)
    except (ValueError, TypeError, u.UnitsError) as error:
        raise SimulationError(f"{writer}: wavelength unit {unit!r} is not a length ({error})") from None
