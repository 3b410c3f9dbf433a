"""The ``starlabel`` command line.

:func:`main` builds a fresh plugin manager, lets plugins add sub-commands, and turns every
:class:`~starlabel.errors.StarlabelError` into a one-paragraph message and a non-zero exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from starlabel._version import __version__
from starlabel.errors import StarlabelError
from starlabel.plugins import Plugins, load_plugins


def make_cli() -> click.Group:
    """Return a new root command group with the core's sub-commands."""
    from starlabel.cli_degrade import degrade_command
    from starlabel.cli_demo import demo
    from starlabel.cli_design import design_command
    from starlabel.cli_evaluate import evaluate_command
    from starlabel.cli_explain import explain_command
    from starlabel.cli_ingest import ingest_command, store_group
    from starlabel.cli_learn import predict_command, train_command
    from starlabel.cli_plot import plot_group
    from starlabel.cli_plugins import plugins_command
    from starlabel.cli_simulate import simulate_command
    from starlabel.cli_survey import survey

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, "-V", "--version", prog_name="starlabel")
    def cli() -> None:
        """starlabel: stellar labels from survey spectra with convolutional networks."""

    cli.add_command(plugins_command)
    cli.add_command(survey)
    cli.add_command(simulate_command)
    cli.add_command(ingest_command)
    cli.add_command(degrade_command)
    cli.add_command(store_group)
    cli.add_command(train_command)
    cli.add_command(predict_command)
    cli.add_command(evaluate_command)
    cli.add_command(explain_command)
    cli.add_command(plot_group)
    cli.add_command(design_command)
    cli.add_command(demo)
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``starlabel`` console script and ``python -m starlabel``."""
    try:
        plugins = load_plugins()
        cli = make_cli()
        plugins.add_commands(cli)
        cli.main(args=list(argv) if argv is not None else None, prog_name="starlabel", obj=plugins)
    except StarlabelError as error:
        click.echo(f"starlabel: error: {error}", err=True)
        sys.exit(error.exit_code)


def get_plugins() -> Plugins:
    """The :class:`Plugins` of the running command (for sub-commands)."""
    return click.get_current_context().find_object(Plugins) or load_plugins()
