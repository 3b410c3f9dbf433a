"""Known spectral lines: the line lists instrument readers ship, and their CSV format.

A reader names a CSV resource of its own package in
:attr:`~starlabel.components.InstrumentReader.line_list`;
:meth:`~starlabel.components.InstrumentReader.spectral_lines` reads it with :func:`read_line_list`.
``starlabel explain`` marks these lines on its saliency plots.

Format
------
UTF-8 CSV with the header ``wavelength,unit,medium,species,note`` and one line per row; blank lines and
lines whose first non-blank character is ``#`` are comments (put the source of the wavelengths there)::

    # Ca II: NIST ASD
    wavelength,unit,medium,species,note
    8498.02,Angstrom,air,Ca II,Ca triplet
    8542.09,Angstrom,air,Ca II,Ca triplet

``wavelength``
    Positive, finite rest wavelength.
``unit``
    Any astropy length unit (``nm``, ``Angstrom``, ``um``...).
``medium``
    ``air`` or ``vacuum``: the medium the wavelength is given in (optical lists are usually in air,
    APOGEE's H-band spectra are in vacuum); lines are converted to a grid's frame with
    :meth:`SpectralLine.in_frame`.
``species``
    Atom and ionisation stage (``Fe I``, ``Ca II``) or molecule (``CO``); never empty.
``note``
    Free text (``Halpha``, ``molecular band head``); may be empty.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass

from starlabel.errors import StarlabelError
from starlabel.wavelengths import GridError, _length_unit, convert_wavelength

COLUMNS: tuple[str, ...] = ("wavelength", "unit", "medium", "species", "note")
"""Header of a line-list CSV, in order."""

MEDIA: tuple[str, ...] = ("air", "vacuum")


class LineListError(StarlabelError):
    """A line list is missing or malformed; names the resource, the line and what is allowed."""

    exit_code = 2


@dataclass(frozen=True)
class SpectralLine:
    """One known spectral line (or molecular band head) at its rest wavelength.

    Attributes
    ----------
    wavelength : float
        Rest wavelength in ``unit`` and ``medium``.
    unit : str
        Astropy length unit of ``wavelength``.
    medium : {"air", "vacuum"}
        Medium ``wavelength`` is given in.
    species : str
        Atom and ionisation stage (``"Fe I"``) or molecule (``"CO"``).
    note : str
        Free text, e.g. ``"Halpha"``; may be empty.
    """

    wavelength: float
    unit: str
    medium: str
    species: str
    note: str = ""

    def in_frame(self, unit: str, medium: str) -> float:
        """The line's wavelength in another unit and medium (e.g. a grid's).

        Raises
        ------
        starlabel.wavelengths.GridError
            For an unknown unit or medium.
        """
        return float(convert_wavelength(self.wavelength, self.unit, self.medium, unit, medium))


def read_line_list(text: str, source: str) -> list[SpectralLine]:
    """Parse a line-list CSV (format in the module docstring).

    Parameters
    ----------
    text : str
        The file's contents.
    source : str
        How messages name the file, e.g. ``"starlabel_gaia/lines_rvs.csv"``.

    Returns
    -------
    list of SpectralLine
        In file order.

    Raises
    ------
    LineListError
        For a missing or wrong header, a row without 5 fields, a wavelength that is not a positive finite
        number, a unit that is not an astropy length unit, a medium other than air or vacuum, or an empty
        species; the message names ``source``, the line number and what is allowed.
    """
    header = ",".join(COLUMNS)
    lines: list[SpectralLine] = []
    seen_header = False
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([raw], skipinitialspace=True))]
        where = f"{source}: line {number}"
        if not seen_header:
            if fields != list(COLUMNS):
                raise LineListError(f"{where}: expected the header {header!r}, got {stripped!r}")
            seen_header = True
            continue
        if len(fields) != len(COLUMNS):
            raise LineListError(f"{where}: {len(fields)} fields, expected {len(COLUMNS)} ({header})")
        value, unit, medium, species, note = fields
        try:
            wavelength = float(value)
        except ValueError:
            wavelength = math.nan
        if not (math.isfinite(wavelength) and wavelength > 0):
            raise LineListError(f"{where}: wavelength {value!r} is not a positive finite number")
        try:
            _length_unit(unit)
        except GridError as error:
            raise LineListError(f"{where}: {error}") from None
        if medium not in MEDIA:
            raise LineListError(f"{where}: unknown medium {medium!r}; allowed: {', '.join(MEDIA)}")
        if not species:
            raise LineListError(f"{where}: empty species; name the atom and ion (e.g. 'Fe I') or the molecule")
        lines.append(SpectralLine(wavelength, unit, medium, species, note))
    if not seen_header:
        raise LineListError(f"{source}: no header; the first row that is not a comment must be {header!r}")
    return lines
