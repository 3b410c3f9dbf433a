"""The line list of the ``linelist`` synthesizer: its CSV format and reader.

Format
------
UTF-8 CSV; blank lines and lines starting with ``#`` are comments (sources go there). Header::

    element,ion,wavelength_nm,excitation_ev,loggf,alpha,source,note

``element``
    Chemical symbol of an element of :data:`starlabel_synth.atoms.ELEMENTS` (``Fe``, ``H``), or a molecule
    of :data:`starlabel_synth.atoms.MOLECULES` (``CO``, ``CN``, ``OH``).
``ion``
    1 for neutral atoms (and molecules), 2 for singly ionised atoms.
``wavelength_nm``
    Rest wavelength in VACUUM, nm.
``excitation_ev``
    Energy of the lower level, eV (≥ 0).
``loggf``
    log10 of the oscillator strength times the statistical weight of the lower level (effective value for
    molecules).
``alpha``
    1 for an alpha element (O, Mg, Si, S, Ca, Ti), else 0; must agree with
    :data:`starlabel_synth.atoms.ALPHA_ELEMENTS`.
``source``, ``note``
    Free text.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from starlabel.errors import DataFileError
from starlabel_synth.atoms import ALPHA_ELEMENTS, ELEMENTS, MOLECULES

COLUMNS: tuple[str, ...] = ("element", "ion", "wavelength_nm", "excitation_ev", "loggf", "alpha", "source", "note")
"""Header of a line-list CSV, in order."""

SHIPPED = "linelist.csv"
"""File name of the line list shipped in this package."""


@dataclass(frozen=True)
class LineList:
    """Transitions as parallel arrays, sorted by wavelength.

    Attributes
    ----------
    wavelength : numpy.ndarray
        (L,) vacuum rest wavelengths, nm.
    element : numpy.ndarray
        (L,) element symbols or molecule formulas (str).
    ion : numpy.ndarray
        (L,) ionisation stage, 1 or 2.
    excitation : numpy.ndarray
        (L,) lower-level energies, eV.
    loggf : numpy.ndarray
        (L,) log10(g f).
    note : tuple of str
        Notes, in the same order.
    source : str
        Where the list was read from, for messages.
    """

    wavelength: np.ndarray
    element: np.ndarray
    ion: np.ndarray
    excitation: np.ndarray
    loggf: np.ndarray
    note: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return int(self.wavelength.size)

    @property
    def elements(self) -> list[str]:
        """Chemical elements the list uses (molecules resolved to their atoms), sorted."""
        found: set[str] = set()
        for name in set(self.element.tolist()):
            found.update(MOLECULES[name].atoms if name in MOLECULES else (name,))
        return sorted(found)


def read_line_list(text: str, source: str) -> LineList:
    """Parse a line-list CSV (format in the module docstring).

    Parameters
    ----------
    text : str
        The file's contents.
    source : str
        How messages name the file.

    Returns
    -------
    LineList
        Sorted by wavelength.

    Raises
    ------
    starlabel.errors.DataFileError
        For a missing or wrong header, a row without 8 fields, an unknown element, an ion other than 1 or 2
        (1 only for H and molecules), a wavelength that is not a positive finite number, a negative or
        non-finite excitation energy, a non-finite loggf, an alpha flag other than 0/1 or one that disagrees
        with the element, or a list without rows; the message names ``source``, the line and what is allowed.
    """
    rows: list[tuple[str, int, float, float, float, str]] = []
    seen_header = False
    known = sorted(ELEMENTS) + sorted(MOLECULES)
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([raw]))]
        where = f"line {number}"
        if not seen_header:
            if fields != list(COLUMNS):
                raise DataFileError(source, f"{where}: header must be {','.join(COLUMNS)!r}, got {stripped!r}")
            seen_header = True
            continue
        if len(fields) != len(COLUMNS):
            raise DataFileError(
                source, f"{where}: expected {len(COLUMNS)} fields ({','.join(COLUMNS)}), got {len(fields)}"
            )
        element, ion_text, wave_text, chi_text, gf_text, alpha_text = fields[:6]
        if element not in ELEMENTS and element not in MOLECULES:
            raise DataFileError(source, f"{where}: element: unknown element {element!r}; allowed: {', '.join(known)}")
        ion = _number(ion_text, source, where, "ion")
        single = element == "H" or element in MOLECULES
        if ion not in ((1.0,) if single else (1.0, 2.0)):
            allowed = "1" if single else "1 or 2"
            raise DataFileError(source, f"{where}: ion: {ion_text!r} for {element}; allowed: {allowed}")
        wave = _number(wave_text, source, where, "wavelength_nm")
        if wave <= 0:
            raise DataFileError(source, f"{where}: wavelength_nm: {wave_text!r}; allowed: a positive number (nm)")
        chi = _number(chi_text, source, where, "excitation_ev")
        if chi < 0:
            raise DataFileError(source, f"{where}: excitation_ev: {chi_text!r}; allowed: a number >= 0 (eV)")
        loggf = _number(gf_text, source, where, "loggf")
        expected = "1" if element in ALPHA_ELEMENTS else "0"
        if alpha_text != expected:
            raise DataFileError(
                source,
                f"{where}: alpha: {alpha_text!r} for {element}; allowed: {expected} (alpha elements: "
                f"{', '.join(sorted(ALPHA_ELEMENTS))})",
            )
        rows.append((element, int(ion), wave, chi, loggf, fields[7]))
    if not seen_header:
        raise DataFileError(source, f"no header line; expected {','.join(COLUMNS)!r}")
    if not rows:
        raise DataFileError(source, "the line list has a header but no line")
    rows.sort(key=lambda row: row[2])
    return LineList(
        wavelength=np.array([r[2] for r in rows]),
        element=np.array([r[0] for r in rows]),
        ion=np.array([r[1] for r in rows], dtype=np.int64),
        excitation=np.array([r[3] for r in rows]),
        loggf=np.array([r[4] for r in rows]),
        note=tuple(r[5] for r in rows),
        source=source,
    )


def load_line_list(path: str | Path | None = None) -> LineList:
    """Read the shipped line list, or the CSV at ``path``.

    Raises
    ------
    starlabel.errors.DataFileError
        The file cannot be read or is malformed.
    """
    if path is None:
        source = f"starlabel_synth/{SHIPPED}"
        try:
            text = files("starlabel_synth").joinpath(SHIPPED).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise DataFileError(
                source, f"cannot read the shipped line list ({type(error).__name__}: {error})"
            ) from None
        return read_line_list(text, source)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataFileError(str(path), f"cannot read the line list ({type(error).__name__}: {error})") from None
    return read_line_list(text, str(path))


def _number(text: str, source: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataFileError(source, f"{where}: {column}: {text!r}; allowed: a finite number")
    return value
