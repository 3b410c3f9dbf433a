"""``starlabel plot chemistry`` and ``starlabel plot kiel``: PNG figures of a prediction catalogue."""

from __future__ import annotations

import json
from typing import Any

import click

from starlabel.plots import (
    DEFAULT_ALPHA_RANGE,
    DEFAULT_FLAG_MASK,
    DEFAULT_METAL_RANGE,
    DEFAULT_R_EDGES,
    DEFAULT_Z_EDGES,
    DPI,
    FLAG_BITS,
)

_FLAG_HELP = (
    f"Exclude rows with flag & MASK != 0: an integer or flag names joined by '|' "
    f"({', '.join(f'{k}={v}' for k, v in FLAG_BITS.items())}); 0 keeps every row. "
    f"Default {DEFAULT_FLAG_MASK} = boundary|no_data."
)


def _csv(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)


def _numbers(value: str, param: click.Parameter) -> list[float]:
    try:
        return [float(v) for v in value.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a comma-separated list of numbers (e.g. {param.default})", param=param
        ) from None


def _edges(ctx: click.Context, param: click.Parameter, value: str) -> list[float]:
    from starlabel.galactic import BinEdgesError, check_edges

    edges = _numbers(value, param)
    try:
        return check_edges(edges, f"--{param.name.replace('_', '-')}", allow_negative=param.name != "r_bins").tolist()
    except BinEdgesError as error:
        raise click.BadParameter(str(error), param=param) from None


def _range(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float]:
    pair = _numbers(value, param)
    if len(pair) != 2 or pair[0] >= pair[1]:
        raise click.BadParameter(f"{value!r}: give two numbers, low first (e.g. {param.default})", param=param)
    return pair[0], pair[1]


def _flag_mask(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from starlabel.plots import PlotError, flag_mask_from_text

    try:
        return flag_mask_from_text(value)
    except PlotError as error:
        raise click.BadParameter(str(error), param=param) from None


def _report(path: Any, summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    excluded = ", ".join(f"{k} {v}" for k, v in summary["excluded"].items())
    click.echo(f"{path}: {summary['plotted']:,} of {summary['rows']:,} stars plotted; excluded: {excluded}")
    for note in summary["notes"]:
        click.echo(f"  note: {note}", err=True)


@click.group("plot", context_settings={"help_option_names": ["-h", "--help"]})
def plot_group() -> None:
    """Figures (PNG) of a prediction catalogue."""


@plot_group.command("chemistry")
@click.argument("catalogue", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--positions",
    type=click.Path(exists=True),
    metavar="STORE|TABLE",
    help="Store or table (FITS, CSV, ECSV, VOTable, Parquet) with ra, dec, parallax [, parallax_error] for a "
    "catalogue without them; joined on source_id.",
)
@click.option("--id-column", default="source_id", show_default=True, help="Source-id column of a --positions table.")
@click.option("--out", type=click.Path(dir_okay=False), help="PNG to write [default: CATALOGUE_chemistry.png].")
@click.option("--metal-label", metavar="COLUMN", help="[M/H] column [default: first of m_h, fe_h, mh].")
@click.option("--alpha-label", metavar="COLUMN", help="[α/M] column [default: first of alpha_m, alpha_fe].")
@click.option(
    "--r-bins",
    metavar="EDGES",
    default=_csv(DEFAULT_R_EDGES),
    show_default=True,
    callback=_edges,
    help="Galactocentric R bin edges (kpc), one column of panels per bin.",
)
@click.option(
    "--z-bins",
    metavar="EDGES",
    default=_csv(DEFAULT_Z_EDGES),
    show_default=True,
    callback=_edges,
    help="Z bin edges (kpc), one row of panels per bin: bins of |Z| when every edge is >= 0, of signed Z "
    "when one is negative (e.g. -2,-1,0,1,2).",
)
@click.option(
    "--parallax-snr-min",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Keep parallax/parallax_error >= this (when an error column exists); 0: no cut.",
)
@click.option("--flag-mask", metavar="MASK", default=str(DEFAULT_FLAG_MASK), callback=_flag_mask, help=_FLAG_HELP)
@click.option(
    "--metal-range",
    metavar="LO,HI",
    default=_csv(DEFAULT_METAL_RANGE),
    show_default=True,
    callback=_range,
    help="[M/H] axis (dex).",
)
@click.option(
    "--alpha-range",
    metavar="LO,HI",
    default=_csv(DEFAULT_ALPHA_RANGE),
    show_default=True,
    callback=_range,
    help="[α/M] axis (dex).",
)
@click.option("--dpi", type=click.IntRange(30, 600), default=DPI, show_default=True, help="PNG resolution.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (counts per panel, exclusions) as JSON.")
def chemistry_command(
    catalogue: str,
    positions: str | None,
    id_column: str,
    out: str | None,
    metal_label: str | None,
    alpha_label: str | None,
    r_bins: list[float],
    z_bins: list[float],
    parallax_snr_min: float,
    flag_mask: int,
    metal_range: tuple[float, float],
    alpha_range: tuple[float, float],
    dpi: int,
    as_json: bool,
) -> None:
    """[α/M] vs [M/H] of CATALOGUE in Galactocentric R–Z bins (rows: Z, highest at the top; columns: R).

    Distances are 1/parallax; R and Z use astropy's default Galactocentric frame (Sun at 8.122 kpc,
    20.8 pc above the plane).
    """
    from starlabel.plots import plot_chemistry

    path, summary = plot_chemistry(
        catalogue,
        out,
        positions=positions,
        id_column=id_column,
        metal_label=metal_label,
        alpha_label=alpha_label,
        r_edges=r_bins,
        z_edges=z_bins,
        parallax_snr_min=parallax_snr_min,
        flag_mask=flag_mask,
        metal_range=metal_range,
        alpha_range=alpha_range,
        dpi=dpi,
    )
    _report(path, summary, as_json)


@plot_group.command("kiel")
@click.argument("catalogue", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="PNG to write [default: CATALOGUE_kiel.png].")
@click.option("--teff-label", default="teff", show_default=True, help="Teff column.")
@click.option("--logg-label", default="logg", show_default=True, help="log g column.")
@click.option("--colour-label", metavar="COLUMN", help="Colour column [default: first of m_h, fe_h, mh].")
@click.option("--flag-mask", metavar="MASK", default=str(DEFAULT_FLAG_MASK), callback=_flag_mask, help=_FLAG_HELP)
@click.option("--dpi", type=click.IntRange(30, 600), default=DPI, show_default=True, help="PNG resolution.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def kiel_command(
    catalogue: str,
    out: str | None,
    teff_label: str,
    logg_label: str,
    colour_label: str | None,
    flag_mask: int,
    dpi: int,
    as_json: bool,
) -> None:
    """Kiel diagram of CATALOGUE: log g vs Teff (both inverted), coloured by [M/H]."""
    from starlabel.plots import plot_kiel

    path, summary = plot_kiel(
        catalogue,
        out,
        teff_label=teff_label,
        logg_label=logg_label,
        colour_label=colour_label,
        flag_mask=flag_mask,
        dpi=dpi,
    )
    _report(path, summary, as_json)
