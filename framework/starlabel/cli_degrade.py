"""``starlabel degrade``: a store as another instrument (a target descriptor) would give it."""

from __future__ import annotations

import click


def _label_map(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for value in values:
        target, sep, stored = value.partition("=")
        target, stored = target.strip(), stored.strip()
        if not sep or not target or not stored:
            raise click.BadParameter(f"{value!r}; allowed: TARGET=STORED, e.g. --map teff=TEFF")
        if target in mapping:
            raise click.BadParameter(f"{value!r}: label {target!r} is mapped twice")
        mapping[target] = stored
    return mapping


@click.command("degrade")
@click.argument("source", metavar="STORE", type=click.Path(exists=True))
@click.option(
    "--to", "target_ref", required=True, metavar="DESCRIPTOR", help="Target survey descriptor (file or name)."
)
@click.option("--out", "out", required=True, type=click.Path(), help="Store folder to write (or resume).")
@click.option(
    "--snr",
    "snr_text",
    metavar="DIST",
    help="Target S/N per star: 30, 15:25, uniform:15,25, loguniform:10,100, normal:20,3, lognormal:3,0.5 "
    "(default: keep the noise of the degraded spectra).",
)
@click.option(
    "--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of the S/N draws and noise."
)
@click.option("--crop", is_flag=True, help="Restrict the target grid, arms and mask to the range the source covers.")
@click.option(
    "--map",
    "label_map",
    multiple=True,
    callback=_label_map,
    metavar="TARGET=STORED",
    help="Take the target label TARGET from the stored label STORED (repeatable).",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace a complete store (or an unfinished one of other inputs) at --out."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def degrade_command(
    source: str,
    target_ref: str,
    out: str,
    snr_text: str | None,
    seed: int,
    crop: bool,
    label_map: dict[str, str],
    overwrite: bool,
    quiet: bool,
) -> None:
    """Degrade the complete STORE to the --to DESCRIPTOR's instrument and write a new store at --out.

    Spectra are convolved to the target's resolving power, resampled onto its grid, given noise up to
    --snr, and normalised as ingest normalises; ids, auxiliary inputs and labels are copied. The new
    store trains with `starlabel train DESCRIPTOR --store OUT` (with --crop: with OUT.descriptor.yaml,
    written beside it). Re-running the same command after an interruption resumes it.
    """
    from starlabel.cli import get_plugins
    from starlabel.degrade import DegradeOptions, degrade
    from starlabel.descriptor import load_descriptor
    from starlabel.progress import Progress
    from starlabel.snr import parse_snr
    from starlabel.surveys import find_descriptor

    plugins = get_plugins()
    snr = parse_snr(snr_text) if snr_text is not None else None
    target = load_descriptor(find_descriptor(target_ref, plugins), plugins)
    options = DegradeOptions(snr=snr, seed=seed, crop=crop, label_map=label_map, overwrite=overwrite)
    with Progress(enabled=not quiet) as bar:
        task = -1

        def update(done: int, total: int) -> None:
            nonlocal task
            if task < 0:
                task = bar.task("degrade", total)
            bar.set(task, done)

        report = degrade(source, target, plugins, out, options, progress=update)
    noise = (
        f"S/N {report.snr} (seed {report.seed}), {report.already_noisier} already noisier"
        if report.snr
        else "noise kept"
    )
    click.echo(
        f"{report.store}: {report.rows} of {report.rows_in} spectra, R {report.resolution_source:g} → "
        f"{report.resolution_target:g}, {report.n_pixels} px; {noise}; median S/N {report.snr_median:.1f}"
        + (f"; {report.dropped} dropped (no good pixel)" if report.dropped else "")
    )
    if report.cropped:
        click.echo(
            f"  target grid cropped to the source's coverage ({report.covered_fraction:.1%} of it); ingest target "
            f"spectra and train with {report.descriptor_file}"
        )
