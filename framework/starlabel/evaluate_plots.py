"""Figures of :func:`starlabel.evaluate.evaluate`: one-to-one, residuals against S/N, error calibration.

Drawn with matplotlib's object-oriented API on the Agg canvas (no pyplot, no global backend change),
one panel per label, at :data:`DPI` dots per inch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.evaluate import LabelData

DPI = 120
PANEL_SIZE = (4.4, 4.0)
"""Inches per panel (width, height)."""
PANEL_SIZE_COLORBAR = (5.0, 4.0)
"""Inches per panel of the one-to-one figure, whose square panels carry a colour bar."""
MAX_COLUMNS = 3
HEXBIN_FROM = 400
"""Stars from which a one-to-one panel shows a density (hexbin) instead of points."""
DENSITY_FROM = 4000
"""Stars from which a residual panel shows a 2-D histogram instead of points."""
Z_RANGE = 5.0


def _figure(n_panels: int, panel: tuple[float, float] = PANEL_SIZE) -> tuple[Any, list[Any]]:
    """A figure with ``n_panels`` axes in a grid of at most :data:`MAX_COLUMNS` columns (unused ones hidden)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_panels = max(n_panels, 1)
    ncols = min(n_panels, MAX_COLUMNS)
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel())
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _with_unit(text: str, unit: str | None) -> str:
    return f"{text} [{unit}]" if unit else text


def _fmt(value: float | None, unit: str | None, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    number = f"{value:+.3g}" if sign else f"{value:.3g}"
    return f"{number} {unit}" if unit else number


def _box(ax: Any, text: str, where: str = "upper left") -> None:
    x, ha = (0.03, "left") if "left" in where else (0.97, "right")
    y, va = (0.97, "top") if "upper" in where else (0.03, "bottom")
    ax.text(
        x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=9,
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "0.7", "alpha": 0.85},
    )  # fmt: skip


def _empty(ax: Any, label: LabelData) -> None:
    ax.set_title(label.name)
    ax.text(0.5, 0.5, "no star with truth", transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _limits(*arrays: np.ndarray) -> tuple[float, float]:
    values = np.concatenate([a[np.isfinite(a)] for a in arrays])
    lo, hi = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo) * 0.05, 1.0)
    return float(lo - pad), float(hi + pad)


def _count_colorbar(fig: Any, mappable: Any, ax: Any) -> None:
    """A colour bar of log counts labelled 1, 2, 5, 10, 20, ... (no 10^n or minor-tick labels)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    bar = fig.colorbar(mappable, ax=ax, label="stars per cell", shrink=0.85, pad=0.02)
    bar.ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    bar.ax.yaxis.set_minor_formatter(NullFormatter())


def one_to_one(data: Sequence[LabelData], summaries: Mapping[str, Any], path: Path) -> Path:
    """Predicted against true label, one panel per label, with the 1:1 line and n, bias and scatter."""
    dense = any(label.pred.size >= HEXBIN_FROM for label in data)
    fig, axes = _figure(len(data), PANEL_SIZE_COLORBAR if dense else PANEL_SIZE)
    for ax, label in zip(axes, data, strict=True):
        if label.pred.size == 0:
            _empty(ax, label)
            continue
        lo, hi = _limits(label.truth, label.pred)
        if label.pred.size >= HEXBIN_FROM:
            cells = ax.hexbin(
                label.truth, label.pred, gridsize=50, bins="log", mincnt=1, extent=(lo, hi, lo, hi), cmap="viridis"
            )
            _count_colorbar(fig, cells, ax)
        else:
            ax.scatter(label.truth, label.pred, s=8, alpha=0.6, color="C0", edgecolors="none")
        ax.plot([lo, hi], [lo, hi], color="C3", lw=1.2, ls="--", label="1:1")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(_with_unit(f"true {label.name}", label.unit))
        ax.set_ylabel(_with_unit(f"predicted {label.name}", label.unit))
        ax.set_title(label.name)
        s = summaries[label.name]
        _box(
            ax,
            f"n = {s['n']}\nbias = {_fmt(s['bias'], label.unit, True)}\nscatter = {_fmt(s['scatter'], label.unit)}",
        )
        ax.legend(loc="lower right", fontsize=9, framealpha=0.85)
    fig.savefig(path, dpi=DPI)
    return path


def running_percentiles(
    x: np.ndarray, y: np.ndarray, n_bins: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median x and the 16th, 50th and 84th percentiles of y in bins of equal counts in x.

    ``n_bins`` defaults to about one bin per 50 points, between 3 and 25; x values that are all equal
    give one bin.
    """
    good = np.isfinite(x) & np.isfinite(y)
    x, y = x[good], y[good]
    if x.size == 0:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    n_bins = n_bins or int(np.clip(x.size // 50, 3, 25))
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max(len(edges) - 2, 0))
    xs, p16, p50, p84 = [], [], [], []
    for i in np.unique(index):
        sel = index == i
        xs.append(np.median(x[sel]))
        a, b, c = np.percentile(y[sel], [16, 50, 84])
        p16.append(a)
        p50.append(b)
        p84.append(c)
    return np.array(xs), np.array(p16), np.array(p50), np.array(p84)


def _density(ax: Any, x: np.ndarray, y: np.ndarray, log_x: bool, y_range: tuple[float, float]) -> None:
    """Grey 2-D histogram of many points (log counts; log-spaced x bins on a log axis)."""
    from matplotlib.colors import LogNorm

    x_edges = np.geomspace(x.min(), x.max() * 1.0001, 61) if log_x else np.linspace(x.min(), x.max() + 1e-12, 61)
    y_edges = np.linspace(*y_range, 41)
    counts, _, _ = np.histogram2d(x, y, [x_edges, y_edges])
    counts = np.ma.masked_equal(counts, 0)
    if counts.count():
        norm = LogNorm(vmin=1, vmax=max(counts.max() * 3, 2))  # darkest cells mid-grey: the curves stay visible
        ax.pcolormesh(x_edges, y_edges, counts.T, cmap="Greys", norm=norm, rasterized=True)


def residuals_snr(data: Sequence[LabelData], summaries: Mapping[str, Any], path: Path, snr_source: str) -> Path:
    """Residual against S/N per label, with the running median and the 16–84 % band."""
    fig, axes = _figure(len(data))
    for ax, label in zip(axes, data, strict=True):
        snr = label.snr if label.snr is not None else np.zeros(0)
        good = np.isfinite(snr) & (snr > 0)
        if not good.any():
            _empty(ax, label)
            continue
        x, d = snr[good], label.residual[good]
        log_x = x.max() / x.min() > 5
        if log_x:
            ax.set_xscale("log")
        xs, p16, p50, p84 = running_percentiles(x, d)
        lo, hi = np.percentile(d, [1, 99])
        span = max(hi - lo, 1e-12)
        y_lo, y_hi = min(lo, p16.min()) - 0.15 * span, max(hi, p84.max()) + 0.3 * span
        if x.size >= DENSITY_FROM:
            _density(ax, x, d, log_x, (y_lo, y_hi))
        else:
            ax.scatter(x, d, s=4, alpha=0.35, color="0.35", edgecolors="none", rasterized=True)
        if xs.size > 1:
            ax.fill_between(xs, p16, p84, color="C1", alpha=0.3, label="16–84 %")
            ax.plot(xs, p50, color="C3", lw=1.8, label="running median")
        elif xs.size == 1:
            ax.errorbar(xs, p50, yerr=[p50 - p16, p84 - p50], fmt="o", color="C3", capsize=4, label="median, 16–84 %")
        ax.axhline(0.0, color="k", lw=0.8, ls=":")
        ax.set_ylim(y_lo, y_hi)
        ax.set_xlabel(f"S/N ({snr_source})")
        ax.set_ylabel(_with_unit(f"predicted − true {label.name}", label.unit))
        ax.set_title(label.name)
        ax.legend(loc="upper right", fontsize=9, framealpha=0.85)
    fig.savefig(path, dpi=DPI)
    return path


def calibration(data: Sequence[LabelData], summaries: Mapping[str, Any], path: Path) -> Path:
    """Histogram of z = residual / total error per label, with the unit Gaussian overlaid."""
    fig, axes = _figure(len(data))
    grid = np.linspace(-Z_RANGE, Z_RANGE, 400)
    gauss = np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi)
    bins = np.linspace(-Z_RANGE, Z_RANGE, 51)
    for ax, label in zip(axes, data, strict=True):
        z = label.z()
        if z.size == 0:
            _empty(ax, label)
            continue
        inside = np.abs(z) <= Z_RANGE
        # density of all stars (not only those drawn), so the histogram's area is the fraction inside
        weights = np.full(int(inside.sum()), 1.0 / (z.size * (bins[1] - bins[0])))
        ax.hist(z[inside], bins=bins, weights=weights, color="C0", alpha=0.55, label="z")
        bias = summaries[label.name]["bias"]
        if bias is not None:
            zb = label.z(bias)
            inside_b = np.abs(zb) <= Z_RANGE
            wb = np.full(int(inside_b.sum()), 1.0 / (zb.size * (bins[1] - bins[0])))
            ax.hist(zb[inside_b], bins=bins, weights=wb, histtype="step", color="C2", lw=1.4, label="z, bias removed")
        ax.plot(grid, gauss, color="C3", lw=1.6, label="N(0, 1)")
        cal = summaries[label.name]["calibration"]
        f1, f2, rs = cal["frac_abs_z_lt_1"], cal["frac_abs_z_lt_2"], cal["robust_sigma_z"]
        text = (
            f"n = {cal['n']}\n|z| < 1: {_fmt(f1, None)} (ideal 0.683)\n|z| < 2: {_fmt(f2, None)} (ideal 0.954)\n"
            f"robust σ(z): {_fmt(rs, None)} (ideal 1)"
        )
        outside = int((~inside).sum())
        if outside:
            text += f"\n|z| > {Z_RANGE:g}: {outside}"
        _box(ax, text)
        ax.set_xlim(-Z_RANGE, Z_RANGE)
        ax.set_ylim(0, max(gauss.max(), ax.get_ylim()[1]) * 1.45)
        ax.set_xlabel("z = (predicted − true) / total error")
        ax.set_ylabel("density")
        ax.set_title(label.name)
        ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    fig.savefig(path, dpi=DPI)
    return path


def draw_all(
    data: Sequence[LabelData], summaries: Mapping[str, Any], out: Path, snr_source: str | None
) -> dict[str, Path]:
    """Every figure into ``out``; ``residuals_snr.png`` only when the labels have an S/N."""
    paths = {
        "one_to_one": one_to_one(data, summaries, out / "one_to_one.png"),
        "calibration": calibration(data, summaries, out / "calibration.png"),
    }
    if snr_source is not None and any(label.snr is not None for label in data):
        paths["residuals_snr"] = residuals_snr(data, summaries, out / "residuals_snr.png", snr_source)
    return paths
