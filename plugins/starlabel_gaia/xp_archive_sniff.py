"""Recognising the Gaia archive's XP_SAMPLED files from their first bytes, for ``gaia_xp_sampled.identify``.

Never raises. Evidence of XP (never of RVS: first wavelength 846 nm, 2401 pixels):

- zip: a member ``XP_SAMPLED-Gaia DR3 <id>.<ext>`` and no ``RVS-`` member (a bundle with RVS spectra is
  claimed by ``gaia_rvs_dr3``; ``gaia_xp_sampled`` still reads its XP members when named in a descriptor);
- FITS HDU1 binary table with ``flux``, ``flux_error`` and either ``wavelength`` with 343 rows (a multiple of
  343 with ``source_id``; ``WAVESTAR`` 336 when present), or ``source_id`` and 343-element ``flux``
  (``PE(343)``, ``343E``);
- CSV/ECSV (gzip allowed): ``flux``, ``flux_error`` and either ``wavelength`` whose first value is 336 nm, or
  ``source_id`` and a first ``flux`` array of 343 values;
- VOTable: ``FIELD`` s ``flux``, ``flux_error`` and either ``wavelength`` with ``spectralCoverageBoundsStart``
  (or the first cell) 336 nm, or ``source_id`` with ``arraysize="343"``; for ``arraysize="*"`` a file
  under :data:`MAX_PARSE_BYTES` is parsed and its first flux array counted.

XP_CONTINUOUS files (coefficients, no ``flux``) are not XP_SAMPLED files.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from starlabel.fitspeek import column_names as fits_column_names
from starlabel.fitspeek import peek_header
from starlabel_gaia.grid import XP_PIXELS, XP_START_NM
from starlabel_gaia.rvs_sniff import FITS_MAGIC, ZIP_MAGIC, has_archive_suffix, read_head
from starlabel_gaia.rvs_text import column_names, complete_lines, split_fields, strip_array
from starlabel_gaia.xp_archive import product_of

HEAD_BYTES = 128 * 1024
MAX_PARSE_BYTES = 4 * 1024 * 1024
_FIELD = re.compile(r"<FIELD\b([^>]*)>", re.IGNORECASE)
_PARAM = re.compile(r"<PARAM\b([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"(\w+)\s*=\s*\"([^\"]*)\"")
_FIRST_TD = re.compile(r"<TABLEDATA>\s*<TR>\s*<TD>([^<]*)</TD>", re.IGNORECASE)
_REPEAT = re.compile(r"(\d+)")


def is_xp_sampled_archive(path: str | Path) -> bool:
    """True when ``path`` is an archive XP_SAMPLED file or a zip bundle holding one (never raises)."""
    try:
        path = Path(path)
        if not path.is_file() or not has_archive_suffix(path):
            return False
        with open(path, "rb") as handle:
            magic = handle.read(9)
        if magic.startswith(ZIP_MAGIC):
            with zipfile.ZipFile(path) as bundle:
                products = {product_of(i.filename) for i in bundle.infolist() if not i.is_dir()}
            return "XP_SAMPLED" in products and "RVS" not in products  # RVS bundles belong to gaia_rvs_dr3
        if magic.startswith(FITS_MAGIC):
            return _fits_is_xp(peek_header(path, hdu=1))
        head = read_head(path, HEAD_BYTES).decode("utf-8", errors="replace")
        if head.lstrip().startswith("<"):
            return _votable_is_xp(head, path)
        return _text_is_xp(head)
    except Exception:  # identification never raises
        return False


def _near_start(value: object) -> bool:
    try:
        return abs(float(str(value).strip()) - XP_START_NM) < 1e-3
    except ValueError:
        return False


def _fits_is_xp(header: dict[str, object] | None) -> bool:
    if header is None or header.get("XTENSION") != "BINTABLE":
        return False
    names = [n.lower() for n in fits_column_names(header)]
    if not {"flux", "flux_error"} <= set(names) or "medflux" in names:
        return False
    rows = header.get("NAXIS2")
    if "wavelength" in names:
        start = header.get("WAVESTAR")
        if start is not None and not _near_start(start):
            return False
        return (
            isinstance(rows, int)
            and rows > 0
            and (rows == XP_PIXELS or (rows % XP_PIXELS == 0 and "source_id" in names))
        )
    if "source_id" not in names:
        return False
    repeat = _REPEAT.findall(str(header.get(f"TFORM{names.index('flux') + 1}", "")))
    return bool(repeat) and int(repeat[-1]) == XP_PIXELS


def _text_is_xp(text: str) -> bool:
    lines = complete_lines(text)
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    if len(body) < 2:
        return False
    delimiter = " " if "delimiter: ' '" in text[:20000] else ","
    names = column_names(body[0], delimiter)
    if not {"flux", "flux_error"} <= set(names):
        return False
    first = split_fields(body[1].encode("utf-8", errors="replace"), delimiter.encode())
    if first is None or len(first) != len(names):
        return False
    if "wavelength" in names:
        return _near_start(first[names.index("wavelength")].decode("ascii", errors="replace"))
    if "source_id" not in names:
        return False
    array = strip_array(first[names.index("flux")])
    return bool(array) and array.count(b",") + 1 == XP_PIXELS


def _attributes(pattern: re.Pattern[str], text: str) -> dict[str, dict[str, str]]:
    out = {}
    for attributes in pattern.findall(text):
        values = dict(_ATTRIBUTE.findall(attributes))
        if "name" in values:
            out[values["name"].lower()] = values
    return out


def _votable_is_xp(text: str, path: Path) -> bool:
    if "<VOTABLE" not in text.upper():
        return False
    fields = _attributes(_FIELD, text)
    if not {"flux", "flux_error"} <= set(fields):
        return False
    if "wavelength" in fields:
        params = _attributes(_PARAM, text)
        if "spectralcoverageboundsstart" in params:
            return _near_start(params["spectralcoverageboundsstart"].get("value", ""))
        first = _FIRST_TD.search(text)
        return first is not None and _near_start(first.group(1))
    if "source_id" not in fields:
        return False
    size = fields["flux"].get("arraysize", "").strip()
    if size == str(XP_PIXELS):
        return True
    if size.endswith("*") and path.stat().st_size <= MAX_PARSE_BYTES:
        return _first_flux_length(path) == XP_PIXELS
    return False


def _first_flux_length(path: Path) -> int | None:
    """Length of the first ``flux`` array of a small VOTable (parsed with astropy)."""
    import warnings

    import numpy as np
    from astropy.io.votable import parse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = parse(str(path), verify="ignore").get_first_table()
    array = table.array
    if len(array) == 0:
        return None
    names = {name.lower(): name for name in array.dtype.names}
    return int(np.size(array[names["flux"]][0]))
