"""The ``coverage.png`` figure of :func:`starlabel.design.write_design`.

One panel per cell grid of the main space (the first two pairs of labels when the survey's labels are
known, else of inputs): training-set density as shaded regions enclosing 50, 90 and 99 per cent of the
training stars, covered survey stars in grey, uncovered survey stars in orange, and the targets as stars
coloured by the space of the gap they fill (red: label space, purple: input space, dark red: both,
white: picked after every gap was filled), the first ten numbered by rank; one legend below the panels. Axes named ``teff`` or ``logg`` run from high to low, as in a Kiel diagram.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from starlabel.design import DesignResult, Space

INVERTED = ("teff", "logg")
"""Axes shown decreasing (temperature and gravity, by astronomical convention)."""

LEVELS = (0.99, 0.9, 0.5)
"""Fractions of the training stars enclosed by the density contours."""

RANKS_SHOWN = 10
"""Targets annotated with their rank."""

GAP_COLOURS = {"labels": "tab:red", "inputs": "tab:purple", "labels+inputs": "darkred", "": "white"}
"""Face colour of a target by the space(s) of the gap it fills (``gap_space``; empty: picked after every gap)."""

SPACE_NAMES = {"labels": "label", "inputs": "input"}


def plot_coverage(result: DesignResult, path: str | Path) -> Path:
    """Draw the coverage figure of ``result`` into the PNG file ``path`` (returned)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    space = next(iter(result.spaces.values()))
    grids = result.cells or [{"columns": [0, 0 if len(space.dims) == 1 else 1]}]
    n = len(grids)
    fig = Figure(figsize=(6.0 * n + 0.6, 6.0), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, grid in zip(axes, grids, strict=True):
        a, b = grid["columns"]
        _panel(ax, result, space, a, b)
    frac = result.report.get("overall", {}).get("fraction_uncovered")
    used = " + ".join(SPACE_NAMES.get(name, name) for name in result.spaces)
    fig.suptitle(
        f"Survey coverage by the training set ({used} space): "
        + (f"{frac:.1%} of the survey uncovered" if frac is not None else "nothing evaluated")
        + f"; {len(result.target_rows)} targets, first {RANKS_SHOWN} numbered",
        fontsize=12,
    )
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9, frameon=False)
    path = Path(path)
    fig.savefig(path)
    return path


def _panel(ax: Axes, result: DesignResult, space: Space, a: int, b: int) -> None:
    sx, sy = space.survey[:, a], space.survey[:, b]
    tx, ty = space.train[:, a], space.train[:, b]
    placed = np.isfinite(sx) & np.isfinite(sy)
    covered = placed & ~result.uncovered
    uncovered = placed & result.uncovered
    xlim, ylim = (
        _limits(np.concatenate([tx, sx]), result.target_rows, sx),
        _limits(np.concatenate([ty, sy]), result.target_rows, sy),
    )
    ax.scatter(
        sx[covered], sy[covered], s=4, c="0.72", lw=0, rasterized=True, label=f"survey, covered ({covered.sum()})"
    )
    share = uncovered.sum() / max(placed.sum(), 1)
    ax.scatter(
        sx[uncovered],
        sy[uncovered],
        s=7,
        c="tab:orange",
        lw=0,
        rasterized=True,
        label=f"survey, uncovered ({uncovered.sum()}, {share:.1%})",
    )
    _contours(ax, tx, ty, xlim, ylim)
    rows = result.target_rows
    gaps = np.asarray(result.targets["gap_space"]).astype(str)
    for gap, colour in GAP_COLOURS.items():
        pick = rows[gaps == gap]
        if pick.size:
            what = f"{gap.replace('labels', 'label').replace('inputs', 'input')} gap" if gap else "no gap left"
            ax.scatter(
                sx[pick], sy[pick], s=80, marker="*", c=colour, edgecolors="k", linewidths=0.5, zorder=5,
                label=f"targets, {what} ({pick.size})",
            )  # fmt: skip
    for rank, row in enumerate(rows[:RANKS_SHOWN], start=1):
        if np.isfinite(sx[row]) and np.isfinite(sy[row]):
            ax.annotate(str(rank), (sx[row], sy[row]), xytext=(4, 3), textcoords="offset points", fontsize=8, zorder=6)
    ax.set_xlim(*(xlim[::-1] if space.dims[a].lower() in INVERTED else xlim))
    ax.set_ylim(*(ylim[::-1] if space.dims[b].lower() in INVERTED else ylim))
    ax.set_xlabel(_axis_label(space, a))
    ax.set_ylabel(_axis_label(space, b))
    ax.set_title(f"{space.dims[a]} - {space.dims[b]} ({SPACE_NAMES.get(space.name, space.name)} space)", fontsize=10)
    ax.grid(alpha=0.25, lw=0.5)


def _axis_label(space: Space, d: int) -> str:
    unit = space.units[d]
    return f"{space.dims[d]} [{unit}]" if unit else space.dims[d]


def _limits(values: np.ndarray, targets: np.ndarray, survey: np.ndarray) -> tuple[float, float]:
    """Plot range: the 0.2-99.8 percentiles of everything, widened to show every target, plus a margin."""
    values = values[np.isfinite(values)]
    picked = survey[targets]
    picked = picked[np.isfinite(picked)]
    if values.size == 0:
        return (0.0, 1.0)
    lo, hi = (float(v) for v in np.percentile(values, [0.2, 99.8]))
    if picked.size:
        lo, hi = min(lo, float(picked.min())), max(hi, float(picked.max()))
    pad = 0.05 * (hi - lo) if hi > lo else 0.5 * max(1.0, abs(lo))
    return (lo - pad, hi + pad)


def _contours(ax: Axes, x: np.ndarray, y: np.ndarray, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    """Training density: filled regions enclosing :data:`LEVELS` of the training stars (smoothed histogram)."""
    from scipy.ndimage import gaussian_filter

    good = np.isfinite(x) & np.isfinite(y)
    label = f"training set ({good.sum()}): 50/90/99% of its stars"
    if good.sum() < 10:
        ax.scatter(x[good], y[good], s=10, c="tab:blue", label=label)
        return
    bins = int(np.clip(np.sqrt(good.sum()) / 1.5, 15, 60))  # a few stars per bin, whatever the sample size
    hist, ex, ey = np.histogram2d(x[good], y[good], bins=bins, range=[sorted(xlim), sorted(ylim)])
    density = gaussian_filter(hist, 1.0)
    flat = np.sort(density.ravel())[::-1]
    cumulative = np.cumsum(flat) / max(flat.sum(), 1e-300)
    levels = sorted({float(flat[min(np.searchsorted(cumulative, f), flat.size - 1)]) for f in LEVELS})
    levels = [v for v in levels if v > 0]
    if not levels:
        return
    cx, cy = 0.5 * (ex[1:] + ex[:-1]), 0.5 * (ey[1:] + ey[:-1])
    shades = ["#dbe9f6", "#a6c8e4", "#6aa2d0"][-len(levels) :]
    ax.contourf(cx, cy, density.T, levels=[*levels, density.max() + 1], colors=shades, alpha=0.6, zorder=0)
    ax.contour(cx, cy, density.T, levels=levels, colors="tab:blue", linewidths=0.7, zorder=1)
    ax.fill_between([], [], [], facecolor=shades[-1], edgecolor="tab:blue", alpha=0.6, label=label)  # legend entry
