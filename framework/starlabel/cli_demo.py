"""``starlabel demo SURVEY``: the end-to-end run on a survey whose data are available offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import click


@click.command("demo")
@click.argument("survey_ref", metavar="SURVEY")
@click.option(
    "--data", "data_override", type=click.Path(exists=True), help="Data folder or file (default: located by plugins)."
)
@click.option("--out", "out_dir", type=click.Path(), default="starlabel-demo", show_default=True, help="Output folder.")
@click.option("--fresh", is_flag=True, help="Remove the output folder first (default: resume what is there).")
@click.option("--ensemble", type=click.IntRange(min=1), default=2, show_default=True, help="Ensemble members.")
@click.option("--epochs", type=click.IntRange(min=1), default=15, show_default=True, help="Maximum epochs per member.")
@click.option("--fast", is_flag=True, help="One member, two epochs, few stars explained: checks the pipeline only.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(
    survey_ref: str,
    data_override: str | None,
    out_dir: str,
    fresh: bool,
    ensemble: int,
    epochs: int,
    fast: bool,
    quiet: bool,
) -> None:
    """Run the pipeline on SURVEY (a descriptor name or path) with its locally available data.

    Stages: validate the descriptor, locate the data, ingest into a zarr store, train a small ensemble,
    predict the held-out test split, evaluate it, explain the network (gradients), predict every star and
    design the training set's next targets, then write an HTML report and print its path. Re-running
    resumes each stage where it stopped.
    """
    from starlabel.cli import get_plugins
    from starlabel.datafiles import data_root
    from starlabel.demo import STAGES, DemoOptions, run_demo
    from starlabel.descriptor import load_descriptor
    from starlabel.surveys import find_descriptor

    plugins = get_plugins()
    out = Path(out_dir)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    path = find_descriptor(survey_ref, plugins)
    resolved = load_descriptor(path, plugins)
    click.echo(f"[1/{STAGES}] descriptor {path}: valid (survey {resolved.name}, hash {resolved.hash()[:12]})")
    root = data_root(resolved, plugins, data_override)
    click.echo(f"[2/{STAGES}] data located: {root}")
    options = DemoOptions(
        ensemble=1 if fast else ensemble,
        epochs=2 if fast else epochs,
        explain_stars=32 if fast else 256,
        design_targets=10 if fast else 100,
        progress=not quiet,
    )
    index = run_demo(resolved, plugins, root, out, options, click.echo)
    click.echo(f"\nreport: {index.resolve()}")
