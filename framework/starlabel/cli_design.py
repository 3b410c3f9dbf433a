"""``starlabel design``: where a survey is not covered by a training set, and which stars to observe."""

from __future__ import annotations

import click


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


@click.command("design")
@click.option("--train", "train", required=True, type=click.Path(exists=True), help="Training store (labelled rows).")
@click.option(
    "--survey",
    "survey",
    required=True,
    type=click.Path(exists=True),
    help="Survey: a store (input space only) or a prediction catalogue (.fits/.parquet).",
)
@click.option(
    "--survey-inputs",
    "survey_inputs",
    type=click.Path(exists=True),
    help="With a catalogue --survey: the survey's store, joined on source_id, for input-space coverage.",
)
@click.option("--out", "out", default="design", show_default=True, type=click.Path(), help="Folder to write.")
@click.option("--n-targets", "n_targets", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--labels", help="Comma-separated labels (default: every training label the catalogue has).")
@click.option(
    "--inputs",
    help="Comma-separated inputs: group.column, group, pcaN, pca, or none (default: all shared, and pca).",
)
@click.option("--pca", "n_pca", default=3, show_default=True, type=click.IntRange(min=0), help="Spectral components.")
@click.option("--k", "k", default=5, show_default=True, type=click.IntRange(min=1), help="k-th nearest neighbour.")
@click.option(
    "--quantile",
    default=0.99,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True),
    help="Training quantile of the k-NN distance that is the coverage threshold.",
)
@click.option("--max-survey", "max_survey", default=200_000, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--bins", default=8, show_default=True, type=click.IntRange(min=1), help="About this many cells per axis."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the subsamples.")
@click.option("--no-plot", "no_plot", is_flag=True, help="Skip coverage.png.")
def design_command(
    train: str,
    survey: str,
    survey_inputs: str | None,
    out: str,
    n_targets: int,
    labels: str | None,
    inputs: str | None,
    n_pca: int,
    k: int,
    quantile: float,
    max_survey: int,
    bins: int,
    seed: int,
    no_plot: bool,
) -> None:
    """Where a SURVEY falls outside the training set's coverage, and a ranked list of its stars to observe.

    Coverage is measured in label space (a prediction catalogue's labels) and input space (auxiliary
    columns and spectral principal components); writes targets.csv, targets.fits, coverage.json and
    coverage.png in --out.
    """
    from starlabel.design import DesignOptions, design, write_design

    options = DesignOptions(
        n_targets=n_targets,
        labels=_names(labels),
        inputs=_names(inputs),
        survey_inputs=survey_inputs,
        k=k,
        quantile=quantile,
        n_pca=n_pca,
        max_survey=max_survey,
        bins=bins,
        seed=seed,
    )
    result = design(train, survey, options)
    paths = write_design(result, out, plot=not no_plot)
    report = result.report
    s = report["survey"]
    click.echo(f"survey {survey}: {s['n_used']} of {s['n_rows']} stars used ({s['n_no_data']} no_data)")
    for name, space in report["spaces"].items():
        frac = space["fraction_uncovered"]
        shown = f"{frac:.1%}" if frac is not None else "n/a"
        click.echo(f"  {name:6s} ({', '.join(space['dims'])}): {shown} uncovered of {space['n_evaluated']}")
    overall = report["overall"]["fraction_uncovered"]
    click.echo(f"  overall: {overall:.1%} uncovered" if overall is not None else "  overall: nothing evaluated")
    for note in report["notes"]:
        click.echo(f"  note: {note}")
    for cell in report["top_cells"][:5]:
        click.echo(f"  gap: {cell['name']}: {cell['n_uncovered']} of {cell['n_survey']} uncovered")
    t = report["targets"]
    click.echo(f"{t['n']} targets ({t['n_in_gaps']} in gaps): " + ", ".join(str(p) for p in paths.values()))
