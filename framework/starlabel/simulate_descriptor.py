"""The descriptor a simulation writes beside its files, so that ``starlabel ingest`` reads them.

It is the simulated survey's descriptor with:

- ``name: <name>_simulated`` and a description saying where it came from;
- ``labels`` from the truth table through ``table_labels`` (the descriptor's label names, nominal
  errors, units; no cuts);
- ``data``: ``root: .`` (the descriptor's own folder), ``spectra`` globs matching the written files,
  ``labels: truth.fits`` and ``auxiliary.<entry> = auxiliary.fits`` for every auxiliary entry kept;
  auxiliary entries the run skipped are removed;
- an explicit grid (``spacing: explicit``) whose file lies beside the original descriptor is copied
  beside the new one; when it cannot be found there, the simulated native wavelengths, converted to the
  grid's unit and medium, are written to ``simulated_grid.txt`` and the grid points to it (so the
  store's grid is then the instrument's native sampling);
- a ``rest_frame`` read from a table is pointed at the truth table's ``vrad`` column.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from starlabel.errors import DescriptorError, SimulationError

if TYPE_CHECKING:
    from starlabel.containers import NativeGrid
    from starlabel.descriptor import ResolvedDescriptor
    from starlabel.plugins import Plugins

TRUTH_FILE = "truth.fits"
AUXILIARY_FILE = "auxiliary.fits"
GRID_FILE = "simulated_grid.txt"
SUFFIX = "_simulated"


def spectra_patterns(files: Sequence[Path], out: Path) -> list[str]:
    """Glob patterns, relative to ``out``, that match ``files`` (one per folder).

    Each pattern keeps the names' common prefix up to its last ``_`` or ``-`` and their common
    extension (from the first ``.`` of the common suffix): ``spectra/MeanSpectrum_*.csv.gz``.

    Raises
    ------
    starlabel.errors.SimulationError
        A file lies outside ``out`` (the reader wrote elsewhere).
    """
    root = out.resolve()
    by_folder: dict[str, list[str]] = {}
    for file in files:
        try:
            relative = Path(file).resolve().relative_to(root)
        except ValueError:
            raise SimulationError(
                f"{file}: the reader wrote a file outside the output folder {out}; a writer must write under "
                "the folder it is given"
            ) from None
        by_folder.setdefault(relative.parent.as_posix(), []).append(relative.name)
    patterns = []
    for folder, names in sorted(by_folder.items()):
        prefix = _common_prefix(names)
        cut = max(prefix.rfind("_"), prefix.rfind("-"))
        prefix = prefix[: cut + 1] if cut >= 0 else ""
        suffix = _common_prefix([n[::-1] for n in names])[::-1]
        suffix = suffix[suffix.find(".") :] if "." in suffix else ""
        if len(prefix) + len(suffix) > min(len(n) for n in names):
            prefix = ""
        pattern = f"{prefix}*{suffix}"
        patterns.append(pattern if folder == "." else f"{folder}/{pattern}")
    return patterns


def _common_prefix(names: Sequence[str]) -> str:
    first, last = min(names), max(names)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def derived_descriptor(
    resolved: ResolvedDescriptor,
    out: Path,
    *,
    patterns: Sequence[str],
    label_names: Sequence[str],
    label_units: Mapping[str, str],
    error_names: Mapping[str, str],
    kept_auxiliary: Sequence[str],
    grid: NativeGrid,
    observed_frame: bool,
    notes: list[str],
) -> tuple[dict[str, Any], list[Path]]:
    """The derived descriptor as a plain mapping, and the extra files it needs (already written).

    ``kept_auxiliary`` are the store keys of the auxiliary entries kept; ``notes`` collects what was
    changed beyond the documented edits (for the report).
    """
    model = resolved.model
    doc: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True)
    name = model.name if model.name.endswith(SUFFIX) else model.name + SUFFIX
    doc["name"] = name
    origin = resolved.path.name if resolved.path is not None else model.name
    doc["description"] = (
        f"Simulated spectra of a mock population written by starlabel simulate from the descriptor "
        f"{model.name!r} ({origin})." + (f" {model.description}" if model.description else "")
    )
    doc["auxiliary"] = [
        entry.model_dump(mode="json", exclude_unset=True) for entry in model.auxiliary if entry.key in kept_auxiliary
    ]
    if not doc["auxiliary"]:
        doc.pop("auxiliary")
    doc["labels"] = {
        "source": "table_labels",
        "columns": list(label_names),
        "options": {
            "id_column": "source_id",
            "columns": {n: n for n in label_names},
            "errors": {n: error_names[n] for n in label_names},
            "units": {n: label_units[n] for n in label_names},
        },
    }
    data: dict[str, Any] = {"root": ".", "spectra": list(patterns), "labels": TRUTH_FILE}
    if kept_auxiliary:
        data["auxiliary"] = {key: AUXILIARY_FILE for key in kept_auxiliary}
    doc["data"] = data
    extra: list[Path] = []
    if model.grid.spacing == "explicit":
        doc["grid"], extra = _explicit_grid(resolved, out, grid, notes)
    if model.rest_frame is not None and model.rest_frame.source == "table":
        if observed_frame:
            doc["rest_frame"] = {
                "source": "table",
                "key": "vrad",
                "unit": "km/s",
                "table": TRUTH_FILE,
                "id_column": "source_id",
            }
        else:
            doc.pop("rest_frame")
            notes.append("rest_frame removed: the simulated spectra are written in the rest frame")
    return doc, extra


def _explicit_grid(
    resolved: ResolvedDescriptor, out: Path, grid: NativeGrid, notes: list[str]
) -> tuple[dict[str, Any], list[Path]]:
    from starlabel.wavelengths import convert_wavelength

    section = resolved.model.grid
    doc = section.model_dump(mode="json", exclude_unset=True)
    name = str(section.file)
    candidates = [Path(name)] if Path(name).is_absolute() else []
    if resolved.path is not None:
        candidates.append(resolved.path.parent / name)
    found = next((p for p in candidates if p.is_file()), None)
    if found is not None:
        target = out / found.name
        if target.name in (TRUTH_FILE, AUXILIARY_FILE, GRID_FILE):
            target = out / f"grid_{found.name}"
        shutil.copyfile(found, target)
        doc["file"] = target.name
        return doc, [target]
    wave = convert_wavelength(grid.wavelength, grid.unit, grid.medium, section.unit, section.medium)
    target = out / GRID_FILE
    header = (
        f"wavelengths ({section.unit}, {section.medium}) of the simulated spectra's native grid, written by "
        f"starlabel simulate because the grid file {name!r} was not found beside the descriptor"
    )
    np.savetxt(target, wave, fmt="%.12g", header=header)
    doc["file"] = GRID_FILE
    doc["column"] = 0
    notes.append(f"grid file {name!r} not found beside the descriptor: the native grid is written to {GRID_FILE}")
    return doc, [target]


def dump_descriptor(doc: Mapping[str, Any], source: str) -> str:
    """YAML text of a derived descriptor, with a comment header."""
    body = yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)
    return f"# Derived by `starlabel simulate` from {source}; its data (data.root: .) are the files beside it.\n{body}"


def check_descriptor(text: str, path: Path, plugins: Plugins) -> ResolvedDescriptor:
    """Validate derived descriptor text as ``starlabel ingest`` will.

    Raises
    ------
    starlabel.errors.SimulationError
        The derived descriptor is invalid (a defect in a component's simulation support).
    """
    from starlabel.descriptor import validate_document
    from starlabel.yamlsource import parse_yaml

    try:
        return validate_document(parse_yaml(text, str(path)), plugins, path)
    except DescriptorError as error:
        raise SimulationError(f"the derived descriptor {path.name} would be invalid:\n{error}") from None


__all__ = ["check_descriptor", "derived_descriptor", "dump_descriptor", "spectra_patterns"]
