"""``starlabel plugins``: what is installed."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from starlabel.plugins import CORE_PLUGIN


@click.command("plugins")
@click.option(
    "--all", "show_all", is_flag=True, help="Also the core's own plugin, blocked plugins and component options."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_command(show_all: bool, as_json: bool) -> None:
    """List plugins: version, file, hooks implemented and components by kind with status."""
    from starlabel.cli import get_plugins

    plugins = get_plugins()
    infos = [i for i in plugins.infos.values() if show_all or (i.name != CORE_PLUGIN and not i.blocked)]
    if show_all:
        for info in infos:
            for kind, comps in info.components.items():
                for comp in comps:
                    cls = plugins.registry(kind).get(comp["name"])
                    comp["options"] = ", ".join(cls.Options.model_fields) or "-"
    if as_json:
        click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="starlabel plugins", show_lines=True)
    for column in ("plugin", "version", "file", "hooks", "components"):
        table.add_column(column, overflow="fold")
    for info in infos:
        comps = "\n".join(
            f"{kind}: {c['name']} [{c['status']}]" + (f" (options: {c['options']})" if "options" in c else "")
            for kind, items in info.components.items()
            for c in items
        )
        name = info.name + (" (blocked)" if info.blocked else "") + ("" if info.builtin else " (third-party)")
        table.add_row(
            escape(name), f"{info.distribution} {info.version}", info.file, "\n".join(info.hooks), escape(comps or "-")
        )
    Console(width=160).print(table)
