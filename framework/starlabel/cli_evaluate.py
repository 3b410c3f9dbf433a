"""``starlabel evaluate``: a prediction catalogue against reference labels."""

from __future__ import annotations

import click

from starlabel.evaluate import DEFAULT_LOGG_BINS, DEFAULT_SNR_BINS, DEFAULT_TEFF_BINS


def _edges_text(edges: tuple[float, ...]) -> str:
    return ",".join(f"{e:g}" for e in edges)


def _parse_map(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for value in values:
        label, sep, column = value.partition("=")
        label, column = label.strip(), column.strip()
        if not sep or not label or not column:
            raise click.BadParameter(f"{value!r}; write label=column, e.g. --map teff=TEFF", ctx, param)
        if label in mapping:
            raise click.BadParameter(f"label {label!r} is mapped twice ({mapping[label]} and {column})", ctx, param)
        mapping[label] = column
    return mapping


@click.command("evaluate")
@click.argument("catalogue", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--truth",
    required=True,
    type=click.Path(exists=True),
    help="Reference labels: a store folder, or a table (FITS, CSV, ECSV, VOTable, Parquet).",
)
@click.option("--out", type=click.Path(file_okay=False), help="Output folder [default: <catalogue stem>_evaluation].")
@click.option("--id-column", default="source_id", show_default=True, help="Source-id column of a truth table.")
@click.option(
    "--map",
    "mapping",
    multiple=True,
    callback=_parse_map,
    metavar="LABEL=COLUMN",
    help="Truth column (or store label) of a catalogue label; repeatable. Default: the same name. "
    "Its uncertainty is read from COLUMN_err when present.",
)
@click.option("--bins-snr", default=_edges_text(DEFAULT_SNR_BINS), show_default=True, help="S/N bin edges.")
@click.option("--bins-teff", default=_edges_text(DEFAULT_TEFF_BINS), show_default=True, help="True-Teff bin edges.")
@click.option("--bins-logg", default=_edges_text(DEFAULT_LOGG_BINS), show_default=True, help="True-logg bin edges.")
@click.option("--teff-label", default="teff", show_default=True, help="Truth label binned as Teff.")
@click.option("--logg-label", default="logg", show_default=True, help="Truth label binned as logg.")
@click.option("--flags-ok", is_flag=True, help="Use only rows with flag == 0 (default: all, flag == 0 also reported).")
@click.option("--no-figures", is_flag=True, help="Write summary.json only.")
def evaluate_command(
    catalogue: str,
    truth: str,
    out: str | None,
    id_column: str,
    mapping: dict[str, str],
    bins_snr: str,
    bins_teff: str,
    bins_logg: str,
    teff_label: str,
    logg_label: str,
    flags_ok: bool,
    no_figures: bool,
) -> None:
    """Compare CATALOGUE (from `starlabel predict`) with reference labels, joined by source id.

    Writes summary.json (per label: n, bias = median of pred − truth, scatter = 1.4826 × MAD, mean, rms,
    the same in bins of S/N, true Teff and true logg, and the calibration of the uncertainties) and the
    figures one_to_one.png, residuals_snr.png and calibration.png.
    """
    from starlabel.evaluate import evaluate

    result = evaluate(
        catalogue,
        truth,
        out=out,
        id_column=id_column,
        mapping=mapping,
        bins_snr=bins_snr,
        bins_teff=bins_teff,
        bins_logg=bins_logg,
        teff_label=teff_label,
        logg_label=logg_label,
        flags_ok=flags_ok,
        figures=not no_figures,
    )
    rows = result.summary["rows"]
    subset = f"; {rows['selected']} with flag == 0 used" if rows["flags_ok"] else ""
    click.echo(
        f"{catalogue}: {rows['matched']} of {rows['catalogue']} rows matched in {truth} "
        f"({rows['unmatched']} without a truth row){subset}"
    )
    click.echo(f"  {'label':12s} {'unit':6s} {'n':>7s} {'bias':>10s} {'scatter':>10s} {'|z|<1':>6s}")
    for name, s in result.summary["labels"].items():
        frac = s["calibration"]["frac_abs_z_lt_1"]
        click.echo(
            f"  {name:12s} {s['unit'] or '':6s} {s['n']:7d} {_num(s['bias'], True):>10s} "
            f"{_num(s['scatter']):>10s} {'-' if frac is None else f'{frac:.3f}':>6s}"
        )
    for name, why in result.summary["skipped_labels"].items():
        click.echo(f"  {name:12s} skipped: {why}")
    click.echo(f"wrote {result.out}")


def _num(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4g}" if sign else f"{value:.4g}"
