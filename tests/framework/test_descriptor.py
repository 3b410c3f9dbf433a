from __future__ import annotations

from pathlib import Path

import pytest

from starlabel.descriptor import load_descriptor
from starlabel.errors import DescriptorError, DescriptorNotFoundError
from starlabel.plugins import Plugins
from starlabel.surveys import find_descriptor


def write(tmp_path: Path, text: str, name: str = "survey.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(tmp_path: Path, text: str, plugins: Plugins) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(DescriptorError) as info:
        load_descriptor(path, plugins)
    prefix = f"{path}:"
    lines = str(info.value).splitlines()
    assert all(line.startswith(prefix) for line in lines), lines
    return [line[len(prefix) :] for line in lines]


def test_good_descriptor_resolves_with_defaults(
    tmp_path: Path, toy_plugins: Plugins, good_descriptor_text: str
) -> None:
    resolved = load_descriptor(write(tmp_path, good_descriptor_text), toy_plugins)
    out = resolved.resolved()
    assert out["instrument"]["options"] == {"setup": "HR10"}
    assert out["auxiliary"][0] == {"provider": "toy_photometry", "name": "toy_photometry", "options": {}}
    assert out["auxiliary"][1]["options"] == {"zero_point": "lindegren2021", "min_over_error": 0.0}
    assert out["labels"]["cuts"] == {"snr_min": 70.0}
    assert out["network"]["options"] == {"width": 32}
    assert out["training"]["split"] == {"train": 0.8, "valid": 0.1, "test": 0.1}
    assert out["data"]["spectra"] == ["rvs/*.csv.gz"]
    grid = resolved.model.grid
    assert grid.n_pixels == 2401
    wave = grid.wavelength()
    assert wave[0] == 846.0 and abs(wave[-1] - 870.0) < 1e-9 and abs(wave[1234] - 858.34) < 1e-9


def test_hash_tracks_inputs_not_prose_or_paths(tmp_path: Path, toy_plugins: Plugins, good_descriptor_text: str) -> None:
    base = load_descriptor(write(tmp_path, good_descriptor_text, "a.yaml"), toy_plugins).hash()
    same = good_descriptor_text.replace("name: toy_survey", "name: toy_survey\ndescription: words").replace(
        "rvs/*.csv.gz", "elsewhere/*.csv.gz"
    )
    assert load_descriptor(write(tmp_path, same, "b.yaml"), toy_plugins).hash() == base
    # an explicit default is the same descriptor
    explicit = good_descriptor_text.replace(
        "{zero_point: lindegren2021}", "{zero_point: lindegren2021, min_over_error: 0}"
    )
    assert load_descriptor(write(tmp_path, explicit, "c.yaml"), toy_plugins).hash() == base
    changed = good_descriptor_text.replace("width: 32", "width: 64")
    assert load_descriptor(write(tmp_path, changed, "d.yaml"), toy_plugins).hash() != base


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path, toy_plugins: Plugins, good_descriptor_text: str) -> None:
    text = good_descriptor_text.replace("columns: [teff, logg, m_h, alpha_m]", "columns: [teff, logg: m_h")
    assert errors_of(tmp_path, text, toy_plugins) == [
        "17:7: YAML syntax error: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence started at line 16, column 12)"
    ]


def test_unknown_keys_suggest_and_list(tmp_path: Path, toy_plugins: Plugins, good_descriptor_text: str) -> None:
    text = good_descriptor_text.replace("auxiliary:", "auxilliary:").replace("medium: vacuum", "medum: vacuum")
    assert errors_of(tmp_path, text, toy_plugins) == [
        "7: grid.medum: unknown key 'medum'. Did you mean medium? Allowed keys: start, stop, step, spacing, file, column, unit, medium",
        "10: auxilliary: unknown key 'auxilliary'. Did you mean auxiliary? Allowed keys: schema_version, name, "
        "description, instrument, grid, mask, normalise, rest_frame, auxiliary, labels, network, training, ingest, data",
    ]


def test_wrong_type(tmp_path: Path, toy_plugins: Plugins, good_descriptor_text: str) -> None:
    text = good_descriptor_text.replace("resolution: 11500", "resolution: high")
    assert errors_of(tmp_path, text, toy_plugins) == [
        "5: instrument.resolution: Input should be a valid number, unable to parse string as a number; got 'high'"
    ]


def test_unknown_component_name(tmp_path: Path, toy_plugins: Plugins, good_descriptor_text: str) -> None:
    text = good_descriptor_text.replace("provider: toy_parallax", "provider: toy_paralax")
    assert errors_of(tmp_path, text, toy_plugins) == [
        "12: auxiliary[1].provider: unknown auxiliary provider 'toy_paralax'. Did you mean toy_parallax? "
        "Available: toy_parallax, toy_photometry"
    ]


def test_component_options_validated_by_the_component(
    tmp_path: Path, toy_plugins: Plugins, good_descriptor_text: str
) -> None:
    text = (
        good_descriptor_text.replace("{zero_point: lindegren2021}", "{zero_point: lindegren, min_over_eror: 5}")
        .replace("{setup: HR10}", "{setup: HR99}")
        .replace("{snr_min: 70}", "{snr_mn: 70}")
        .replace("width: 32", "width: 0")
    )
    assert errors_of(tmp_path, text, toy_plugins) == [
        "6: instrument.options.setup: Input should be 'HR10', 'HR15N' or 'HR21'; got 'HR99'",
        "13: auxiliary[1].options.zero_point: Input should be 'none' or 'lindegren2021'; got 'lindegren'",
        "13: auxiliary[1].options.min_over_eror: unknown key 'min_over_eror'. Did you mean min_over_error? "
        "Allowed keys: zero_point, min_over_error",
        "17: labels.cuts.snr_mn: unknown key 'snr_mn'. Did you mean snr_min? Allowed keys: snr_min",
        "18: network.options.width: Input should be greater than or equal to 1; got 0",
    ]


def test_newer_schema_version_is_refused(tmp_path: Path, toy_plugins: Plugins, good_descriptor_text: str) -> None:
    text = good_descriptor_text.replace("schema_version: 1", "schema_version: 2")
    assert errors_of(tmp_path, text, toy_plugins) == [
        "1: schema_version: descriptor schema_version 2 is newer than this starlabel supports (1); "
        "upgrade starlabel (pip install -U starlabel) or write schema_version: 1"
    ]


def test_missing_required_and_duplicate_keys(tmp_path: Path, toy_plugins: Plugins, good_descriptor_text: str) -> None:
    text = good_descriptor_text.replace("  reader: toy_reader\n", "").replace(
        "name: toy_survey", "name: toy_survey\nname: again"
    )
    assert errors_of(tmp_path, text, toy_plugins) == [
        "3: name: key appears twice in this mapping",
        "4: instrument.reader: required key is missing",
    ]


def test_label_columns_grid_and_mask_checks(tmp_path: Path, toy_plugins: Plugins, good_descriptor_text: str) -> None:
    text = good_descriptor_text.replace("[teff, logg, m_h, alpha_m]", "[teff, log_g]").replace(
        "{start: 846.0, stop: 846.5, why: edge noise}", "{start: 900, stop: 910}"
    )
    assert errors_of(tmp_path, text, toy_plugins) == [
        "16: labels.columns[1]: label source 'toy_labels' has no label 'log_g'. Did you mean logg? "
        "Available: teff, logg, m_h, alpha_m",
        "9: mask[0]: region 900.0–910.0 lies outside the grid 846.0–870.0 nm",
    ]
    bad_grid = good_descriptor_text.replace("step: 0.01, unit: nm", "step: 0.07, unit: nmm")
    assert errors_of(tmp_path, bad_grid, toy_plugins) == [
        "7: grid.unit: unknown wavelength unit 'nmm'; allowed: an astropy length unit such as nm, Angstrom, um",
    ]
    bad_steps = good_descriptor_text.replace("step: 0.01", "step: 0.07")
    assert errors_of(tmp_path, bad_steps, toy_plugins) == [
        "7: grid: stop - start spans 342.857 steps of 0.07; it must be a whole number (adjust stop to 870.01)"
    ]


@pytest.mark.parametrize(("text", "got"), [("", "an empty file"), ("- a\n- b\n", "a list")])
def test_document_must_be_a_mapping(tmp_path: Path, toy_plugins: Plugins, text: str, got: str) -> None:
    assert errors_of(tmp_path, text, toy_plugins)[0].endswith(f"a descriptor must be a mapping of keys, got {got}")


def test_find_descriptor_by_path_name_and_search_path(
    tmp_path: Path, toy_plugins: Plugins, good_descriptor_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    path = write(folder, good_descriptor_text, "whatever.yaml")
    assert find_descriptor(path, toy_plugins) == path
    environ = {"STARLABEL_SURVEY_PATH": str(folder)}
    assert find_descriptor("toy_survey", toy_plugins, environ) == path  # by declared name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "surveys").mkdir()
    local = write(tmp_path / "surveys", good_descriptor_text.replace("toy_survey", "local_survey"), "local.yaml")
    assert find_descriptor("local_survey", toy_plugins, {}) == local
    with pytest.raises(DescriptorNotFoundError) as info:
        find_descriptor("local_survy", toy_plugins, environ)
    assert str(info.value) == (
        "no survey descriptor 'local_survy': not a file, and not a known survey name. Did you mean local_survey? "
        "Known surveys: local_survey, toy_survey"
    )
