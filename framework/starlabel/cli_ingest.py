"""``starlabel ingest`` and ``starlabel store info``."""

from __future__ import annotations

import json

import click


@click.command("ingest")
@click.argument("descriptor_ref", metavar="DESCRIPTOR")
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--store", "store_path", required=True, type=click.Path(), help="Store folder to create or resume.")
@click.option(
    "--data", "data_root", type=click.Path(exists=True), help="Folder the descriptor's data: patterns are under."
)
@click.option("--strict", is_flag=True, help="Stop at the first file that fails instead of reporting and skipping it.")
@click.option("--report", "report_path", type=click.Path(), help="Also write the ingest report JSON here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest_command(
    descriptor_ref: str,
    files: tuple[str, ...],
    store_path: str,
    data_root: str | None,
    strict: bool,
    report_path: str | None,
    quiet: bool,
) -> None:
    """Read FILES (default: the descriptor's data.spectra) into a zarr store on the descriptor's grid.

    Re-running the same command after an interruption resumes it. Files that fail are listed in the
    report (ingest_report.json in the store folder) and skipped, unless --strict.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from starlabel.cli import get_plugins
    from starlabel.descriptor import load_descriptor
    from starlabel.ingest import ingest
    from starlabel.surveys import find_descriptor

    plugins = get_plugins()
    resolved = load_descriptor(find_descriptor(descriptor_ref, plugins), plugins)
    columns = (
        TextColumn("ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files · {task.fields[rows]} spectra · {task.fields[rate]}/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=quiet, transient=False) as bar:
        task = bar.add_task("ingest", total=None, rows=0, rate="-")

        def update(done: int, total: int, rows: int) -> None:
            elapsed = bar.tasks[task].elapsed or 0.0
            rate = f"{rows / elapsed:,.0f}" if elapsed > 0 else "-"
            bar.update(task, completed=done, total=total, rows=f"{rows:,}", rate=rate)

        report = ingest(
            resolved, plugins, store_path, list(files) or None, data_root=data_root, strict=strict, progress=update
        )
    if report_path:
        from starlabel.storage import storage_errors

        with storage_errors(report_path, "write the ingest report (the store itself is complete)"):
            with open(report_path, "w") as handle:
                json.dump(report.to_dict(), handle, indent=2)
    click.echo(
        f"{report.store}: {report.rows} spectra from {report.files - len(report.files_failed)}/{report.files} file(s); "
        f"{report.kept} kept ({report.duplicate_ids} duplicated ids resolved); "
        + "; ".join(f"aux/{k} matched {v}" for k, v in report.aux_matched.items())
        + (
            f"; labels matched {report.labels_matched}, complete {report.labels_complete}"
            if report.labels_matched or report.labels_complete
            else ""
        )
    )
    for failure in report.files_failed:
        click.echo(f"  failed: {failure['file']}: {failure['error']}", err=True)
    if report.problems:
        click.echo(f"  {len(report.problems)} row problem(s), listed in {report.store}/ingest_report.json", err=True)


@click.group("store")
def store_group() -> None:
    """Inspect stores."""


@store_group.command("info")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(path: str, as_json: bool) -> None:
    """Counts, grid, label and aux coverage, and provenance of the store at PATH."""
    from starlabel.store_info import store_info

    summary = store_info(path)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"store      {summary['path']}  ({'complete' if summary['complete'] else 'INCOMPLETE'})")
    click.echo(f"survey     {summary['survey']}  descriptor hash {summary['descriptor_hash'][:12]}")
    click.echo(
        f"rows       {summary['rows']} ({summary['kept']} kept after duplicates), {summary['chunks']} chunk(s) of {summary['chunk_rows']}"
    )
    grid = summary["grid"]
    click.echo(
        f"grid       {grid['n_pixels']} px, {grid['start']:g}–{grid['stop']:g} {grid['unit']} ({grid['medium']}, {grid['spacing']})"
    )
    click.echo(f"masked     {summary['masked_fraction']:.2%} of pixels")
    for name, cov in summary["aux"].items():
        click.echo(f"aux        {name}: " + ", ".join(f"{c} {v:.1%}" for c, v in cov.items()))
    for name, cov in summary["labels"].items():
        click.echo(f"label      {name}: {cov['ok']} ok ({cov['fraction']:.1%}), unit {cov['unit'] or '-'}")
    click.echo(
        f"provenance starlabel {summary['code_version']}, created {summary['created']}, plugins: "
        + ", ".join(f"{k} {v}" for k, v in summary["plugins"].items())
    )
