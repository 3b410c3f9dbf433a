"""``starlabel simulate``: simulated archive files of a survey, with a truth table and a descriptor to ingest."""

from __future__ import annotations

import shlex
import sys

import click

from starlabel.snr import KINDS


@click.command("simulate")
@click.argument("descriptor_ref", metavar="DESCRIPTOR")
@click.option("--n", "n", required=True, type=click.IntRange(min=1), help="Number of stars.")
@click.option(
    "--snr",
    "snr_text",
    required=True,
    metavar="DIST",
    help="S/N per spectrum: a number (20), LOW:HIGH (15:25), " + ", ".join(KINDS.values()) + ".",
)
@click.option("--out", "out", required=True, type=click.Path(), help="Output folder (absent or empty).")
@click.option("--seed", default=42, show_default=True, type=click.IntRange(min=0), help="Seed of everything drawn.")
@click.option("--synthesizer", default="linelist", show_default=True, help="Name of a registered synthesizer.")
@click.option(
    "--batch-size",
    "batch_size",
    default=2000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Stars synthesized and written at once (bounds memory).",
)
@click.option(
    "--skip-auxiliary",
    "skip_auxiliary",
    multiple=True,
    metavar="NAME",
    help="Leave out this auxiliary entry (store key or provider) when it cannot be simulated; repeatable.",
)
@click.option("--overwrite", is_flag=True, help="Replace a previous simulation in --out.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def simulate_command(
    descriptor_ref: str,
    n: int,
    snr_text: str,
    out: str,
    seed: int,
    synthesizer: str,
    batch_size: int,
    skip_auxiliary: tuple[str, ...],
    overwrite: bool,
    quiet: bool,
) -> None:
    """Simulate N stars of a mock Galaxy observed as DESCRIPTOR's survey archive files.

    Writes, under --out: the spectra in the survey's archive format (spectra/), truth.fits (true labels,
    S/N, radial velocity, positions, magnitudes), auxiliary.fits (inputs of the auxiliary providers), a
    derived descriptor <name>.yaml that reads them, and simulate.json. Ingest them with the command printed
    at the end.
    """
    import time

    from rich.console import Console
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
    from starlabel.simulate import simulate
    from starlabel.snr import parse_snr
    from starlabel.surveys import find_descriptor

    distribution = parse_snr(snr_text)
    plugins = get_plugins()
    resolved = load_descriptor(find_descriptor(descriptor_ref, plugins), plugins)
    columns = (
        TextColumn("simulate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("spectra · {task.fields[rate]}/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    started = time.perf_counter()
    with Progress(*columns, console=Console(file=sys.stderr), disable=quiet, transient=False) as bar:
        task = bar.add_task("simulate", total=n, rate="-")

        def update(done: int, total: int) -> None:
            elapsed = bar.tasks[task].elapsed or 0.0
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f}" if elapsed > 0 else "-")

        report = simulate(
            resolved,
            n,
            distribution,
            out,
            plugins=plugins,
            seed=seed,
            synthesizer=synthesizer,
            batch_size=batch_size,
            overwrite=overwrite,
            skip_auxiliary=skip_auxiliary,
            command=_command_line(descriptor_ref, n, snr_text, out, seed, synthesizer, batch_size, skip_auxiliary),
            progress=None if quiet else update,
        )
    seconds = time.perf_counter() - started
    click.echo(
        f"{report.out}: {report.rows} spectra in {len(report.spectra_files)} file(s) ({', '.join(report.patterns)}) "
        f"in {seconds:.1f} s; truth: {report.truth}"
        + (f"; auxiliary: {report.auxiliary}" if report.auxiliary else "")
        + f"; descriptor: {report.descriptor} (survey {report.name})"
    )
    for name, why in report.skipped_auxiliary.items():
        click.echo(f"  skipped auxiliary {name}: {why}", err=True)
    if report.unmodelled_labels:
        click.echo(
            f"  the synthesizer does not model {', '.join(report.unmodelled_labels)}: these labels are in the truth "
            "table but the spectra do not depend on them",
            err=True,
        )
    for note in report.notes:
        click.echo(f"  note: {note}", err=True)
    click.echo(f"next: {report.ingest_command()}")


def _command_line(
    descriptor_ref: str,
    n: int,
    snr_text: str,
    out: str,
    seed: int,
    synthesizer: str,
    batch_size: int,
    skip_auxiliary: tuple[str, ...],
) -> str:
    """The command with every option spelled out, for the provenance record."""
    words = ["starlabel", "simulate", descriptor_ref, "--n", str(n), "--snr", snr_text, "--out", out]
    words += ["--seed", str(seed), "--synthesizer", synthesizer, "--batch-size", str(batch_size)]
    for name in skip_auxiliary:
        words += ["--skip-auxiliary", name]
    return shlex.join(words)
