"""``starlabel demo SURVEY``: the end-to-end run on a survey whose data are available offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

PENDING_STAGES = (
    "train an ensemble",
    "predict the held-out split",
    "evaluate, explain, design and write the HTML report",
)


@click.command("demo")
@click.argument("survey_ref", metavar="SURVEY")
@click.option(
    "--data", "data_override", type=click.Path(exists=True), help="Data folder or file (default: located by plugins)."
)
@click.option("--out", "out_dir", type=click.Path(), default="starlabel-demo", show_default=True, help="Output folder.")
@click.option("--fresh", is_flag=True, help="Remove the output folder first (default: resume what is there).")
def demo(survey_ref: str, data_override: str | None, out_dir: str, fresh: bool) -> None:
    """Run the pipeline on SURVEY (a descriptor name or path) with its locally available data.

    Stages implemented so far: descriptor validation, data location, and ingest into a zarr store
    (reading, resampling, masking, normalisation, cross-match of auxiliary inputs and labels).
    """
    from starlabel.cli import get_plugins
    from starlabel.datafiles import data_root
    from starlabel.descriptor import load_descriptor
    from starlabel.ingest import ingest
    from starlabel.store_info import store_info
    from starlabel.surveys import find_descriptor

    plugins = get_plugins()
    out = Path(out_dir)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    path = find_descriptor(survey_ref, plugins)
    resolved = load_descriptor(path, plugins)
    click.echo(f"[1/3] descriptor {path}: valid (survey {resolved.name}, hash {resolved.hash()[:12]})")
    root = data_root(resolved, plugins, data_override)
    click.echo(f"[2/3] data located: {root}")
    store_path = out / "store.zarr"
    if (store_path / "zarr.json").exists() and store_info(store_path)["complete"]:
        click.echo(f"[3/3] store {store_path} already complete (use --fresh to redo it)")
    else:
        report = ingest(resolved, plugins, store_path, data_root=root)
        click.echo(
            f"[3/3] ingested {report.rows} spectra into {store_path}: {report.kept} kept after duplicates "
            f"({report.duplicate_ids} ids repeated), "
            + ", ".join(f"aux/{k} matched {v}" for k, v in report.aux_matched.items())
            + f", labels matched {report.labels_matched} (all labels ok: {report.labels_complete}); "
            f"{len(report.problems)} problem(s) in {store_path}/ingest_report.json"
        )
    info = store_info(store_path)
    click.echo(
        f"      store: {info['rows']} rows × {info['grid']['n_pixels']} px, {info['masked_fraction']:.2%} masked, "
        + ", ".join(f"{k} ok {v['ok']}" for k, v in info["labels"].items())
    )
    click.echo(
        "\ndemo stops here: the remaining stages are not implemented yet in this version of starlabel:\n  - "
        + "\n  - ".join(PENDING_STAGES)
    )
