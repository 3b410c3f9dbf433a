"""The Gaia archive's XP_SAMPLED layouts, read into arrays on the default 343-pixel grid.

=============================  ==========================================================================
layout                         content
=============================  ==========================================================================
DataLink INDIVIDUAL CSV        343 rows per source: ``source_id, solution_id, ra, dec, wavelength, flux,
                               flux_error`` (several sources in one file are grouped by ``source_id``)
DataLink ECSV/FITS/VOTable     343 rows of ``wavelength, flux, flux_error``; the id in the ECSV ``meta``
                               (``source_id``), the FITS header (``SOURCEID``, a string) or a VOTable
                               ``PARAM``; else the member/file name ``XP_SAMPLED-Gaia DR3 <id>.<ext>``
RAW / bulk                     one row per source: ``source_id, solution_id, ra, dec, flux[343],
                               flux_error[343]`` (CSV ``"(…)"``, ECSV JSON, FITS ``PE(343)``, VOTable)
zip bundle                     every ``XP_SAMPLED-…`` member, each as above
=============================  ==========================================================================

Flux and error are in W m⁻² nm⁻¹ as published (float32 values in float64 arrays).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.errors import DataFileError, MissingColumnError
from starlabel.tables import find_column
from starlabel_gaia.grid import XP_PIXELS, xp_sampled_wavelength
from starlabel_gaia.xp_archive import MEMBER, ArchiveTable, array_column, exact_id, first_of, read_archive_tables

LAYOUT = (
    "expected a Gaia DR3 XP_SAMPLED product: 343 rows of wavelength (336-1020 nm, step 2), flux, flux_error "
    "per source (DataLink INDIVIDUAL), or one row per source with source_id and 343-element flux/flux_error "
    "arrays (RAW/bulk)"
)
WAVELENGTH_TOLERANCE_NM = 1e-6


@dataclass
class SampledRows:
    """XP sampled spectra read from one file: ids, flux, error (N × 343) and per-source scalars."""

    source_id: list[int]
    flux: list[np.ndarray] = field(default_factory=list)
    flux_error: list[np.ndarray] = field(default_factory=list)
    solution_id: list[int] = field(default_factory=list)
    ra: list[float] = field(default_factory=list)
    dec: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_sampled(path: Path) -> SampledRows:
    """Read every XP sampled spectrum of ``path`` (a file in one of the archive layouts, or a zip bundle).

    Raises
    ------
    DataFileError
        Unreadable file; wavelengths other than the default grid; arrays of another length than 343.
    MissingColumnError
        No ``flux``/``flux_error``, or RAW rows without ``source_id``.
    """
    out = SampledRows([])
    for part in read_archive_tables(path, "XP_SAMPLED"):
        _read_part(part, out)
    return out


def _read_part(part: ArchiveTable, out: SampledRows) -> None:
    table, label = part.table, part.label
    names = {want: find_column(table.colnames, [want]) for want in ("flux", "flux_error", "wavelength", "source_id")}
    for want in ("flux", "flux_error"):
        if names[want] is None:
            raise MissingColumnError(label, want, list(table.colnames), LAYOUT)
    if names["wavelength"] is not None:
        _per_pixel(part, names, out)
    else:
        _one_row_per_source(part, names, out)


def _per_pixel(part: ArchiveTable, names: dict[str, str | None], out: SampledRows) -> None:
    """DataLink INDIVIDUAL: 343 rows per source, grouped by the id column or one source per file."""
    table, label = part.table, part.label
    wavelength = _floats(table[names["wavelength"]], label)
    flux, sigma = _floats(table[names["flux"]], label), _floats(table[names["flux_error"]], label)
    if names["source_id"] is not None:
        column = table[names["source_id"]]
        ids = [exact_id(v) for v in np.ma.getdata(column).tolist()]
        masked = np.ma.getmaskarray(column)
        ids = [None if m else v for v, m in zip(ids, masked.tolist(), strict=True)]
    else:
        ids = [_meta_id(part)] * len(table)
    if any(v is None for v in ids):
        raise DataFileError(
            label, f"no source id for some rows (no source_id column value, metadata or name); {LAYOUT}"
        )
    order: dict[int, list[int]] = {}
    for row, value in enumerate(ids):
        order.setdefault(int(value), []).append(row)  # type: ignore[arg-type]
    grid = xp_sampled_wavelength()
    for source, rows in order.items():
        take = np.array(rows)
        if take.size != XP_PIXELS or np.abs(np.sort(wavelength[take]) - grid).max() > WAVELENGTH_TOLERANCE_NM:
            raise DataFileError(
                label,
                f"source {source}: {take.size} rows with wavelengths {_span(wavelength[take])}; expected the "
                f"{XP_PIXELS} default XP sampled wavelengths 336-1020 nm in 2 nm steps (other grids not supported)",
            )
        take = take[np.argsort(wavelength[take])]
        out.source_id.append(source)
        out.flux.append(flux[take])
        out.flux_error.append(sigma[take])
        out.solution_id.append(_scalar_id(table, "solution_id", take[0], part.meta, ("solution_id", "solution")))
        ra, dec = _position(table, take[0], part.meta, label)
        out.ra.append(ra)
        out.dec.append(dec)


def _one_row_per_source(part: ArchiveTable, names: dict[str, str | None], out: SampledRows) -> None:
    """RAW/bulk: one row per source with 343-element arrays."""
    table, label = part.table, part.label
    if names["source_id"] is None:
        raise MissingColumnError(label, "source_id", list(table.colnames), LAYOUT)
    flux, flux_missing = array_column(table[names["flux"]], XP_PIXELS, label, names["flux"])  # type: ignore[index]
    sigma, _ = array_column(table[names["flux_error"]], XP_PIXELS, label, names["flux_error"])  # type: ignore[index]
    column = table[names["source_id"]]
    if np.ma.getdata(column).dtype.kind == "f":
        raise DataFileError(label, "the source_id column holds floats; ids above 2**53 would be corrupted")
    masked = np.ma.getmaskarray(column)
    for row, value in enumerate(np.ma.getdata(column).tolist()):
        source = None if masked[row] else exact_id(value)
        if source is None or source <= 0:
            out.problems.append(f"{label}: row {row + 1}: no source_id; skipped")
            continue
        if flux_missing[row]:
            out.problems.append(f"{label}: row {row + 1} (source {source}): no flux array; skipped")
            continue
        out.source_id.append(source)
        out.flux.append(flux[row])
        out.flux_error.append(sigma[row])
        out.solution_id.append(_scalar_id(table, "solution_id", row, {}, ()))
        ra, dec = _position(table, row, {}, label)
        out.ra.append(ra)
        out.dec.append(dec)


def _floats(column: Any, label: str) -> np.ndarray:
    """float64 values of a scalar column, NaN where masked.

    Raises
    ------
    DataFileError
        The column holds text that is not a number (astropy then reads the whole column as strings).
    """
    data = np.ma.asarray(column)
    if data.dtype.kind in "biuf":
        return np.ma.filled(data.astype(np.float64), np.nan)
    # Text: value by value. numpy's astype(float64) of a column of long strings allocates gigabytes
    # (2 GB for a 4 MB cell) before it fails.
    values, masked = np.ma.getdata(data).ravel().tolist(), np.ma.getmaskarray(data).ravel().tolist()
    out = np.full(len(values), np.nan)
    for i, (value, skip) in enumerate(zip(values, masked, strict=True)):
        if skip:
            continue
        try:
            out[i] = float(value)
        except (ValueError, TypeError):
            name = getattr(column, "name", "?")
            raise DataFileError(label, f"column {name!r} holds {str(value)[:40]!r}, not a number; {LAYOUT}") from None
    return out.reshape(data.shape)


def _meta_id(part: ArchiveTable) -> int | None:
    """Source id from the metadata (ECSV meta, FITS ``SOURCEID``, VOTable PARAM) or the DataLink name."""
    value = exact_id(first_of(part.meta, ("source_id", "sourceid")))
    if value is not None:
        return value
    match = MEMBER.match(part.name)
    return exact_id(match.group("id")) if match else None


def _scalar_id(table: Any, name: str, row: int, meta: dict[str, Any], keys: tuple[str, ...]) -> int:
    """An integer scalar from a column (row) or metadata; −1 when absent."""
    found = find_column(table.colnames, [name])
    if found is not None and not np.ma.getmaskarray(table[found])[row]:
        value = exact_id(np.ma.getdata(table[found])[row])
    else:
        value = exact_id(first_of(meta, keys))
    return -1 if value is None else value


def _position(table: Any, row: int, meta: dict[str, Any], label: str) -> tuple[float, float]:
    """``(ra, dec)`` in degrees from columns, ``spatialLocation``/``POS`` metadata, else NaN."""
    ra_name, dec_name = find_column(table.colnames, ["ra"]), find_column(table.colnames, ["dec"])
    if ra_name is not None and dec_name is not None:
        return float(_floats(table[ra_name], label)[row]), float(_floats(table[dec_name], label)[row])
    location = first_of(meta, ("spatiallocation", "pos"))
    if location is None:
        return float("nan"), float("nan")
    if isinstance(location, str):
        parts = location.strip("()[] ").replace(",", " ").split()
    else:
        parts = [str(v) for v in np.ravel(np.ma.filled(np.ma.asarray(location, dtype=float), np.nan))]
    try:
        return float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        return float("nan"), float("nan")


def _span(values: np.ndarray) -> str:
    """``first-last nm`` of an array, for messages."""
    finite = values[np.isfinite(values)]
    return f"{finite.min():g}-{finite.max():g} nm" if finite.size else "(none)"
