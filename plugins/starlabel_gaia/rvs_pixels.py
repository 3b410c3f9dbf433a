"""Per-pixel RVS tables (DataLink ``INDIVIDUAL``/``COMBINED``): one row per wavelength, 2401 per source.

Whatever the container (CSV, ECSV, FITS, VOTable), the table has ``wavelength, flux, flux_error`` and,
in CSV, the per-source scalars repeated on every row; elsewhere they sit in the metadata.
:func:`assemble` groups consecutive rows of one source, checks that they are exactly the 2401 pixels
of the grid (in any order) and builds an :class:`RvsBatch`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from starlabel.errors import DataFileError
from starlabel_gaia.rvs_batch import RvsBatch
from starlabel_gaia.rvs_grid import RVS_PIXELS, RVS_START_NM, RVS_STEP_NM, pixel_index

LAYOUT = (
    "expected layout (Gaia DR3 DataLink RVS product, INDIVIDUAL): one row per pixel with columns "
    f"wavelength (nm, {RVS_START_NM:.2f}-{RVS_START_NM + RVS_STEP_NM * (RVS_PIXELS - 1):.2f} in "
    f"{RVS_STEP_NM} nm steps), flux, flux_error, {RVS_PIXELS} rows per source, the source_id in a column, "
    "in the metadata or in the file name 'RVS-Gaia DR3 <source_id>.<ext>'"
)
_NAME_ID = re.compile(r"DR3[ _]?(\d{5,20})")


def id_from_name(name: str) -> int | None:
    """The source id in a DataLink file name (``RVS-Gaia DR3 <source_id>.csv``), or None (also when the
    number does not fit in int64, as no source id does)."""
    match = _NAME_ID.search(name)
    number = int(match.group(1)) if match else None
    return number if number is not None and number < 2**63 else None


def assemble(
    label: str,
    source_id: Sequence[int | None],
    wavelength: np.ndarray,
    flux: np.ndarray,
    flux_error: np.ndarray,
    scalars: Mapping[str, Sequence[object]],
) -> RvsBatch:
    """Build spectra from per-pixel rows.

    Parameters
    ----------
    label : str
        File (or file member) name for messages.
    source_id : sequence of int or None
        Per row; None marks a row without an id (reported, dropped).
    wavelength, flux, flux_error : numpy.ndarray
        Per row; NaN where missing.
    scalars : mapping of str to sequence
        Per-row meta values (the first row of each source is used).

    Returns
    -------
    RvsBatch
        One spectrum per run of rows with the same id that covers the grid exactly.

    Raises
    ------
    DataFileError
        No source covers the grid.
    """
    problems: list[str] = []
    n = len(source_id)
    runs: list[tuple[int, int]] = []
    begin = 0
    for row in range(1, n + 1):
        if row == n or source_id[row] != source_id[begin]:
            runs.append((begin, row))
            begin = row
    ids: list[int] = []
    first_rows: list[int] = []
    flux_rows, error_rows = [], []
    for begin, end in runs:
        where = f"{label}: rows {begin + 1}-{end}"
        if source_id[begin] is None:
            problems.append(f"{where}: no source_id; skipped")
            continue
        index = pixel_index(wavelength[begin:end])
        if index is None or end - begin != RVS_PIXELS or np.unique(index).size != RVS_PIXELS:
            problems.append(
                f"{where} (source_id {source_id[begin]}): {end - begin} rows that are not the {RVS_PIXELS} pixels "
                f"of the RVS grid; skipped"
            )
            continue
        spectrum = np.full((2, RVS_PIXELS), np.nan, dtype=np.float32)
        spectrum[0, index] = flux[begin:end]
        spectrum[1, index] = flux_error[begin:end]
        flux_rows.append(spectrum[0])
        error_rows.append(spectrum[1])
        ids.append(int(source_id[begin]))  # type: ignore[arg-type]
        first_rows.append(begin)
    if not ids:
        detail = f" ({problems[0]})" if problems else ""
        raise DataFileError(label, f"no source with the {RVS_PIXELS} RVS pixels{detail}; {LAYOUT}")
    return RvsBatch.from_rows(
        ids,
        np.array(flux_rows),
        np.array(error_rows),
        {key: [values[row] for row in first_rows] for key, values in scalars.items()},
        problems,
    )
