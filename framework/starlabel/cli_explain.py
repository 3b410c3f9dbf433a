"""``starlabel explain``: saliency of a bundle's labels with respect to its input pixels and auxiliary inputs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from starlabel.cli_learn import _device


class _IdsCommand(click.Command):
    """A command whose ``--ids`` takes every following value up to the next option: ``--ids 1 2 3``.

    ``--ids`` may also be repeated, and each value may hold several ids separated by commas.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _spread_ids(args))


def _spread_ids(args: Sequence[str]) -> list[str]:
    """``--ids a b,c --store S`` → ``--ids a --ids b --ids c --store S``.

    Values are taken up to the next token that starts with ``-`` (an option) or ``--``; ``--ids=a,b`` takes
    its own value only.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            out += args[i:]
            break
        if token == "--ids" or token.startswith("--ids="):
            i += 1
            if "=" in token:  # --ids=a,b: one value, as usual
                values = [token.split("=", 1)[1]]
            else:
                values = []
                while i < len(args) and not (args[i].startswith("-") and len(args[i]) > 1):
                    values.append(args[i])
                    i += 1
            ids = [v for value in values for v in re.split(r"[,\s]+", value) if v]
            if not ids:
                out.append("--ids")  # let click report the missing value
            for value in ids:
                out += ["--ids", value]
            continue
        out.append(token)
        i += 1
    return out


@click.command("explain", cls=_IdsCommand)
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--store", "store_path", required=True, type=click.Path(exists=True), help="Store to take the stars from."
)
@click.option(
    "--ids",
    "ids",
    multiple=True,
    metavar="ID ...",
    help="Explain these stars (source ids; space- or comma-separated, put BUNDLE before it).",
)
@click.option(
    "--max-stars",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Without --ids: the first N kept rows of the store (or of --split).",
)
@click.option(
    "--split", type=click.Choice(["train", "valid", "test"]), help="Take the stars from this split of the bundle's."
)
@click.option("--out", "out", type=click.Path(file_okay=False), help="Folder to write to [default: ./explain_BUNDLE].")
@click.option("--device", default="cpu", show_default=True, callback=lambda c, p, v: _device(v), help="cpu or cuda.")
@click.option("--no-figures", is_flag=True, help="Write the arrays and the JSON summary only.")
def explain_command(
    bundle: str,
    store_path: str,
    ids: tuple[str, ...],
    max_stars: int,
    split: str | None,
    out: str | None,
    device: str,
    no_figures: bool,
) -> None:
    """Gradients of each label of BUNDLE with respect to each input flux pixel and auxiliary input.

    Averaged over the stars and the ensemble members (dropout off), written as saliency.npz and
    saliency.json, and plotted against wavelength (saliency_<label>.png) with the instrument's known
    spectral lines marked.
    """
    from starlabel.cli import get_plugins
    from starlabel.explain import explain

    explanation = explain(
        bundle, store_path, get_plugins(), ids=list(ids) or None, max_stars=max_stars, split=split, device=device
    )
    folder = Path(out) if out else Path.cwd() / f"explain_{Path(bundle).resolve().name}"
    written = explanation.save(folder, figures=not no_figures)
    click.echo(
        f"{folder}: saliency of {len(explanation.labels)} label(s) over {len(explanation.source_ids)} star(s) and "
        f"{explanation.members} member(s); {len(explanation.lines)} known line(s) marked"
    )
    unit = explanation.unit
    for name in explanation.labels:
        s = explanation.saliency[name]
        if explanation.pixels.size:
            top = ", ".join(_describe(explanation, int(i)) for i in s.top_pixels(3))
            click.echo(f"  {name:12s} most salient at {top} {unit}")
        if explanation.aux_columns:
            best = int(np.argmax(s.aux_abs_grad))
            click.echo(
                f"  {'':12s} auxiliary: {explanation.aux_columns[best]} (mean |grad| {s.aux_abs_grad[best]:.3g})"
            )
    for note in explanation.notes:
        click.echo(f"  note: {note}", err=True)
    click.echo("  wrote " + ", ".join(p.name for p in written))


def _describe(explanation: Any, index: int) -> str:
    """A pixel's wavelength, with the nearest marked line when it lies within two pixels."""
    w = float(explanation.wavelength[index])
    step = float(np.median(np.abs(np.diff(np.sort(explanation.wavelength))))) if explanation.wavelength.size > 1 else 0
    near = [m for m in explanation.lines if abs(m.wavelength - w) <= 2 * step]
    if near:
        best = min(near, key=lambda m: abs(m.wavelength - w))
        return f"{w:.6g} ({best.species})"
    return f"{w:.6g}"
