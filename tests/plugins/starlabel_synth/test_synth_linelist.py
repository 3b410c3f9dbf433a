"""The shipped line list of ``starlabel_synth``: it parses, covers 370-1700 nm, holds the key lines; bad rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from starlabel.errors import DataFileError
from starlabel_synth.atoms import ALPHA_ELEMENTS, ELEMENTS, MOLECULES
from starlabel_synth.linelist import COLUMNS, LineList, load_line_list, read_line_list

HEADER = ",".join(COLUMNS)


@pytest.fixture(scope="module")
def lines() -> LineList:
    return load_line_list()


def has_line(lines: LineList, element: str, ion: int, vacuum_nm: float, tolerance: float = 0.01) -> bool:
    near = np.abs(lines.wavelength - vacuum_nm) <= tolerance
    return bool(np.any(near & (lines.element == element) & (lines.ion == ion)))


def test_shipped_list_parses_sorted_inside_370_1700(lines: LineList) -> None:
    assert 200 <= len(lines) <= 400
    assert lines.wavelength.min() >= 370.0 and lines.wavelength.max() <= 1700.0
    assert np.all(np.diff(lines.wavelength) >= 0)
    assert set(lines.ion.tolist()) == {1, 2}
    assert set(lines.element.tolist()) <= set(ELEMENTS) | set(MOLECULES)
    assert {"CO", "CN", "OH"} <= set(lines.element.tolist())
    assert np.all(np.isfinite(lines.loggf)) and np.all(lines.excitation >= 0)


@pytest.mark.parametrize(
    ("element", "ion", "vacuum_nm", "what"),
    [
        ("Ca", 2, 850.035, "Ca II triplet 8498 (air)"),
        ("Ca", 2, 854.444, "Ca II triplet 8542 (air)"),
        ("Ca", 2, 866.452, "Ca II triplet 8662 (air)"),
        ("H", 1, 656.461, "H alpha"),
        ("H", 1, 486.269, "H beta"),
        ("H", 1, 397.119, "H epsilon"),
        ("Li", 1, 670.961, "Li I 6708"),
        ("Mg", 1, 516.876, "Mg b4"),
        ("Mg", 1, 517.412, "Mg b2"),
        ("Mg", 1, 518.504, "Mg b1"),
        ("Na", 1, 589.158, "Na D2"),
        ("Ca", 2, 393.477, "Ca II K"),
        ("Al", 1, 1672.352, "Al I (APOGEE)"),
        ("K", 1, 1516.72, "K I (APOGEE)"),
    ],
)
def test_required_lines_present(lines: LineList, element: str, ion: int, vacuum_nm: float, what: str) -> None:
    assert has_line(lines, element, ion, vacuum_nm), what


@pytest.mark.parametrize(
    ("low", "high", "species"),
    [
        (846.0, 870.0, {"Ca", "Fe", "Si", "Ti", "Mg"}),
        (647.0, 679.0, {"Fe", "Ca", "Ni", "Ti", "Li", "H"}),
        (480.0, 680.0, {"Fe", "Mg", "Ti", "Ca", "Ni"}),
        (1514.0, 1696.0, {"Fe", "Mg", "Si", "Al", "Ca", "Ti", "K", "CN", "CO", "OH"}),
    ],
)
def test_each_survey_range_has_its_species(lines: LineList, low: float, high: float, species: set[str]) -> None:
    inside = (lines.wavelength >= low) & (lines.wavelength <= high)
    assert species <= set(lines.element[inside].tolist())


def test_fe_has_both_ionisation_stages_in_the_optical(lines: LineList) -> None:
    optical = (lines.wavelength > 480) & (lines.wavelength < 680) & (lines.element == "Fe")
    assert {1, 2} == set(lines.ion[optical].tolist())


def test_elements_resolve_molecules(lines: LineList) -> None:
    assert {"C", "N", "O", "H", "Fe", "Mg"} <= set(lines.elements)


def good_row(**change: str) -> str:
    row = {
        "element": "Fe",
        "ion": "1",
        "wavelength_nm": "600.0",
        "excitation_ev": "2.2",
        "loggf": "-1.5",
        "alpha": "0",
        "source": "test",
        "note": "",
    }
    row.update(change)
    return ",".join(row[c] for c in COLUMNS)


def test_read_round_trip_of_a_small_list() -> None:
    text = f"# comment\n{HEADER}\n{good_row()}\n\n{good_row(element='Mg', wavelength_nm='500.0', alpha='1')}\n"
    parsed = read_line_list(text, "mine.csv")
    assert parsed.wavelength.tolist() == [500.0, 600.0]
    assert parsed.element.tolist() == ["Mg", "Fe"]
    assert parsed.loggf.tolist() == [-1.5, -1.5]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (good_row(element="Xx"), "mine.csv: line 2: element: unknown element 'Xx'; allowed: "),
        (good_row(ion="3"), "mine.csv: line 2: ion: '3' for Fe; allowed: 1 or 2"),
        (good_row(element="H", ion="2"), "mine.csv: line 2: ion: '2' for H; allowed: 1"),
        (good_row(wavelength_nm="-5"), "mine.csv: line 2: wavelength_nm: '-5'; allowed: a positive number (nm)"),
        (good_row(wavelength_nm="nan"), "mine.csv: line 2: wavelength_nm: 'nan'; allowed: a finite number"),
        (good_row(excitation_ev="-1"), "mine.csv: line 2: excitation_ev: '-1'; allowed: a number >= 0 (eV)"),
        (good_row(loggf="x"), "mine.csv: line 2: loggf: 'x'; allowed: a finite number"),
        (good_row(element="Mg", alpha="0"), "mine.csv: line 2: alpha: '0' for Mg; allowed: 1 (alpha elements: "),
        ("Fe,1,600.0", "mine.csv: line 2: expected 8 fields"),
    ],
)
def test_bad_rows_are_refused_naming_file_line_and_allowed(row: str, message: str) -> None:
    with pytest.raises(DataFileError) as info:
        read_line_list(f"{HEADER}\n{row}\n", "mine.csv")
    assert str(info.value).startswith(message)


def test_bad_header_and_empty_lists_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"mine.csv: line 1: header must be 'element,ion,"):
        read_line_list("wavelength,unit\n", "mine.csv")
    with pytest.raises(DataFileError, match="has a header but no line"):
        read_line_list(f"{HEADER}\n", "mine.csv")
    with pytest.raises(DataFileError, match="cannot read the line list"):
        load_line_list(tmp_path / "missing.csv")


def test_alpha_set_is_the_documented_one() -> None:
    assert ALPHA_ELEMENTS == {"O", "Mg", "Si", "S", "Ca", "Ti"}
