"""DataLink bundles: a zip of ``RVS-Gaia DR3 <source_id>.<csv|ecsv|fits|xml>`` files (and other products).

The Gaia archive's DataLink service (and astroquery, which always asks for one) returns a zip with one
file per product and source. Every RVS member is read; other products (``XP_SAMPLED-``,
``XP_CONTINUOUS-``, ``MCMC_GSPPHOT-`` ...) are ignored and listed in the problems.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from starlabel.errors import DataFileError
from starlabel_gaia.rvs_batch import RvsBatch
from starlabel_gaia.rvs_sniff import is_rvs_member

SHOWN_MEMBERS = 10
"""Ignored member names listed before "and N more"."""


def read_zip(path: Path, read_member: Callable[[bytes, str, str], RvsBatch]) -> RvsBatch:
    """Read every RVS member of a DataLink zip bundle.

    Parameters
    ----------
    path : Path
        The zip file.
    read_member : callable
        ``read_member(data, label, name)`` reads one member's bytes (dispatching on its format).

    Returns
    -------
    RvsBatch
        The spectra of all RVS members in archive order. ``problems`` lists members that failed
        (with the reason) and, in one line, the members that are not RVS products.

    Raises
    ------
    DataFileError
        Not a readable zip, no RVS member, or no RVS member could be read.
    """
    try:
        with zipfile.ZipFile(path) as bundle:
            # not ZipInfo.is_dir(): it raises IndexError for an empty member name (Python 3.11)
            infos = [info for info in bundle.infolist() if not info.filename.endswith("/")]
            members = [info for info in infos if is_rvs_member(info.filename)]
            others = [info.filename for info in infos if not is_rvs_member(info.filename)]
            if not members:
                raise DataFileError(
                    str(path),
                    f"no RVS product in this zip (members named 'RVS-Gaia DR3 <source_id>.<ext>'); found: {_listing(others)}",
                )
            batches: list[RvsBatch] = []
            failures: list[str] = []
            for info in members:
                label = f"{path}[{info.filename}]"
                try:
                    batches.append(read_member(bundle.read(info), label, info.filename.rsplit("/", 1)[-1]))
                except DataFileError as error:
                    failures.append(f"{error}; member skipped")
                except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError) as error:
                    # RuntimeError: flagged encrypted; NotImplementedError (a RuntimeError): unsupported
                    # compression method or flag
                    failures.append(f"{label}: cannot be extracted ({type(error).__name__}: {error}); member skipped")
    except (zipfile.BadZipFile, OSError) as error:
        raise DataFileError(str(path), f"cannot read as a zip bundle: {type(error).__name__}: {error}") from None
    if not batches:
        raise DataFileError(str(path), "no RVS member could be read: " + " | ".join(failures))
    ignored = [f"{path}: ignored {len(others)} members that are not RVS products: {_listing(others)}"] if others else []
    return RvsBatch.concat(batches, failures + ignored)


def _listing(names: list[str]) -> str:
    """Up to :data:`SHOWN_MEMBERS` names, then a count."""
    if not names:
        return "(none)"
    shown = ", ".join(names[:SHOWN_MEMBERS])
    return shown + (f" and {len(names) - SHOWN_MEMBERS} more" if len(names) > SHOWN_MEMBERS else "")
