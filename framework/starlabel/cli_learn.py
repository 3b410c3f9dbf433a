"""``starlabel train`` and ``starlabel predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

DEVICES = ("cpu", "cuda")
DASK_LOCAL = "local"  # the value of --dask given alone: start a local cluster (starlabel.predict_dask.LOCAL)
DASK_WORKERS = 2  # starlabel.predict_dask.DEFAULT_WORKERS
DASK_RETRIES = 3  # starlabel.predict_dask.DEFAULT_RETRIES


def _device(value: str) -> str:
    if value.split(":")[0] not in DEVICES:
        raise click.BadParameter(f"{value!r}; allowed: {', '.join(DEVICES)} (or cuda:N)")
    return value


def _dask_address(value: str | None) -> str | None:
    """``--dask``: None (not given), ``'local'`` (given alone) or a scheduler address."""
    if value is None or value == DASK_LOCAL:
        return value
    if not value.strip():
        raise click.BadParameter(
            "an empty scheduler address; give --dask alone for a local cluster, or --dask=tcp://HOST:PORT"
        )
    if "://" not in value and Path(value).exists():
        raise click.BadParameter(
            f"{value!r} was taken as the scheduler address, but it is a path; put --dask after BUNDLE, or write "
            "--dask=ADDRESS (--dask alone: a local cluster)"
        )
    return value


@click.command("train")
@click.argument("descriptor_ref", metavar="DESCRIPTOR")
@click.option("--store", "store_path", required=True, type=click.Path(exists=True), help="Store made by `ingest`.")
@click.option("--out", "out", required=True, type=click.Path(), help="Bundle folder to write.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run at --out from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace a bundle or an interrupted run at --out.")
@click.option("--device", default="cpu", show_default=True, callback=lambda c, p, v: _device(v), help="cpu or cuda.")
@click.option("--init-from", "init_from", type=click.Path(exists=True), help="Start from this bundle's weights.")
@click.option("--freeze-trunk", is_flag=True, help="With --init-from: keep the convolution trunk fixed.")
@click.option("--epochs", type=click.IntRange(min=1), help="Override training.epochs.")
@click.option("--ensemble", type=click.IntRange(min=1), help="Override training.ensemble.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_command(
    descriptor_ref: str,
    store_path: str,
    out: str,
    resume: bool,
    overwrite: bool,
    device: str,
    init_from: str | None,
    freeze_trunk: bool,
    epochs: int | None,
    ensemble: int | None,
    quiet: bool,
) -> None:
    """Train the DESCRIPTOR's network (an ensemble) on a store and write a model bundle.

    Runs under torchrun for multi-process training:
    `torchrun --nproc_per_node 2 -m starlabel train DESCRIPTOR --store S --out B`.
    """
    from starlabel.cli import get_plugins
    from starlabel.descriptor import load_descriptor
    from starlabel.surveys import find_descriptor
    from starlabel.train import TrainOptions, train

    plugins = get_plugins()
    resolved = load_descriptor(find_descriptor(descriptor_ref, plugins), plugins)
    options = TrainOptions(
        resume, overwrite, device, Path(init_from) if init_from else None, freeze_trunk, epochs, ensemble, not quiet
    )
    report = train(resolved, plugins, store_path, out, options)
    if report.metrics:
        click.echo(f"{report.bundle}: {len(report.members)} member(s) in {report.seconds:.1f} s; validation:")
        for name, m in report.metrics.get("valid", {}).items():
            if m["n"]:
                click.echo(f"  {name:12s} n {m['n']:6d}  bias {m['bias']:+.4g}  scatter {m['scatter']:.4g}")


@click.command("predict")
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--store", "store_path", required=True, type=click.Path(exists=True), help="Store to predict.")
@click.option("--out", "out", required=True, type=click.Path(), help="Catalogue file (.fits or .parquet).")
@click.option("--split", type=click.Choice(["train", "valid", "test"]), help="Only this split of the bundle's split.")
@click.option("--device", default="cpu", show_default=True, callback=lambda c, p, v: _device(v), help="cpu or cuda.")
@click.option("--mc-samples", type=click.IntRange(min=1), help="Monte-Carlo dropout passes (default: the card's).")
@click.option("--overwrite", is_flag=True, help="Replace an existing catalogue.")
@click.option("--strict", is_flag=True, help="Stop at the first spectrum that cannot be predicted.")
@click.option(
    "--dask",
    "dask_address",
    is_flag=False,
    flag_value=DASK_LOCAL,
    default=None,
    metavar="[ADDRESS]",
    callback=lambda c, p, v: _dask_address(v),
    help="Predict the chunks as Dask tasks. Alone (or --dask=local): on a local cluster of --workers processes, "
    "1 thread each. With a scheduler address (--dask tcp://HOST:8786 after BUNDLE, or --dask=tcp://HOST:8786 "
    "anywhere): on that cluster, whose workers must see BUNDLE, --store and --out at the same paths. Writes the "
    "same catalogue as a run without --dask.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help=f"With --dask and no address: worker processes of the local cluster [default: {DASK_WORKERS}].",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    help=f"With --dask: times a chunk's task is re-run after it raised an error (the task of a worker that died "
    f"is re-run anyway) [default: {DASK_RETRIES}].",
)
@click.option(
    "--engine",
    type=click.Choice(["fast", "eager"]),
    default="fast",
    show_default=True,
    help="fast: the networks' compiled CPU copies for deterministic passes (same numbers to 1e-5); eager: the "
    "torch modules as trained.",
)
@click.option(
    "--lanes",
    type=click.IntRange(min=1),
    help="Without --dask: chunks predicted side by side, one CPU thread each [default: one per CPU thread torch "
    "uses, e.g. OMP_NUM_THREADS; 1 on a GPU or with Monte-Carlo dropout, which use torch's own threads].",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def predict_command(
    bundle: str,
    store_path: str,
    out: str,
    split: str | None,
    device: str,
    mc_samples: int | None,
    overwrite: bool,
    strict: bool,
    dask_address: str | None,
    workers: int | None,
    retries: int | None,
    engine: str,
    lanes: int | None,
    quiet: bool,
) -> None:
    """Apply BUNDLE to a store, chunk by chunk, into a FITS or Parquet catalogue (re-run to resume).

    With --dask, each chunk not yet predicted is one task on a Dask cluster that writes its own part;
    this process then assembles the catalogue. A run interrupted with or without --dask resumes with
    either.
    """
    from starlabel.cli import get_plugins

    if dask_address is None and (workers is not None or retries is not None):
        given = "--workers" if workers is not None else "--retries"
        raise click.UsageError(f"{given} applies to Dask runs only; add --dask (or leave {given} out)")
    if dask_address is not None and lanes is not None:
        raise click.UsageError("--lanes applies to runs without --dask; a Dask worker predicts one chunk per thread")
    if dask_address not in (None, DASK_LOCAL) and workers is not None:
        raise click.UsageError(
            f"--workers sizes the local cluster that --dask starts without an address; the cluster at "
            f"{dask_address} has the workers its scheduler has"
        )
    options: dict[str, Any] = {
        "split": split,
        "device": device,
        "mc_samples": mc_samples,
        "overwrite": overwrite,
        "strict": strict,
        "progress": not quiet,
        "engine": engine,
    }
    if dask_address is None:
        from starlabel.allocator import keep_freed_memory
        from starlabel.predict import predict

        keep_freed_memory()  # chunk after chunk, the same big arrays: reuse their memory instead of re-mapping it

        report = predict(bundle, store_path, out, get_plugins(), lanes=lanes, **options)
    else:
        from starlabel.predict_dask import predict_dask

        report = predict_dask(
            bundle,
            store_path,
            out,
            get_plugins(),
            address=dask_address,
            workers=DASK_WORKERS if workers is None else workers,
            retries=DASK_RETRIES if retries is None else retries,
            **options,
        )
    resumed = f" ({report.resumed_chunks} resumed)" if report.resumed_chunks else ""
    click.echo(
        f"{report.out}: {report.rows} rows from {report.chunks} chunk(s){resumed} in {report.seconds:.1f} s; flagged: "
        + ", ".join(f"{k} {v}" for k, v in report.flagged.items())
    )
    if report.no_data_ids:
        shown = ", ".join(report.no_data_ids[:5]) + (" ..." if len(report.no_data_ids) > 5 else "")
        click.echo(f"  {len(report.no_data_ids)} spectrum(s) with no usable pixel (NaN labels): {shown}", err=True)
