"""DataLink RVS products as text: CSV (scalars repeated on every row) and ECSV (scalars in ``# meta:``).

CSV, INDIVIDUAL [real samples]: ``source_id,solution_id,ra,dec,wavelength,flux,flux_error,
combined_transits,combined_ccds,deblended_ccds``, 2401 rows, empty fields where a value is missing.
ECSV, INDIVIDUAL [unconfirmed for RVS; as the archive's XP_SAMPLED products]: ``wavelength,flux,
flux_error`` with ``source_id``, ``solution_id``, ``spatialLocation`` ... in the YAML ``meta``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from starlabel.errors import DataFileError, MissingColumnError
from starlabel_gaia.rvs_batch import META_FLOAT, META_INT, RvsBatch, parse_int
from starlabel_gaia.rvs_pixels import LAYOUT, assemble, id_from_name
from starlabel_gaia.rvs_text import column_names, parse_ecsv_header

_MISSING = ("", "null", "nan", "none", "--")


def read_pixel_text(data: bytes, label: str, name: str) -> RvsBatch:
    """Read a per-pixel CSV or ECSV DataLink product.

    Parameters
    ----------
    data : bytes
        The whole (decompressed) file.
    label : str
        How messages name it.
    name : str
        Its file name (``RVS-Gaia DR3 <source_id>.csv``), the last resort for the source id.

    Raises
    ------
    MissingColumnError
        No ``wavelength``, ``flux`` or ``flux_error`` column.
    DataFileError
        A line that cannot be split into CSV fields (a field over 128 kB), no source id anywhere, or no
        source covering the 2401-pixel grid.
    """
    lines = data.decode("utf-8", errors="replace").splitlines()
    header = parse_ecsv_header(line for line in lines if line.startswith("#"))
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    names = column_names(body[0], header.delimiter) if body else []
    for needed in ("wavelength", "flux", "flux_error"):
        if needed not in names:
            raise MissingColumnError(label, needed, names, LAYOUT)
    problems: list[str] = []
    rows = []
    reader = csv.reader(body[1:], delimiter=header.delimiter)
    number = 1
    try:
        for number, row in enumerate(reader, start=2):
            if len(row) == len(names):
                rows.append(row)
            else:
                problems.append(f"{label}: data line {number}: {len(row)} fields, expected {len(names)}; row skipped")
    except csv.Error as error:  # a field over csv.field_size_limit() (128 kB), ...: the file is corrupt
        raise DataFileError(
            label, f"data line {number + 1} cannot be split into CSV fields ({error}): the file is corrupt; {LAYOUT}"
        ) from None
    columns = {key: [row[i] for row in rows] for i, key in enumerate(names)}
    meta = header.meta() if header.is_ecsv else {}

    if "source_id" in columns:
        ids: list[int | None] = [_int_or_none(value) for value in columns["source_id"]]
    else:
        found = _int_or_none(meta.get("source_id"))
        found = found if found is not None else id_from_name(name)
        ids = [found] * len(rows)

    wavelength, bad_w = _floats(columns["wavelength"])
    flux, bad_f = _floats(columns["flux"])
    flux_error, bad_e = _floats(columns["flux_error"])
    if bad_w + bad_f + bad_e:
        problems.append(f"{label}: {bad_w + bad_f + bad_e} values that are not numbers were taken as missing")
    batch = assemble(label, ids, wavelength, flux, flux_error, _scalars(columns, meta, len(rows)))
    batch.problems[:0] = problems
    return batch


def _scalars(columns: Mapping[str, list[str]], meta: Mapping[str, Any], n: int) -> dict[str, Sequence[object]]:
    """Per-row meta values: from columns when present, else from the ECSV ``meta`` (repeated)."""
    location = meta.get("spatialLocation")
    if isinstance(location, list | tuple) and len(location) == 2:
        meta = {**meta, "ra": location[0], "dec": location[1]}
    out: dict[str, Sequence[object]] = {}
    for key in (*META_INT, *META_FLOAT):
        if key in columns:
            out[key] = [value or None for value in columns[key]]
        elif key in meta:
            out[key] = [meta[key]] * n
    return out


def _int_or_none(value: object) -> int | None:
    """An exact positive-or-not integer, or None when missing or not an integer."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = parse_int(value)
    return None if number == -1 and str(value).strip() != "-1" else number


def _floats(values: list[str]) -> tuple[np.ndarray, int]:
    """float64 values (NaN where missing or not a number) and how many were not numbers."""
    out = np.empty(len(values), dtype=np.float64)
    bad = 0
    for i, value in enumerate(values):
        text = value.strip()
        if text.lower() in _MISSING:
            out[i] = np.nan
            continue
        try:
            out[i] = float(text)
        except ValueError:
            out[i] = np.nan
            bad += 1
    return out, bad
