"""``starlabel demo SURVEY``: the end-to-end run on a survey whose data are available offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

PENDING_STAGES = ("evaluate (figures), explain, design and write the HTML report",)


@click.command("demo")
@click.argument("survey_ref", metavar="SURVEY")
@click.option(
    "--data", "data_override", type=click.Path(exists=True), help="Data folder or file (default: located by plugins)."
)
@click.option("--out", "out_dir", type=click.Path(), default="starlabel-demo", show_default=True, help="Output folder.")
@click.option("--fresh", is_flag=True, help="Remove the output folder first (default: resume what is there).")
@click.option("--ensemble", type=click.IntRange(min=1), default=2, show_default=True, help="Ensemble members.")
@click.option("--epochs", type=click.IntRange(min=1), default=15, show_default=True, help="Maximum epochs per member.")
@click.option("--fast", is_flag=True, help="One member, two epochs: checks the pipeline, not the science.")
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
    predict the held-out test split and print bias and robust scatter per label. Re-running resumes each
    stage where it stopped.
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
    click.echo(f"[1/6] descriptor {path}: valid (survey {resolved.name}, hash {resolved.hash()[:12]})")
    root = data_root(resolved, plugins, data_override)
    click.echo(f"[2/6] data located: {root}")
    store_path = out / "store.zarr"
    if (store_path / "zarr.json").exists() and store_info(store_path)["complete"]:
        click.echo(f"[3/6] store {store_path} already complete (use --fresh to redo it)")
    else:
        report = ingest(resolved, plugins, store_path, data_root=root)
        click.echo(
            f"[3/6] ingested {report.rows} spectra into {store_path}: {report.kept} kept after duplicates "
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
    _learn(resolved, plugins, store_path, out, 1 if fast else ensemble, 2 if fast else epochs, quiet)
    click.echo("\nnot implemented yet in this version of starlabel:\n  - " + "\n  - ".join(PENDING_STAGES))


def _learn(resolved, plugins, store_path: Path, out: Path, ensemble: int, epochs: int, quiet: bool) -> None:  # type: ignore[no-untyped-def]
    """Stages 4–6: train (resuming), predict the test split (resuming), print the held-out metrics."""
    import numpy as np

    from starlabel.bundle import read_card
    from starlabel.catalogue import read_catalogue
    from starlabel.predict import predict
    from starlabel.store import Store
    from starlabel.train import TrainOptions, robust_metrics, train

    bundle = out / "bundle"
    if (bundle / "card.json").exists():
        click.echo(f"[4/6] bundle {bundle} already trained")
    else:
        options = TrainOptions(resume=(bundle / "_work").exists(), epochs=epochs, ensemble=ensemble, progress=not quiet)
        report = train(resolved, plugins, store_path, bundle, options)
        click.echo(
            f"[4/6] trained {len(report.members)} member(s) of {read_card(bundle).architecture.name} in {report.seconds:.0f} s: {bundle}"
        )
    catalogue = out / "test_predictions.fits"
    if catalogue.exists():
        click.echo(f"[5/6] catalogue {catalogue} already written")
    else:
        report = predict(bundle, store_path, catalogue, plugins, split="test", progress=not quiet)
        click.echo(f"[5/6] predicted the {report.rows} held-out test stars: {catalogue}")
    columns, _ = read_catalogue(catalogue)
    store = Store.open(store_path)
    ids = np.asarray(store.array("source_id")[:])
    position = {k: i for i, k in enumerate(ids.tolist())}
    rows = np.array([position[k] for k in columns["source_id"].tolist()], dtype=np.int64)
    labels = list(store.layout.labels)
    truth = np.stack([np.asarray(store.array(f"labels/{n}")[:])[rows] for n in labels], axis=1).astype(np.float64)
    ok = np.stack([np.asarray(store.array(f"labels/{n}_ok")[:])[rows] for n in labels], axis=1)
    pred = np.stack([columns[n] for n in labels], axis=1).astype(np.float64)
    metrics = robust_metrics(pred, truth, ok, labels)
    click.echo("[6/6] held-out test stars, prediction − reference (bias = median, scatter = 1.4826 × MAD):")
    for name in labels:
        m = metrics[name]
        unit = store.layout.labels[name]
        if m["n"]:
            click.echo(
                f"      {name:10s} n {m['n']:6d}  bias {m['bias']:+9.4g} {unit:4s} scatter {m['scatter']:9.4g} {unit}"
            )
        else:
            click.echo(f"      {name:10s} n      0  (no labelled test star)")
