"""``starlabel survey``: check, show, list and describe survey descriptors."""

from __future__ import annotations

import json

import click
import yaml

from starlabel.errors import DescriptorError, DescriptorNotFoundError


@click.group()
def survey() -> None:
    """Validate and inspect survey descriptors."""


@survey.command("check")
@click.argument("files", nargs=-1, required=True)
def check(files: tuple[str, ...]) -> None:
    """Validate descriptor FILES (paths or survey names); exit 2 if any is invalid."""
    from starlabel.cli import get_plugins
    from starlabel.descriptor import load_descriptor
    from starlabel.surveys import find_descriptor

    plugins = get_plugins()
    failed = 0
    for ref in files:
        try:
            resolved = load_descriptor(find_descriptor(ref, plugins), plugins)
        except (DescriptorError, DescriptorNotFoundError) as error:
            failed += 1
            click.echo(f"FAIL {ref}\n{error}", err=True)
            continue
        click.echo(f"ok   {ref} (survey {resolved.name}, hash {resolved.hash()[:12]})")
    if failed:
        click.echo(f"{failed} of {len(files)} descriptor(s) invalid", err=True)
        raise SystemExit(2)


@survey.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
def show(ref: str, as_json: bool) -> None:
    """Print the resolved descriptor REF (a path or a survey name), with every default filled in."""
    from starlabel.cli import get_plugins
    from starlabel.descriptor import load_descriptor
    from starlabel.surveys import find_descriptor

    plugins = get_plugins()
    path = find_descriptor(ref, plugins)
    resolved = load_descriptor(path, plugins)
    if as_json:
        click.echo(
            json.dumps({"path": str(path), "hash": resolved.hash(), "descriptor": resolved.resolved()}, indent=2)
        )
        return
    click.echo(f"# {path}\n# hash {resolved.hash()}")
    click.echo(yaml.safe_dump(resolved.resolved(), sort_keys=False, allow_unicode=True), nl=False)


@survey.command("list")
def list_surveys() -> None:
    """List the surveys that can be named instead of a path, and where each comes from."""
    from starlabel.cli import get_plugins
    from starlabel.surveys import known_surveys

    for name, known in sorted(known_surveys(get_plugins()).items()):
        click.echo(f"{name}\t{known.path}\t({known.origin})")


@survey.command("schema")
def schema() -> None:
    """Print the JSON schema of descriptors, including every installed component's options."""
    from starlabel.cli import get_plugins
    from starlabel.schema import descriptor_schema

    click.echo(json.dumps(descriptor_schema(get_plugins()), indent=2))
