"""DataLink RVS products as FITS or VOTable, per pixel (INDIVIDUAL) or one row per source (RAW).

FITS [unconfirmed for RVS; as the archive's XP_SAMPLED products]: empty primary HDU, a BINTABLE with
``wavelength`` (D, nm), ``flux``, ``flux_error`` (E) and the scalars as header strings ``SOURCEID``,
``SOLUTION``, ``POS = '(ra, dec)'``. VOTable: the same table, scalars as ``PARAM`` s (``source_id``,
``solution_id``, ``spatialLocation``). A table without ``wavelength`` but with 2401-element ``flux`` and
``flux_error`` arrays and a ``source_id`` column is read one source per row.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.errors import DataFileError, MissingColumnError
from starlabel.fitspeek import fits_structure_problem
from starlabel_gaia.rvs_batch import META_FLOAT, META_INT, RvsBatch, parse_int
from starlabel_gaia.rvs_grid import RVS_PIXELS
from starlabel_gaia.rvs_pixels import LAYOUT, assemble, id_from_name

_FITS_KEYS = {"source_id": ("SOURCEID", "SOURCE_ID"), "solution_id": ("SOLUTION", "SOLUTIONID", "SOLUTION_ID")}
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def read_fits(source: Path | bytes, label: str, name: str) -> RvsBatch:
    """Read the first binary table of a FITS file (path or bytes) that has ``flux`` and ``flux_error``."""
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyError

    problem = fits_structure_problem(source)  # before astropy: it would hang or allocate the declared sizes
    if problem is not None:
        raise DataFileError(label, f"cannot read as FITS: {problem}")
    try:
        with fits.open(io.BytesIO(source) if isinstance(source, bytes) else source, memmap=False) as hdul:
            for hdu in hdul[1:]:
                # a column whose TTYPE card is missing has no name: it cannot be one we read
                names = [n for n in hdu.columns.names if n] if isinstance(hdu, fits.BinTableHDU) else []
                if {"flux", "flux_error"} <= {n.lower() for n in names}:
                    columns = {n.lower(): hdu.data[n] for n in names}
                    meta = _fits_meta({**hdul[0].header, **hdu.header})
                    return _from_columns(columns, meta, label, name)
    except (OSError, ValueError, TypeError, KeyError, VerifyError) as error:
        raise DataFileError(label, f"cannot read as FITS: {type(error).__name__}: {error}") from None
    raise MissingColumnError(label, "flux", [], f"no binary table with flux and flux_error; {LAYOUT}")


def read_votable(source: Path | bytes, label: str, name: str) -> RvsBatch:
    """Read the first table of a VOTable (TABLEDATA or BINARY2) that has ``flux`` and ``flux_error``."""
    from astropy.io.votable import parse

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            votable = parse(io.BytesIO(source) if isinstance(source, bytes) else source, verify="ignore")
            for resource_table in votable.iter_tables():
                names = {f.name.lower(): f.name for f in resource_table.fields}
                if {"flux", "flux_error"} <= set(names):
                    array = resource_table.array
                    columns = {low: array[orig] for low, orig in names.items()}
                    meta = {p.name: p.value for p in votable.iter_fields_and_params() if hasattr(p, "value")}
                    meta.update({p.name: p.value for p in resource_table.params})
                    return _from_columns(columns, _votable_meta(meta), label, name)
    except (OSError, ValueError, TypeError, KeyError, IndexError) as error:
        raise DataFileError(label, f"cannot read as VOTable: {type(error).__name__}: {error}") from None
    raise MissingColumnError(label, "flux", [], f"no table with flux and flux_error; {LAYOUT}")


def _from_columns(columns: Mapping[str, Any], meta: Mapping[str, Any], label: str, name: str) -> RvsBatch:
    """Per-pixel table (with ``wavelength``) or one source per row (2-D ``flux``)."""
    flux, flux_error = _float_array(columns["flux"]), _float_array(columns["flux_error"])
    if "wavelength" in columns:
        n = flux.shape[0]
        if "source_id" in columns:
            ids: list[int | None] = _ids(columns["source_id"], label)
        else:
            found = meta.get("source_id")
            ids = [found if found is not None else id_from_name(name)] * n
        scalars = {key: _column_values(columns[key]) for key in (*META_INT, *META_FLOAT) if key in columns}
        scalars.update({key: [meta[key]] * n for key in (*META_INT, *META_FLOAT) if key not in scalars and key in meta})
        return assemble(label, ids, _float_array(columns["wavelength"]), flux, flux_error, scalars)
    if flux.ndim != 2 or flux.shape[1:] != (RVS_PIXELS,) or flux_error.shape != flux.shape:
        raise DataFileError(
            label, f"flux/flux_error have shape {flux.shape}/{flux_error.shape}, expected (N, {RVS_PIXELS}); {LAYOUT}"
        )
    if "source_id" not in columns:
        raise MissingColumnError(label, "source_id", sorted(columns), LAYOUT)
    ids = _ids(columns["source_id"], label)
    keep = [i for i, value in enumerate(ids) if value is not None]
    problems = [f"{label}: row {i + 1}: no source_id; skipped" for i, value in enumerate(ids) if value is None]
    scalars = {
        key: [_column_values(columns[key])[i] for i in keep] for key in (*META_INT, *META_FLOAT) if key in columns
    }
    return RvsBatch.from_rows([ids[i] for i in keep], flux[keep], flux_error[keep], scalars, problems)


def _float_array(column: Any) -> np.ndarray:
    """float64 array with NaN where masked (object columns of arrays are stacked)."""
    data = np.ma.asarray(column)
    if data.dtype == object:
        data = np.ma.asarray([np.ma.filled(np.ma.asarray(v, dtype=np.float64), np.nan) for v in data])
    return np.ma.filled(data.astype(np.float64), np.nan)


def _ids(column: Any, label: str) -> list[int | None]:
    """Exact integer ids (None where masked or not an integer); never through float."""
    data = np.ma.asarray(column)
    mask = np.ma.getmaskarray(data)
    values = np.ma.getdata(data)
    if values.dtype.kind == "f":
        raise DataFileError(label, "the source_id column holds floats; ids above 2**53 would be corrupted")
    out: list[int | None] = []
    for value, masked in zip(values.tolist(), mask.tolist(), strict=True):
        number = None if masked else parse_int(value)
        out.append(None if number is None or number == -1 else number)
    return out


def _column_values(column: Any) -> list[object]:
    """Python values of a scalar column, None where masked."""
    data = np.ma.asarray(column)
    return [
        None if masked else value
        for value, masked in zip(np.ma.getdata(data).tolist(), np.ma.getmaskarray(data).tolist(), strict=True)
    ]


def _fits_meta(header: Mapping[str, Any]) -> dict[str, Any]:
    """``source_id``, ``solution_id``, ``ra``, ``dec`` from header strings (``SOURCEID``, ``POS``, ...)."""
    meta: dict[str, Any] = {}
    for key, candidates in _FITS_KEYS.items():
        for card in candidates:
            if card in header and str(header[card]).strip():
                value = parse_int(str(header[card]))
                if value != -1:
                    meta[key] = value
                    break
    position = _NUMBER.findall(str(header.get("POS", "")))
    if len(position) == 2:
        meta["ra"], meta["dec"] = float(position[0]), float(position[1])
    return meta


def _votable_meta(params: Mapping[str, Any]) -> dict[str, Any]:
    """``source_id``, ``solution_id``, ``ra``, ``dec`` from VOTable ``PARAM`` values."""
    lower = {key.lower(): value for key, value in params.items()}
    meta: dict[str, Any] = {}
    for key in ("source_id", "solution_id"):
        value = lower.get(key)
        if value is not None and not np.ma.is_masked(value):
            number = parse_int(value.item() if isinstance(value, np.generic) else value)
            if number != -1:
                meta[key] = number
    location = lower.get("spatiallocation")
    if location is not None and np.size(location) == 2:
        meta["ra"], meta["dec"] = (float(v) for v in np.ravel(location))
    for key in META_INT + META_FLOAT:
        if key not in meta and lower.get(key) is not None:
            meta[key] = lower[key]
    return meta
