"""Reading any Gaia DR3 RVS mean-spectrum file into an :class:`RvsBatch`, dispatching on its content."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from starlabel.errors import DataFileError
from starlabel_gaia.rvs_batch import RvsBatch
from starlabel_gaia.rvs_bulk import iter_bulk, read_bulk
from starlabel_gaia.rvs_datalink_tables import read_fits, read_votable
from starlabel_gaia.rvs_datalink_text import read_pixel_text
from starlabel_gaia.rvs_sniff import FITS_MAGIC, GZIP_MAGIC, HEAD_BYTES, sniff, sniff_bytes
from starlabel_gaia.rvs_zip import read_zip

LAYOUTS = (
    "Gaia DR3 RVS mean spectra as the archive publishes them: bulk RvsMeanSpectrum_NNNNNN-MMMMMM.csv.gz "
    "(gzip ECSV, one source per row, flux/flux_error as 2401-value arrays); DataLink RVS products "
    "'RVS-Gaia DR3 <source_id>.csv|ecsv|fits|xml' (2401 rows of wavelength, flux, flux_error); or a zip "
    "bundle of them"
)


def iter_rvs(path: Path, prefetch: bool = False, finish: Callable[[RvsBatch], Any] | None = None) -> Iterator[Any]:
    """The spectra of ``path`` in batches: a bulk file streamed (see :func:`iter_bulk`), any other layout whole.

    ``finish``, when given, is applied to every batch (for a bulk file, in the thread that parsed it) and
    its results are yielded instead.

    Raises
    ------
    DataFileError
        As :func:`read_rvs` (for a bulk file, possibly after some batches were handed out).
    """
    if path.is_file() and sniff(path, strict=False) == "array_text":
        yield from iter_bulk(path, str(path), prefetch=prefetch, finish=finish)
    else:
        batch = read_rvs(path, prefetch)
        yield batch if finish is None else finish(batch)


def read_rvs(path: Path, prefetch: bool = False) -> RvsBatch:
    """Read ``path`` in whichever RVS layout it holds (``prefetch``: see :func:`read_bulk`).

    Raises
    ------
    DataFileError
        Missing file, or a file in none of the RVS layouts (the message lists them), or a malformed one.
    """
    if not path.is_file():
        raise DataFileError(str(path), "no such file" if not path.exists() else "not a file")
    layout = sniff(path, strict=False)
    label = str(path)
    if layout == "zip":
        return read_zip(path, read_member)
    if layout == "array_text":
        return read_bulk(path, label, prefetch)
    if layout == "pixel_text":
        return read_pixel_text(_whole(path), label, path.name)
    if layout == "fits":
        return read_fits(path, label, path.name)
    if layout == "votable":
        return read_votable(path, label, path.name)
    raise DataFileError(label, f"not a Gaia DR3 RVS mean-spectrum file; expected {LAYOUTS}")


def read_member(data: bytes, label: str, name: str) -> RvsBatch:
    """Read one file's bytes (a zip member), recognised from its content."""
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFileError(label, f"cannot decompress: {error}") from None
    if data.startswith(FITS_MAGIC):
        return read_fits(data, label, name)
    layout = sniff_bytes(data[:HEAD_BYTES], name, strict=False)
    if layout == "array_text":
        return read_bulk(io.BytesIO(data), label)
    if layout == "pixel_text":
        return read_pixel_text(data, label, name)
    if layout == "votable":
        return read_votable(data, label, name)
    raise DataFileError(label, f"not a Gaia DR3 RVS product; expected {LAYOUTS}")


def _whole(path: Path) -> bytes:
    """The file's bytes, decompressed when gzip (a DataLink product is a few hundred kB)."""
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFileError(str(path), f"cannot decompress: {error}") from None
    return data
