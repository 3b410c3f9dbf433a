"""Figures of a prediction catalogue: chemistry in Galactocentric R–Z bins, and the Kiel diagram.

Both figures are drawn with matplotlib's Agg canvas (no display, no pyplot state) and saved as PNG;
each function returns the PNG's path and a small JSON-serialisable summary (stars plotted per panel,
stars excluded and why).

Chemistry figure (:func:`plot_chemistry`)
-----------------------------------------
[α/M] against [M/H] in a grid of Galactocentric radius R (columns, inner Galaxy on the left) and height
Z (rows, highest at the top), in the style of the "[α/M] vs [M/H] in R–Z bins" figure of Guiglion et al.
2024 (A&A 682, A9). Defaults:

- R bin edges :data:`DEFAULT_R_EDGES` = 2, 4, 6, 8, 10, 12, 14 kpc (six 2-kpc columns);
- Z bin edges :data:`DEFAULT_Z_EDGES` = 0, 0.5, 1, 2, 3 kpc, as bins of **|Z|** (both sides of the plane
  together; four rows). Give an edge below 0 to bin signed Z instead (e.g. ``-2,-1,0,1,2``);
- bins are half-open, ``lo <= value < hi``;
- axes [M/H] −2.0 … 0.6 dex and [α/M] −0.2 … 0.5 dex, common to every panel.

Each panel shows a 2-D histogram of its stars (cells of 1/65 of the [M/H] range × 1/56 of the [α/M]
range, one logarithmic colour scale shared by all panels, empty cells blank), contours of the smoothed
star density enclosing 30, 60 and 90 % of the panel's stars (panels of at least
:data:`CONTOUR_MIN_STARS` stars), its R and Z range as title and its number of stars in the corner.

Positions come from :func:`starlabel.galactic.gather_positions` (the catalogue's own ra, dec, parallax,
else a store or table given as ``positions``) and :func:`starlabel.galactic.galactocentric_rz`
(distance = 1/parallax, astropy's default Galactocentric frame).

Kiel diagram (:func:`plot_kiel`)
--------------------------------
log g against Teff (both axes inverted: hot and dwarf at the lower left), coloured by [M/H]: the median
per hexagonal cell when more than :data:`KIEL_SCATTER_MAX` stars are plotted, else one point per star.

Which rows are plotted
----------------------
A row is excluded, and counted under the **first** reason that applies, in this order:

``flagged``
    ``flag & flag_mask != 0``. Default mask :data:`DEFAULT_FLAG_MASK` = 9 = boundary (1) | no_data (8):
    labels outside the training range, or no usable pixel (the bits of ``starlabel.predict.FLAGS``).
    0 keeps every flag; a catalogue without a ``flag`` column is not cut (noted in the summary).
``nan_labels``
    a plotted label (and, for the Kiel diagram, the colour label) is not finite.
``no_position`` (chemistry)
    ra, dec or parallax missing, or the source id not found in the positions source.
``parallax_nonpositive`` (chemistry)
    parallax <= 0.
``parallax_snr`` (chemistry)
    ``parallax / parallax_error < parallax_snr_min`` (only when a parallax_error column exists; a missing
    error fails the cut).
``outside_bins`` (chemistry)
    R or Z outside every bin.

Stars inside a bin but outside the axis ranges count in their panel (reported as ``outside_axes``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.errors import StarlabelError

DEFAULT_R_EDGES: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0)
"""Default Galactocentric radius bin edges (kpc)."""

DEFAULT_Z_EDGES: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 3.0)
"""Default |Z| bin edges (kpc)."""

DEFAULT_METAL_RANGE: tuple[float, float] = (-2.0, 0.6)
"""Default [M/H] axis range (dex)."""

DEFAULT_ALPHA_RANGE: tuple[float, float] = (-0.2, 0.5)
"""Default [α/M] axis range (dex)."""

FLAG_BITS: dict[str, int] = {"boundary": 1, "sparse": 2, "ood": 4, "no_data": 8, "aux_missing": 16}
"""Catalogue flag names → bits (as ``starlabel.predict.FLAGS``, not imported here: that module needs torch)."""

DEFAULT_FLAG_MASK = FLAG_BITS["boundary"] | FLAG_BITS["no_data"]
"""Rows with any of these flag bits set are not plotted: boundary | no_data = 9."""

METAL_LABELS = ("m_h", "fe_h", "mh")
"""Default [M/H] columns, the first present is used."""

ALPHA_LABELS = ("alpha_m", "alpha_fe")
"""Default [α/M] columns, the first present is used."""

DPI = 120
"""Resolution of the saved PNGs (dots per inch)."""

CONTOUR_MIN_STARS = 30
"""Panels with fewer stars get no density contours."""

CONTOUR_FRACTIONS = (0.9, 0.6, 0.3)
"""Fractions of a panel's stars enclosed by its density contours."""

KIEL_SCATTER_MAX = 3000
"""Up to this many stars the Kiel diagram shows points; above, the median [M/H] per hexagonal cell."""

PANEL_W, PANEL_H, GAP_W, GAP_H = 2.0, 1.55, 0.08, 0.3
"""Chemistry panel size and gaps between panels (inches)."""

_MARGINS = (0.75, 1.05, 0.62, 0.62, 0.35)  # left, right (colour bar), bottom, top with a title, top without

HIST_BINS = (65, 56)
"""Cells of the chemistry histograms along [M/H] and [α/M] (0.04 × 0.0125 dex on the default axes)."""

CHEMISTRY_REASONS = ("flagged", "nan_labels", "no_position", "parallax_nonpositive", "parallax_snr", "outside_bins")
KIEL_REASONS = ("flagged", "nan_labels")

_PRETTY = {
    "m_h": "[M/H]",
    "mh": "[M/H]",
    "fe_h": "[Fe/H]",
    "alpha_m": "[α/M]",
    "alpha_fe": "[α/Fe]",
    "teff": r"$T_\mathrm{eff}$",
    "logg": r"$\log\,g$",
}
_DEFAULT_UNITS = {
    "m_h": "dex",
    "mh": "dex",
    "fe_h": "dex",
    "alpha_m": "dex",
    "alpha_fe": "dex",
    "teff": "K",
    "logg": "dex",
}


class PlotError(StarlabelError):
    """A figure cannot be drawn as asked: a label column, an output path or a range is not usable."""

    exit_code = 2


# ------------------------------------------------------------------------------------------------ labels
def label_columns(columns: Mapping[str, np.ndarray]) -> list[str]:
    """The catalogue's label columns: those with a ``<name>_err`` partner (else every numeric column)."""
    names = [n for n in columns if f"{n}_err" in columns and not n.endswith("_err")]
    if names:
        return names
    return [n for n, v in columns.items() if np.asarray(v).dtype.kind in "fiu" and n.lower() != "source_id"]


def resolve_label(
    columns: Mapping[str, np.ndarray],
    catalogue: str | Path,
    requested: str | None,
    defaults: Sequence[str],
    what: str,
    option: str,
) -> str:
    """The catalogue column to plot as ``what`` (names matched case-insensitively).

    Parameters
    ----------
    requested : str, optional
        The user's choice; None takes the first of ``defaults`` that is present.
    what, option : str
        For messages, e.g. ``"[M/H]"`` and ``"--metal-label"``.

    Raises
    ------
    PlotError
        No such column, or not numeric; lists the catalogue's label columns.
    """
    from starlabel.suggest import did_you_mean
    from starlabel.tables import find_column

    labels = label_columns(columns)
    listing = ", ".join(labels) or "(none)"
    if requested is not None:
        found = find_column(list(columns), [requested])
        if found is None:
            raise PlotError(
                f"{catalogue}: no {what} column {requested!r}.{did_you_mean(requested, list(columns))} "
                f"Label columns in the catalogue: {listing}; choose one with {option}"
            )
    else:
        found = find_column(list(columns), defaults)
        if found is None:
            raise PlotError(
                f"{catalogue}: no {what} column (looked for {', '.join(defaults)}). "
                f"Label columns in the catalogue: {listing}; choose one with {option}"
            )
    if np.asarray(columns[found]).dtype.kind not in "fiu":
        raise PlotError(
            f"{catalogue}: column {found!r} ({what}) is not numeric (dtype {np.asarray(columns[found]).dtype}); "
            f"label columns in the catalogue: {listing}; choose one with {option}"
        )
    return found


def axis_label(name: str, units: Mapping[str, str | None]) -> str:
    """``"[M/H] (dex)"``: a readable name for column ``name`` and its unit (catalogue's, else a default)."""
    pretty = _PRETTY.get(name.lower(), name)
    unit = units.get(name) or _DEFAULT_UNITS.get(name.lower())
    return f"{pretty} ({unit})" if unit else pretty


def flag_mask_from_text(text: str) -> int:
    """A flag mask from ``"9"``, ``"0x9"`` or flag names ``"boundary|no_data"`` (also ``,`` or ``+``).

    Raises
    ------
    PlotError
        Not a non-negative integer nor known flag names (lists them).
    """
    text = text.strip()
    try:
        value = int(text, 0)
    except ValueError:
        value = 0
        for part in text.replace(",", "|").replace("+", "|").split("|"):
            name = part.strip().lower()
            if name not in FLAG_BITS:
                allowed = ", ".join(f"{k} ({v})" for k, v in FLAG_BITS.items())
                raise PlotError(
                    f"flag mask {text!r}: {name!r} is not a flag; give an integer (e.g. {DEFAULT_FLAG_MASK}) "
                    f"or flag names joined by '|': {allowed}"
                ) from None
            value |= FLAG_BITS[name]
    if value < 0:
        raise PlotError(f"flag mask {text!r}: give an integer >= 0 (0 keeps every row)")
    return value


def _output(out: str | Path | None, catalogue: Path, kind: str) -> Path:
    path = Path(out) if out is not None else catalogue.with_name(f"{catalogue.stem}_{kind}.png")
    if path.suffix.lower() != ".png":
        raise PlotError(f"{path}: the figure is written as PNG; name the output FILE.png")
    if not path.parent.is_dir():
        raise PlotError(f"{path}: the folder {path.parent} does not exist; create it first")
    return path


def _check_range(values: Sequence[float], what: str) -> tuple[float, float]:
    pair = tuple(float(v) for v in values)
    if len(pair) != 2 or not all(np.isfinite(pair)) or pair[0] >= pair[1]:
        raise PlotError(f"{what}: {list(values)!r} is not a range; give two finite numbers, low first (e.g. -2,0.6)")
    return pair[0], pair[1]


def _first_reason(excluded: dict[str, int], keep: np.ndarray, reason: str, bad: np.ndarray) -> np.ndarray:
    """Count the kept rows that ``bad`` excludes under ``reason``; return the rows still kept."""
    hit = keep & bad
    excluded[reason] = int(np.count_nonzero(hit))
    return keep & ~hit


def _flag_cut(columns: Mapping[str, np.ndarray], flag_mask: int, notes: list[str]) -> np.ndarray:
    from starlabel.tables import find_column

    n = len(next(iter(columns.values()))) if columns else 0
    name = find_column(list(columns), ["flag"])
    if flag_mask and name is None:
        notes.append("no flag column: no row excluded for flags")
    if not flag_mask or name is None:
        return np.zeros(n, bool)
    return (np.asarray(columns[name]).astype(np.int64) & int(flag_mask)) != 0


def _finite(*arrays: np.ndarray) -> np.ndarray:
    ok = np.ones(len(arrays[0]), bool)
    for values in arrays:
        ok &= np.isfinite(values)
    return ok


def _new_figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _range_text(lo: float, hi: float, symbol: str) -> str:
    """``"2 ≤ R < 4"`` with proper minus signs."""

    def num(v: float) -> str:
        return f"{v:g}".replace("-", "−")

    return f"{num(lo)} ≤ {symbol} < {num(hi)}"


# ------------------------------------------------------------------------------------------- chemistry
def plot_chemistry(
    catalogue: str | Path,
    out: str | Path | None = None,
    *,
    positions: str | Path | None = None,
    id_column: str = "source_id",
    metal_label: str | None = None,
    alpha_label: str | None = None,
    r_edges: Sequence[float] = DEFAULT_R_EDGES,
    z_edges: Sequence[float] = DEFAULT_Z_EDGES,
    parallax_snr_min: float = 5.0,
    flag_mask: int = DEFAULT_FLAG_MASK,
    metal_range: Sequence[float] = DEFAULT_METAL_RANGE,
    alpha_range: Sequence[float] = DEFAULT_ALPHA_RANGE,
    dpi: int = DPI,
) -> tuple[Path, dict[str, Any]]:
    """[α/M] vs [M/H] in Galactocentric R–Z bins (see the module docstring), saved as PNG.

    Parameters
    ----------
    catalogue : str | Path
        A FITS or Parquet catalogue (:func:`starlabel.catalogue.read_catalogue`).
    out : str | Path, optional
        The PNG; default ``<catalogue name>_chemistry.png`` beside the catalogue.
    positions : str | Path, optional
        Store or table with ra, dec, parallax (and parallax_error) for a catalogue without them.
    id_column : str
        Source-id column of a positions table.
    metal_label, alpha_label : str, optional
        Columns to plot; default the first present of :data:`METAL_LABELS` and :data:`ALPHA_LABELS`.
    r_edges, z_edges : Sequence[float]
        Bin edges in kpc; Z edges all >= 0 bin |Z|, otherwise signed Z.
    parallax_snr_min : float
        Minimum parallax / parallax_error (0: no cut).
    flag_mask : int
        Rows with ``flag & flag_mask != 0`` are excluded (0: none).
    metal_range, alpha_range : Sequence[float]
        Axis ranges (dex), also the histograms' extent.
    dpi : int
        PNG resolution.

    Returns
    -------
    path : Path
        The PNG written.
    summary : dict
        ``rows``, ``plotted``, ``excluded`` {reason: count}, ``labels``, ``r_edges``, ``z_edges``,
        ``z_signed``, ``counts`` (``counts[i_z][i_r]``, bins in increasing order), ``panels`` (top row
        first: ``r_kpc``, ``z_kpc``, ``n``), ``outside_axes``, ``positions`` (column → source),
        ``unmatched``, ``flag_mask``, ``parallax_snr_min``, ``notes``.

    Raises
    ------
    PlotError, starlabel.galactic.PositionError, starlabel.galactic.BinEdgesError,
    starlabel.catalogue.CatalogueError
    """
    from starlabel.catalogue import read_catalogue
    from starlabel.galactic import check_edges, galactocentric_rz, gather_positions, parallax_quality, rz_bin_index

    catalogue = Path(catalogue)
    path = _output(out, catalogue, "chemistry")
    r_edges = check_edges(r_edges, "R bin edges (--r-bins)", allow_negative=False)
    z_edges = check_edges(z_edges, "Z bin edges (--z-bins)")
    metal_range = _check_range(metal_range, "[M/H] range (--metal-range)")
    alpha_range = _check_range(alpha_range, "[α/M] range (--alpha-range)")
    columns, meta = read_catalogue(catalogue)
    metal_name = resolve_label(columns, catalogue, metal_label, METAL_LABELS, "[M/H]", "--metal-label")
    alpha_name = resolve_label(columns, catalogue, alpha_label, ALPHA_LABELS, "[α/M]", "--alpha-label")
    where = gather_positions(columns, catalogue, positions, id_column=id_column)

    n = len(columns[metal_name])
    metal = np.asarray(columns[metal_name], np.float64)
    alpha = np.asarray(columns[alpha_name], np.float64)
    notes: list[str] = []
    excluded: dict[str, int] = {}
    keep = np.ones(n, bool)
    keep = _first_reason(excluded, keep, "flagged", _flag_cut(columns, flag_mask, notes))
    keep = _first_reason(excluded, keep, "nan_labels", ~_finite(metal, alpha))
    keep = _first_reason(excluded, keep, "no_position", ~_finite(where.ra, where.dec, where.parallax))
    nonpositive, low_snr = parallax_quality(where.parallax, where.parallax_error, parallax_snr_min)
    keep = _first_reason(excluded, keep, "parallax_nonpositive", nonpositive)
    keep = _first_reason(excluded, keep, "parallax_snr", low_snr)
    if where.parallax_error is None and parallax_snr_min > 0:
        notes.append("no parallax_error column: no parallax S/N cut")
    R = np.full(n, np.nan)
    Z = np.full(n, np.nan)
    R[keep], Z[keep] = galactocentric_rz(where.ra[keep], where.dec[keep], where.parallax[keep])
    i_r, i_z = rz_bin_index(R, Z, r_edges, z_edges)
    keep = _first_reason(excluded, keep, "outside_bins", (i_r < 0) | (i_z < 0))

    units = meta.get("units", {})
    counts = draw_chemistry(
        metal[keep],
        alpha[keep],
        i_r[keep],
        i_z[keep],
        path,
        r_edges=r_edges,
        z_edges=z_edges,
        metal_axis=axis_label(metal_name, units),
        alpha_axis=axis_label(alpha_name, units),
        metal_range=metal_range,
        alpha_range=alpha_range,
        title=f"{_PRETTY.get(alpha_name.lower(), alpha_name)} vs {_PRETTY.get(metal_name.lower(), metal_name)} "
        f"in Galactocentric R–Z bins: {int(keep.sum()):,} stars of {catalogue.name}",
        dpi=dpi,
    )
    off_axes = keep & ~(
        (metal >= metal_range[0]) & (metal <= metal_range[1]) & (alpha >= alpha_range[0]) & (alpha <= alpha_range[1])
    )
    signed = bool(z_edges[0] < 0)
    panels = [
        {
            "r_kpc": [float(r_edges[j]), float(r_edges[j + 1])],
            "z_kpc": [float(z_edges[i]), float(z_edges[i + 1])],
            "n": int(counts[i][j]),
        }
        for i in reversed(range(len(z_edges) - 1))
        for j in range(len(r_edges) - 1)
    ]
    summary: dict[str, Any] = {
        "figure": "chemistry",
        "catalogue": str(catalogue),
        "out": str(path),
        "rows": n,
        "plotted": int(keep.sum()),
        "excluded": excluded,
        "labels": {"metal": metal_name, "alpha": alpha_name},
        "r_edges": r_edges.tolist(),
        "z_edges": z_edges.tolist(),
        "z_signed": signed,
        "counts": counts.tolist(),
        "panels": panels,
        "outside_axes": int(off_axes.sum()),
        "positions": dict(where.sources),
        "unmatched": where.unmatched,
        "flag_mask": int(flag_mask),
        "parallax_snr_min": float(parallax_snr_min),
        "notes": notes,
    }
    return path, summary


def chemistry_figure_size(n_r: int, n_z: int, title: bool = True) -> tuple[float, float]:
    """Width and height (inches) of a chemistry figure of ``n_r`` × ``n_z`` panels.

    Panels of :data:`PANEL_W` × :data:`PANEL_H` inches, :data:`GAP_W` apart side by side (tick labels on
    the outer panels only) and :data:`GAP_H` apart (room for each panel's title), plus margins for the
    axis labels, the figure title and the colour bar.
    """
    left, right, bottom, top_title, top_plain = _MARGINS
    width = left + n_r * PANEL_W + (n_r - 1) * GAP_W + right
    height = bottom + n_z * PANEL_H + (n_z - 1) * GAP_H + (top_title if title else top_plain)
    return width, height


def draw_chemistry(
    metal: np.ndarray,
    alpha: np.ndarray,
    i_r: np.ndarray,
    i_z: np.ndarray,
    out: str | Path,
    *,
    r_edges: Sequence[float] = DEFAULT_R_EDGES,
    z_edges: Sequence[float] = DEFAULT_Z_EDGES,
    metal_axis: str = "[M/H] (dex)",
    alpha_axis: str = "[α/M] (dex)",
    metal_range: tuple[float, float] = DEFAULT_METAL_RANGE,
    alpha_range: tuple[float, float] = DEFAULT_ALPHA_RANGE,
    title: str = "",
    dpi: int = DPI,
) -> np.ndarray:
    """Draw and save the R–Z grid of [α/M]–[M/H] histograms for stars already binned.

    Parameters
    ----------
    metal, alpha : np.ndarray
        Labels of the stars to plot (finite).
    i_r, i_z : np.ndarray
        Their bins (:func:`starlabel.galactic.rz_bin_index`); stars with -1 are ignored.
    out : str | Path
        The PNG.

    Returns
    -------
    np.ndarray
        int64 star counts ``[i_z, i_r]``.
    """
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullLocator

    r_edges = np.asarray(r_edges, np.float64)
    z_edges = np.asarray(z_edges, np.float64)
    n_r, n_z = len(r_edges) - 1, len(z_edges) - 1
    signed = bool(z_edges[0] < 0)
    z_symbol = "Z" if signed else "|Z|"
    x_cells = np.linspace(*metal_range, HIST_BINS[0] + 1)
    y_cells = np.linspace(*alpha_range, HIST_BINS[1] + 1)

    counts = np.zeros((n_z, n_r), np.int64)
    hists: dict[tuple[int, int], np.ndarray] = {}
    members: dict[tuple[int, int], np.ndarray] = {}
    for iz in range(n_z):
        for ir in range(n_r):
            rows = np.flatnonzero((i_r == ir) & (i_z == iz))
            counts[iz, ir] = rows.size
            members[iz, ir] = rows
            hists[iz, ir] = np.histogram2d(metal[rows], alpha[rows], bins=(x_cells, y_cells))[0]
    top = max((h.max() for h in hists.values()), default=0.0)
    norm = LogNorm(vmin=1, vmax=max(top, 2.0))

    # a fixed layout in inches (constrained layout is slow with many panels)
    left, right, bottom, top = _MARGINS[0], _MARGINS[1], _MARGINS[2], _MARGINS[3] if title else _MARGINS[4]
    width, height = chemistry_figure_size(n_r, n_z, bool(title))
    fig = _new_figure(width, height, layout=None)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=GAP_W / PANEL_W,
        hspace=GAP_H / PANEL_H,
    )
    axes = fig.subplots(n_z, n_r, sharex=True, sharey=True, squeeze=False)
    # no [M/H] tick label at the left edge: it would touch the right-most label of the panel beside
    ticks = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(*metal_range)
    span = metal_range[1] - metal_range[0]
    x_ticks = FixedLocator([t for t in ticks if metal_range[0] + 0.04 * span < t <= metal_range[1] + 1e-9 * span])
    mesh = None
    for row in range(n_z):
        iz = n_z - 1 - row  # highest Z at the top
        for ir in range(n_r):
            ax = axes[row, ir]
            hist = np.ma.masked_equal(hists[iz, ir], 0.0)
            mesh = ax.pcolormesh(x_cells, y_cells, hist.T, norm=norm, cmap="viridis", rasterized=True)
            rows = members[iz, ir]
            if rows.size >= CONTOUR_MIN_STARS:
                _density_contours(ax, metal[rows], alpha[rows], metal_range, alpha_range)
            ax.text(
                0.97,
                0.95,
                f"n = {rows.size:,}",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=8,
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            )
            r_text = _range_text(r_edges[ir], r_edges[ir + 1], "R")
            z_text = _range_text(z_edges[iz], z_edges[iz + 1], z_symbol)
            ax.set_title(f"{r_text}, {z_text} kpc", fontsize=8, pad=3)
            ax.set_xlim(*metal_range)
            ax.set_ylim(*alpha_range)
            ax.xaxis.set_major_locator(x_ticks)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
            ax.tick_params(labelsize=8, direction="in", top=True, right=True)
            ax.grid(True, color="0.85", linewidth=0.5)
            ax.set_axisbelow(True)
            ax.label_outer()
    grid_centre = (left + (width - left - right) / 2) / width
    fig.supxlabel(metal_axis, x=grid_centre, y=0.12 / height, va="bottom", fontsize=10)
    fig.supylabel(alpha_axis, x=0.1 / width, ha="left", fontsize=10)
    if title:
        fig.suptitle(title, x=grid_centre, y=1 - 0.12 / height, va="top", fontsize=11)
    if mesh is not None:
        grid_height = n_z * PANEL_H + (n_z - 1) * GAP_H
        bar_height = min(grid_height, max(0.6 * grid_height, 1.5))
        cax = fig.add_axes(
            (
                (width - right + 0.15) / width,
                (bottom + (grid_height - bar_height) / 2) / height,
                0.14 / width,
                bar_height / height,
            )
        )
        bar = fig.colorbar(mesh, cax=cax)
        dx = (metal_range[1] - metal_range[0]) / HIST_BINS[0]
        dy = (alpha_range[1] - alpha_range[0]) / HIST_BINS[1]
        bar.set_label(f"stars per {dx:.2g} × {dy:.2g} dex cell", fontsize=9)
        bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        bar.ax.yaxis.set_minor_locator(NullLocator())
        bar.ax.tick_params(labelsize=8)
    fig.savefig(out, dpi=dpi)
    return counts


def _density_contours(
    ax: Any, x: np.ndarray, y: np.ndarray, x_range: tuple[float, float], y_range: tuple[float, float]
) -> None:
    """Contours of the smoothed density enclosing :data:`CONTOUR_FRACTIONS` of the stars."""
    from scipy.ndimage import gaussian_filter

    bins = (HIST_BINS[0] // 2, HIST_BINS[1] // 2)
    hist, xe, ye = np.histogram2d(x, y, bins=bins, range=(x_range, y_range))
    if hist.sum() == 0:
        return
    density = gaussian_filter(hist, sigma=1.0)
    ordered = np.sort(density.ravel())[::-1]
    cumulative = np.cumsum(ordered) / ordered.sum()
    levels = sorted({float(ordered[min(np.searchsorted(cumulative, f), ordered.size - 1)]) for f in CONTOUR_FRACTIONS})
    levels = [v for v in levels if v > 0]
    if not levels:
        return
    xc, yc = 0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1])
    ax.contour(xc, yc, density.T, levels=levels, colors="black", linewidths=0.6, alpha=0.8)


# ------------------------------------------------------------------------------------------------ kiel
def plot_kiel(
    catalogue: str | Path,
    out: str | Path | None = None,
    *,
    teff_label: str = "teff",
    logg_label: str = "logg",
    colour_label: str | None = None,
    flag_mask: int = DEFAULT_FLAG_MASK,
    dpi: int = DPI,
) -> tuple[Path, dict[str, Any]]:
    """log g vs Teff (axes inverted) coloured by [M/H], saved as PNG.

    Parameters
    ----------
    catalogue : str | Path
        A FITS or Parquet catalogue.
    out : str | Path, optional
        The PNG; default ``<catalogue name>_kiel.png`` beside the catalogue.
    teff_label, logg_label : str
        Columns of Teff and log g.
    colour_label : str, optional
        Column for the colour; default the first present of :data:`METAL_LABELS`.
    flag_mask : int
        Rows with ``flag & flag_mask != 0`` are excluded (0: none).
    dpi : int
        PNG resolution.

    Returns
    -------
    path : Path
        The PNG written.
    summary : dict
        ``rows``, ``plotted``, ``excluded`` {reason: count}, ``labels``, ``mode`` (``"scatter"`` or
        ``"hexbin"``), ``panels`` (one: ``n``), ``colour_range``, ``flag_mask``, ``notes``.

    Raises
    ------
    PlotError, starlabel.catalogue.CatalogueError
    """
    from starlabel.catalogue import read_catalogue

    catalogue = Path(catalogue)
    path = _output(out, catalogue, "kiel")
    columns, meta = read_catalogue(catalogue)
    teff_name = resolve_label(columns, catalogue, teff_label, (), "Teff", "--teff-label")
    logg_name = resolve_label(columns, catalogue, logg_label, (), "log g", "--logg-label")
    colour_name = resolve_label(columns, catalogue, colour_label, METAL_LABELS, "colour ([M/H])", "--colour-label")
    teff = np.asarray(columns[teff_name], np.float64)
    logg = np.asarray(columns[logg_name], np.float64)
    colour = np.asarray(columns[colour_name], np.float64)
    notes: list[str] = []
    excluded: dict[str, int] = {}
    keep = np.ones(len(teff), bool)
    keep = _first_reason(excluded, keep, "flagged", _flag_cut(columns, flag_mask, notes))
    keep = _first_reason(excluded, keep, "nan_labels", ~_finite(teff, logg, colour))
    units = meta.get("units", {})
    mode, colour_range = draw_kiel(
        teff[keep],
        logg[keep],
        colour[keep],
        path,
        teff_axis=axis_label(teff_name, units),
        logg_axis=axis_label(logg_name, units),
        colour_axis=axis_label(colour_name, units),
        title=f"Kiel diagram: {int(keep.sum()):,} stars of {catalogue.name}",
        dpi=dpi,
    )
    summary: dict[str, Any] = {
        "figure": "kiel",
        "catalogue": str(catalogue),
        "out": str(path),
        "rows": len(teff),
        "plotted": int(keep.sum()),
        "excluded": excluded,
        "labels": {"teff": teff_name, "logg": logg_name, "colour": colour_name},
        "mode": mode,
        "panels": [{"n": int(keep.sum())}],
        "colour_range": [round(v, 4) for v in colour_range],
        "flag_mask": int(flag_mask),
        "notes": notes,
    }
    return path, summary


def draw_kiel(
    teff: np.ndarray,
    logg: np.ndarray,
    colour: np.ndarray,
    out: str | Path,
    *,
    teff_axis: str = r"$T_\mathrm{eff}$ (K)",
    logg_axis: str = r"$\log\,g$ (dex)",
    colour_axis: str = "[M/H] (dex)",
    title: str = "",
    dpi: int = DPI,
) -> tuple[str, tuple[float, float]]:
    """Draw and save a Kiel diagram of finite labels.

    Returns
    -------
    mode : str
        ``"scatter"`` (at most :data:`KIEL_SCATTER_MAX` stars) or ``"hexbin"`` (median colour per cell).
    colour_range : tuple[float, float]
        The colour scale's limits: the 1st and 99th percentiles of ``colour``.
    """
    from matplotlib.ticker import MaxNLocator

    n = len(teff)
    fig = _new_figure(6.4, 5.2)
    ax = fig.add_subplot()
    if n:
        lo, hi = (float(v) for v in np.percentile(colour, [1, 99]))
    else:
        lo, hi = -1.0, 0.5
    if hi <= lo:
        lo, hi = lo - 0.1, hi + 0.1
    if n > KIEL_SCATTER_MAX:
        mode = "hexbin"
        artist = ax.hexbin(
            teff,
            logg,
            C=colour,
            reduce_C_function=np.median,
            gridsize=(70, 45),
            cmap="viridis",
            vmin=lo,
            vmax=hi,
            mincnt=1,
            linewidths=0.2,
            edgecolors="face",
        )
        bar_label = f"{colour_axis}, median per cell"
    else:
        mode = "scatter"
        artist = ax.scatter(teff, logg, c=colour, s=8, cmap="viridis", vmin=lo, vmax=hi, linewidths=0)
        bar_label = colour_axis
    if n:
        pad_t = 0.04 * max(np.ptp(teff), 100.0)
        pad_g = 0.04 * max(np.ptp(logg), 0.5)
        ax.set_xlim(teff.max() + pad_t, teff.min() - pad_t)  # inverted: hot on the left
        ax.set_ylim(logg.max() + pad_g, logg.min() - pad_g)  # inverted: dwarfs at the bottom
    else:
        ax.set_xlim(7000, 3500)
        ax.set_ylim(5.5, 0.0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))
    ax.set_xlabel(teff_axis)
    ax.set_ylabel(logg_axis)
    ax.tick_params(direction="in", top=True, right=True)
    ax.text(
        0.03,
        0.97,
        f"n = {n:,}",
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize=9,
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
    )
    if title:
        ax.set_title(title, fontsize=10)
    bar = fig.colorbar(artist, ax=ax, pad=0.02)
    bar.set_label(bar_label)
    fig.savefig(out, dpi=dpi)
    return mode, (lo, hi)
