"""The command line as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from starlabel import __version__

REPO = Path(__file__).resolve().parents[2]


def starlabel(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("starlabel", path=str(Path(sys.executable).parent)) or "starlabel"
    base = {k: v for k, v in os.environ.items() if not k.startswith("STARLABEL_")}
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd, env=base | (env or {}), timeout=120)


def test_version() -> None:
    result = starlabel("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"starlabel, version {__version__}"


def test_plugins_json_lists_builtins_and_third_party() -> None:
    result = starlabel("plugins", "--json")
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert {"starlabel_tables", "starlabel_gaia", "example"} <= set(listed)
    assert "starlabel.defaults" not in listed  # the core's own plugin shows with --all only
    example = listed["example"]
    assert example["builtin"] is False
    assert (example["distribution"], example["version"]) == ("starlabel-example", "0.3.1")
    assert example["hooks"] == ["register_instrument_readers"]
    assert example["components"]["reader"][0]["name"] == "example_ascii"
    assert example["file"].endswith("starlabel_example/plugin.py")
    gaia = listed["starlabel_gaia"]
    assert "locate_survey_data" in gaia["hooks"]
    assert {c["name"] for c in gaia["components"]["reader"]} >= {"gaia_xp_sampled"}
    everything = json.loads(starlabel("plugins", "--all", "--json").stdout)
    core = next(p for p in everything if p["name"] == "starlabel.defaults")
    assert core["hooks"] == ["locate_survey_data", "register_normalisers"]
    assert core["components"]["normaliser"][0]["name"] == "none"
    tables = next(p for p in everything if p["name"] == "starlabel_tables")
    assert tables["components"]["auxiliary"][0]["options"] == "id_column, columns, hdu"


def test_plugins_table_shows_status() -> None:
    result = starlabel("plugins")
    assert result.returncode == 0, result.stderr
    assert "example (third-party)" in result.stdout
    assert "reader: example_ascii [experimental]" in result.stdout


def test_survey_check_shipped_descriptors() -> None:
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "surveys").glob("*.yaml"))
    assert files, "surveys/ ships no descriptor"
    result = starlabel("survey", "check", *files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok   ") == len(files)


def test_survey_check_reports_each_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "schema_version: 1\nname: bad\ninstrument: {reader: gaia_xp_sampld}\ngrid: {start: 1, stop: 2, step: 1}\n"
    )
    result = starlabel("survey", "check", "surveys/gaia_xp_apogee_dr17.yaml", str(bad))
    assert result.returncode == 2
    assert result.stdout.startswith("ok   surveys/gaia_xp_apogee_dr17.yaml")
    assert (
        f"{bad}:3: instrument.reader: unknown instrument reader 'gaia_xp_sampld'. Did you mean gaia_xp_sampled?"
    ) in result.stderr
    assert "1 of 2 descriptor(s) invalid" in result.stderr


def test_survey_show_resolves_by_name_with_defaults(tmp_path: Path) -> None:
    result = starlabel("survey", "show", "gaia_xp_apogee_dr17", "--json", cwd=tmp_path)  # found via the plugin
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["path"].endswith("starlabel_gaia/surveys/gaia_xp_apogee_dr17.yaml")
    descriptor = shown["descriptor"]
    assert descriptor["grid"] == {
        "start": 336.0,
        "stop": 1020.0,
        "step": 2.0,
        "spacing": "linear",
        "file": None,
        "column": 0,
        "unit": "nm",
        "medium": "vacuum",
    }
    assert descriptor["training"]["batch_size"] == 128 and descriptor["training"]["mc_samples"] == 16  # a default filled in
    assert descriptor["labels"]["cuts"]["max_error"] == {}
    yaml_out = starlabel("survey", "show", "surveys/gaia_xp_apogee_dr17.yaml")
    assert f"# hash {shown['hash']}" in yaml_out.stdout


def test_survey_show_unknown_name() -> None:
    result = starlabel("survey", "show", "gaia_xp_apogee_dr71")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "starlabel: error: no survey descriptor 'gaia_xp_apogee_dr71': not a file, and not a known survey name. "
        "Did you mean gaia_xp_apogee_dr17?"
    )


def test_survey_schema_includes_component_options() -> None:
    result = starlabel("survey", "schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    defs = schema["$defs"]
    assert defs["Descriptor"]["properties"]["schema_version"]["maximum"] == 1
    readers = defs["InstrumentSection"]["properties"]["reader"]["enum"]
    assert {"gaia_xp_sampled", "example_ascii"} <= set(readers)
    rule = next(r for r in defs["LabelsSection"]["allOf"] if r["if"]["properties"]["source"]["const"] == "table_labels")
    options_def = defs[rule["then"]["properties"]["options"]["$ref"].rsplit("/", 1)[-1]]
    assert set(options_def["properties"]) == {"id_column", "columns", "errors", "units", "hdu"}
    cuts_def = defs[rule["then"]["properties"]["cuts"]["$ref"].rsplit("/", 1)[-1]]
    assert set(cuts_def["properties"]) == {"ranges", "max_error"}


def test_schema_validates_shipped_descriptor_with_jsonschema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    schema = json.loads(starlabel("survey", "schema").stdout)
    document = yaml.safe_load((REPO / "surveys" / "gaia_xp_apogee_dr17.yaml").read_text())
    jsonschema.validate(document, schema)
    document["labels"]["options"]["colums"] = document["labels"]["options"].pop("columns")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_survey_list() -> None:
    result = starlabel("survey", "list")
    assert result.returncode == 0
    names = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert "gaia_xp_apogee_dr17" in names and names == sorted(names)
