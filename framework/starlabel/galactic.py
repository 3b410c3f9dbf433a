"""Galactocentric positions of catalogue stars: sky position and parallax → cylindrical R, Z in kpc.

Frame
-----
:func:`galactocentric_rz` transforms ICRS ``(ra, dec, distance)`` with
:class:`astropy.coordinates.Galactocentric` using **astropy's default frame parameters** (the
``"latest"`` set of :data:`astropy.coordinates.galactocentric_frame_defaults`; in astropy 4.0 to 8 the
``"v4.0"`` set): Galactic centre at (ra, dec) = (266.4051°, −28.936175°), Sun–centre distance
``galcen_distance = 8.122 kpc`` and Sun height ``z_sun = 20.8 pc``, ``roll = 0``. The Sun therefore lies
at R = sqrt(8.122² − 0.0208²) ≈ 8.122 kpc, Z = +0.0208 kpc. Pass ``frame=`` for other parameters, or set
them process-wide with ``astropy.coordinates.galactocentric_frame_defaults.set(...)``.

``R = sqrt(x² + y²)`` and ``Z = z`` of the Galactocentric Cartesian position (positive Z towards the
north Galactic pole).

Distances
---------
``distance = 1 / parallax`` (kpc for a parallax in mas): no prior, no zero-point correction (apply one
before, e.g. in the position table). It is only sensible for precise, positive parallaxes, so
:func:`parallax_quality` keeps stars with ``parallax > 0`` and, when an error column is available,
``parallax / parallax_error >= snr_min`` (default :data:`DEFAULT_PARALLAX_SNR_MIN` = 5, i.e. 20 % distance
errors at most).

Positions
---------
:func:`gather_positions` finds ``ra``, ``dec``, ``parallax`` (and ``parallax_error`` if there is one) for
the rows of a catalogue: each column from the catalogue itself when it has it, otherwise joined by
source id from a *positions source*: a starlabel store (any auxiliary group ``aux/<name>`` whose
``columns`` attribute names them; values flagged in ``aux/<name>_missing`` count as missing) or a table
file read with :func:`starlabel.tables.read_table` (FITS, CSV, ECSV, VOTable, Parquet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.errors import StarlabelError

DEFAULT_PARALLAX_SNR_MIN = 5.0
"""Default minimum ``parallax / parallax_error``."""

POSITION_COLUMNS = ("ra", "dec", "parallax")
"""Columns a position needs: ra, dec (deg, ICRS) and parallax (mas)."""

OPTIONAL_POSITION_COLUMNS = ("parallax_error",)
"""Columns used when present: parallax_error (mas), for the parallax-quality cut."""


class PositionError(StarlabelError):
    """Positions cannot be found or joined: names the files looked in and what is missing."""

    exit_code = 2


class BinEdgesError(StarlabelError):
    """R or Z bin edges are not usable: says which and what is allowed."""

    exit_code = 2


# ---------------------------------------------------------------------------------------------- transform
def galactocentric_rz(
    ra_deg: Any, dec_deg: Any, parallax_mas: Any, *, frame: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Galactocentric cylindrical radius R and height Z (kpc) from ICRS position and parallax.

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        ICRS right ascension and declination in degrees.
    parallax_mas : array_like
        Parallax in mas; distance = 1 / parallax kpc. Rows whose parallax is not finite and positive get
        NaN (filter them first with :func:`parallax_quality` to count them).
    frame : astropy.coordinates.Galactocentric, optional
        The Galactocentric frame; default ``Galactocentric()`` with astropy's default parameters (see the
        module docstring: galcen_distance 8.122 kpc, z_sun 20.8 pc).

    Returns
    -------
    R_kpc, Z_kpc : np.ndarray
        float64 arrays of the broadcast shape of the inputs.
    """
    import astropy.units as u
    from astropy.coordinates import ICRS, Galactocentric

    ra, dec, plx = np.broadcast_arrays(
        np.asarray(ra_deg, dtype=np.float64),
        np.asarray(dec_deg, dtype=np.float64),
        np.asarray(parallax_mas, np.float64),
    )
    good = np.isfinite(plx) & (plx > 0) & np.isfinite(ra) & np.isfinite(dec)
    distance = np.where(good, 1.0 / np.where(good, plx, 1.0), 1.0)  # placeholders replaced by NaN below
    icrs = ICRS(ra=np.where(good, ra, 0.0) * u.deg, dec=np.where(good, dec, 0.0) * u.deg, distance=distance * u.kpc)
    cartesian = icrs.transform_to(frame if frame is not None else Galactocentric()).cartesian
    x, y, z = (getattr(cartesian, axis).to_value(u.kpc) for axis in "xyz")
    r = np.where(good, np.hypot(x, y), np.nan)
    return np.asarray(r, np.float64), np.asarray(np.where(good, z, np.nan), np.float64)


def parallax_quality(
    parallax: np.ndarray, parallax_error: np.ndarray | None = None, snr_min: float = DEFAULT_PARALLAX_SNR_MIN
) -> tuple[np.ndarray, np.ndarray]:
    """Which parallaxes give usable ``1 / parallax`` distances.

    Parameters
    ----------
    parallax : np.ndarray
        Parallaxes (mas); NaN = missing.
    parallax_error : np.ndarray, optional
        Their errors (mas). None: no S/N cut. A missing (NaN) or non-positive error fails the cut.
    snr_min : float
        Minimum ``parallax / parallax_error``; 0 turns the S/N cut off.

    Returns
    -------
    nonpositive : np.ndarray
        bool, True where the parallax is missing, zero or negative.
    low_snr : np.ndarray
        bool, True where the parallax is positive but ``parallax / parallax_error < snr_min``.
    """
    parallax = np.asarray(parallax, dtype=np.float64)
    nonpositive = ~(np.isfinite(parallax) & (parallax > 0))
    if parallax_error is None or snr_min <= 0:
        return nonpositive, np.zeros_like(nonpositive)
    error = np.asarray(parallax_error, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(np.isfinite(error) & (error > 0), parallax / error, np.nan)
    low = ~nonpositive & ~(snr >= snr_min)
    return nonpositive, low


# ------------------------------------------------------------------------------------------------- bins
def check_edges(edges: Sequence[float], what: str, *, allow_negative: bool = True) -> np.ndarray:
    """``edges`` as a float64 array, checked: at least 2, finite, strictly increasing (>= 0 unless allowed).

    Raises
    ------
    BinEdgesError
        Naming ``what`` (e.g. ``"--r-bins"``) and what is allowed.
    """
    values = np.asarray(list(edges), dtype=np.float64)
    rule = "give at least two finite, strictly increasing edges in kpc, e.g. 2,4,6,8"
    if values.ndim != 1 or values.size < 2 or not np.all(np.isfinite(values)):
        raise BinEdgesError(f"{what}: {list(edges)!r} are not bin edges; {rule}")
    if np.any(np.diff(values) <= 0):
        raise BinEdgesError(f"{what}: edges {values.tolist()} are not strictly increasing; {rule}")
    if not allow_negative and values[0] < 0:
        raise BinEdgesError(f"{what}: edges {values.tolist()} start below 0; a radius is >= 0 kpc")
    return values


def z_is_signed(z_edges: Sequence[float]) -> bool:
    """Whether Z bins are signed (some edge < 0) rather than bins of |Z| (every edge >= 0)."""
    return bool(np.min(np.asarray(z_edges, dtype=np.float64)) < 0)


def rz_bin_index(R: Any, Z: Any, r_edges: Sequence[float], z_edges: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Bin of each star in an R × Z grid; -1 outside.

    Bins are half-open, ``edges[i] <= value < edges[i + 1]``. When every Z edge is >= 0 the Z bins are
    bins of |Z| (both sides of the plane together); when some edge is negative they are bins of signed Z.

    Parameters
    ----------
    R, Z : array_like
        Galactocentric radius and height (kpc); NaN falls outside.
    r_edges, z_edges : Sequence[float]
        Strictly increasing bin edges (kpc).

    Returns
    -------
    i_r, i_z : np.ndarray
        int64 bin indices (``0 .. len(edges) - 2``), -1 for a value outside the edges. A star is inside
        the grid only when both are >= 0; each index is -1 on its own axis alone.
    """
    r_edges = check_edges(r_edges, "R bin edges")
    z_edges = check_edges(z_edges, "Z bin edges")
    r = np.asarray(R, dtype=np.float64)
    z = np.asarray(Z, dtype=np.float64)
    if not z_is_signed(z_edges):
        z = np.abs(z)
    return _bin(r, r_edges), _bin(z, z_edges)


def _bin(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    index = np.searchsorted(edges, values, side="right") - 1
    inside = np.isfinite(values) & (values >= edges[0]) & (values < edges[-1])
    return np.where(inside, index, -1).astype(np.int64)


# -------------------------------------------------------------------------------------------- positions
@dataclass
class Positions:
    """Sky positions and parallaxes of a catalogue's rows (NaN where missing or not matched).

    Attributes
    ----------
    ra, dec : np.ndarray
        ICRS degrees.
    parallax : np.ndarray
        mas.
    parallax_error : np.ndarray | None
        mas, or None when no source has the column.
    sources : dict[str, str]
        Column name → where it came from (``"catalogue <path>"``, ``"store <path> aux/<name>"``,
        ``"table <path>"``).
    unmatched : int
        Catalogue rows whose source id is not in the positions source (0 when none was used).
    """

    ra: np.ndarray
    dec: np.ndarray
    parallax: np.ndarray
    parallax_error: np.ndarray | None
    sources: dict[str, str] = field(default_factory=dict)
    unmatched: int = 0


def _catalogue_column(columns: Mapping[str, np.ndarray], name: str) -> str | None:
    from starlabel.tables import find_column

    return find_column(list(columns), [name])


def _float(values: Any) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def gather_positions(
    columns: Mapping[str, np.ndarray],
    catalogue: str | Path,
    positions: str | Path | None = None,
    *,
    id_column: str = "source_id",
) -> Positions:
    """``ra``, ``dec``, ``parallax`` (and ``parallax_error``) for every row of a catalogue.

    Each column comes from the catalogue when it has it (names matched case-insensitively), otherwise
    from ``positions`` (read only when a column is still missing), joined by source id: the catalogue's ``source_id`` against the store's
    ``source_id`` (rows the duplicate policy dropped are skipped) or the table's ``id_column``.

    Parameters
    ----------
    columns : Mapping[str, np.ndarray]
        The catalogue's columns (from :func:`starlabel.catalogue.read_catalogue`).
    catalogue : str | Path
        The catalogue's path (for messages).
    positions : str | Path, optional
        A starlabel store folder or a table file.
    id_column : str
        Source-id column of a positions table.

    Raises
    ------
    PositionError
        ra, dec or parallax found nowhere (the message lists which, where it looked and the columns there),
        an unreadable positions source, or source ids of different kinds.
    """
    n = len(next(iter(columns.values()))) if columns else 0
    found: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for name in (*POSITION_COLUMNS, *OPTIONAL_POSITION_COLUMNS):
        actual = _catalogue_column(columns, name)
        if actual is not None:
            found[name] = _float(columns[actual])
            sources[name] = f"catalogue {catalogue}"
    wanted = [c for c in (*POSITION_COLUMNS, *OPTIONAL_POSITION_COLUMNS) if c not in found]
    needed = [c for c in POSITION_COLUMNS if c not in found]
    looked = [f"the catalogue {catalogue} (columns: {', '.join(columns)})"]
    unmatched = 0
    if wanted and positions is not None:
        id_name = _catalogue_column(columns, "source_id")
        if id_name is None:
            raise PositionError(
                f"{catalogue}: no source_id column to join positions from {positions} on; "
                f"columns in the catalogue: {', '.join(columns)}"
            )
        source = _read_positions_source(Path(positions), wanted, id_column)
        looked.append(source.where)
        rows = _join(np.asarray(columns[id_name]), source.ids, catalogue, source.where)
        unmatched = int(np.count_nonzero(rows < 0))
        for name, (values, origin) in source.columns.items():
            joined = np.full(n, np.nan)
            hit = rows >= 0
            joined[hit] = values[rows[hit]]
            found[name] = joined
            sources[name] = origin
        needed = [c for c in POSITION_COLUMNS if c not in found]
    if needed:
        hint = (
            "pass --positions with a store or table that has them"
            if positions is None
            else "use a positions source with these columns (any aux group of a store, or a table)"
        )
        raise PositionError(
            f"missing position column(s) {', '.join(needed)} (of {', '.join(POSITION_COLUMNS)}, and optionally "
            f"{', '.join(OPTIONAL_POSITION_COLUMNS)}); looked in " + "; and in ".join(looked) + f"; {hint}"
        )
    return Positions(found["ra"], found["dec"], found["parallax"], found.get("parallax_error"), sources, unmatched)


@dataclass
class _Source:
    ids: np.ndarray
    columns: dict[str, tuple[np.ndarray, str]]
    where: str


def _join(catalogue_ids: np.ndarray, source_ids: np.ndarray, catalogue: str | Path, where: str) -> np.ndarray:
    from starlabel.join import IdIndex

    try:
        return IdIndex(source_ids).lookup(catalogue_ids)
    except TypeError as error:
        raise PositionError(f"{catalogue}: cannot join positions from {where}: {error}") from None


def _read_positions_source(path: Path, wanted: Sequence[str], id_column: str) -> _Source:
    if path.is_dir():
        return _store_source(path, wanted)
    if path.is_file():
        return _table_source(path, wanted, id_column)
    raise PositionError(
        f"{path}: no such positions source; give a starlabel store folder (with zarr.json) or a table file "
        f"(FITS, CSV, ECSV, VOTable, Parquet) with ra, dec, parallax columns"
    )


def _store_source(path: Path, wanted: Sequence[str]) -> _Source:
    from starlabel.store import Store, StoreError

    try:
        store = Store.open(path)
    except StoreError as error:
        raise PositionError(f"--positions: {error}") from None
    keep = np.asarray(store.array("keep")[:], dtype=bool)
    ids = np.asarray(store.array("source_id")[:])
    if ids.dtype.kind not in "iu":  # zarr returns numpy StringDType for text ids
        ids = np.array(ids.tolist(), dtype=str)
    ids = ids[keep]
    out: dict[str, tuple[np.ndarray, str]] = {}
    listing = []
    for group, names in store.layout.aux.items():
        listing.append(f"aux/{group} ({', '.join(names)})")
        lower = [str(c).lower() for c in names]
        for column in wanted:
            if column in out or column not in lower:
                continue
            k = lower.index(column)
            values = np.asarray(store.array(f"aux/{group}")[:, k], dtype=np.float64)
            missing = np.asarray(store.array(f"aux/{group}_missing")[:, k], dtype=bool)
            values[missing | ~np.isfinite(values)] = np.nan
            out[column] = (values[keep], f"store {path} aux/{group}")
    where = f"the store {path} (aux groups: {'; '.join(listing) or 'none'})"
    return _Source(ids, out, where)


def _table_source(path: Path, wanted: Sequence[str], id_column: str) -> _Source:
    from starlabel.errors import DataFileError
    from starlabel.tables import find_column, float_column, read_table
    from starlabel.tables import id_column as read_ids

    try:
        table = read_table(path)
        ids, missing_ids = read_ids(table, id_column, path)
    except DataFileError as error:
        raise PositionError(f"--positions: {error}; set the id column with --id-column") from None
    out: dict[str, tuple[np.ndarray, str]] = {}
    for column in wanted:
        actual = find_column(table.colnames, [column])
        if actual is not None:
            try:
                values, _ = float_column(table, actual, path)
            except DataFileError as error:
                raise PositionError(f"--positions: {error}") from None
            out[column] = (values, f"table {path}")
    if missing_ids.any():  # null ids never match
        ids = ids.copy()
        keep = ~missing_ids
        ids = ids[keep]
        out = {k: (v[keep], o) for k, (v, o) in out.items()}
    return _Source(ids, out, f"the table {path} (columns: {', '.join(table.colnames)})")
