"""``starlabel simulate``: a mock population observed as a survey's archive files, ready to ingest.

For a survey descriptor, :func:`simulate`

1. draws a mock Galactic population (:func:`starlabel.population.mock_population`);
2. asks the descriptor's reader for its archive grid (:meth:`~starlabel.components.InstrumentReader.simulation_grid`)
   and identifiers (:meth:`~starlabel.components.InstrumentReader.simulation_ids`);
3. per batch of stars: converts the native wavelengths to vacuum nm and, for observed-frame archives,
   to each star's rest frame (:func:`starlabel.wavelengths.doppler_shift_to_rest`, the exact inverse
   of what ingest applies); synthesizes continuum-normalised spectra at the descriptor's resolving
   power; multiplies physical-flux archives by the star's blackbody continuum
   (:func:`starlabel.population.continuum_flux`, converted to the archive's flux unit); adds Gaussian
   noise; and lets the reader write the batch under ``out/spectra``;
4. writes ``auxiliary.fits`` (the columns every auxiliary provider's ``simulate`` returns),
   ``truth.fits`` (:mod:`starlabel.simulate_labels`), the derived descriptor ``<name>.yaml``
   (:mod:`starlabel.simulate_descriptor`) and ``simulate.json`` (the provenance record).

Noise
-----
Each star's S/N is drawn from the ``snr`` distribution; pixel i gets ``σ_i = c_i sqrt(max(f_i, 0.01)) /
S/N`` with ``f`` the normalised model and ``c`` the continuum (1 for normalised archives): photon noise
whose S/N in the continuum is the drawn value, with a floor (1 % of the continuum flux, read-noise-like)
that keeps saturated line cores finite. ``ivar = 1/σ²``; no pixel is masked. The S/N values come from
one generator seeded by ``seed`` and each star's noise from its own generator seeded by ``(seed, row)``,
so the files hold the same numbers whatever ``batch_size``.

Files and interruptions
-----------------------
``out`` must be empty or absent; ``overwrite=True`` replaces a previous simulation there (its record
names what it wrote; other files are left alone). The truth table, auxiliary table, descriptor and
record are written under temporary names and renamed once every spectrum is written, the record last,
so an interrupted run leaves no complete-looking truth table; ``.simulate-partial.json`` marks it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from starlabel.errors import SimulationError
from starlabel.simulate_descriptor import AUXILIARY_FILE, GRID_FILE, TRUTH_FILE
from starlabel.storage import storage_errors

if TYPE_CHECKING:
    from starlabel.components import AuxiliaryProvider, InstrumentReader, Synthesizer
    from starlabel.containers import NativeGrid, Population
    from starlabel.descriptor import ResolvedDescriptor
    from starlabel.plugins import Plugins
    from starlabel.snr import SnrDistribution

RECORD_FILE = "simulate.json"
PARTIAL_FILE = ".simulate-partial.json"
SPECTRA_FOLDER = "spectra"
FLUX_FLOOR = 0.01
"""Noise floor: σ is computed from max(f, FLUX_FLOOR) times the continuum."""
RECORD_MAX_FILES = 1000
"""The record lists at most this many spectrum files (with their count and globs)."""


@dataclass
class SimulationReport:
    """What a simulation wrote (also saved as ``simulate.json``).

    Attributes
    ----------
    out : str
        Output folder.
    descriptor : str
        The derived descriptor file, to give to ``starlabel ingest``.
    name : str
        Its survey name.
    rows : int
        Stars simulated.
    spectra_files : list of str
        Spectrum files, relative to ``out``.
    patterns : list of str
        ``data.spectra`` globs of the derived descriptor.
    truth, auxiliary : str
        Files relative to ``out`` (``auxiliary`` empty when no provider is kept).
    skipped_auxiliary : dict of str to str
        Auxiliary entries dropped with ``skip_auxiliary``, and why they could not be simulated.
    unmodelled_labels : list of str
        Descriptor labels the synthesizer does not model (they are in the truth table, but the spectra
        do not depend on them).
    notes : list of str
        Other changes made to the derived descriptor.
    seconds : float
        Wall time.
    """

    out: str
    descriptor: str
    name: str
    rows: int
    spectra_files: list[str]
    patterns: list[str]
    truth: str
    auxiliary: str
    skipped_auxiliary: dict[str, str] = field(default_factory=dict)
    unmodelled_labels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def ingest_command(self, store: str | None = None) -> str:
        """The ``starlabel ingest`` command that reads this simulation into a store."""
        out = Path(self.out)
        store = store or str(out.with_name(out.name + "_store"))
        return f"starlabel ingest {self.descriptor} --data {self.out} --store {store}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


# ------------------------------------------------------------------------------------------------ checks
def _check_out(out: Path, overwrite: bool) -> list[Path]:
    """Refuse a non-empty ``out`` unless overwriting a previous simulation; return that simulation's records."""
    if out.exists() and not out.is_dir():
        raise SimulationError(f"{out}: --out must be a folder, and this is a file; choose another --out")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not entries:
        return []
    listing = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
    if not overwrite:
        raise SimulationError(
            f"{out}: the output folder is not empty ({len(entries)} entries: {listing}); choose a new --out, "
            "or pass --overwrite to replace a previous simulation there"
        )
    records = [out / name for name in (RECORD_FILE, PARTIAL_FILE) if (out / name).is_file()]
    if not records:
        raise SimulationError(
            f"{out}: --overwrite replaces a previous simulation, but this folder holds none ({RECORD_FILE} is "
            f"missing; entries: {listing}); remove its contents yourself or choose another --out"
        )
    return records


def _clear_previous(out: Path, records: Sequence[Path]) -> None:
    """Remove what the previous simulation recorded in ``records`` wrote (other files stay)."""
    owned = {SPECTRA_FOLDER, TRUTH_FILE, AUXILIARY_FILE, GRID_FILE, RECORD_FILE, PARTIAL_FILE}
    for record in records:
        try:
            owned.update(Path(f).name for f in json.loads(record.read_text()).get("outputs", []))
        except (OSError, ValueError, AttributeError):
            pass
    with storage_errors(out, "remove the previous simulation", SimulationError):
        for name in owned:
            path = out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        for leftover in out.glob(".*.partial"):
            leftover.unlink()


def _skip_names(resolved: ResolvedDescriptor, skip: Sequence[str]) -> set[str]:
    """Store keys of the auxiliary entries named (by key or provider) in ``skip``."""
    entries = resolved.model.auxiliary
    keys = set()
    for name in skip:
        match = [e.key for e in entries if name in (e.key, e.provider)]
        if not match:
            listing = ", ".join(f"{e.key} (provider {e.provider})" for e in entries) or "(none)"
            raise SimulationError(
                f"--skip-auxiliary {name!r}: the descriptor {resolved.name!r} has no such auxiliary entry; "
                f"entries: {listing}"
            )
        keys.update(match)
    return keys


# --------------------------------------------------------------------------------------------- auxiliary
def _auxiliary(
    resolved: ResolvedDescriptor, plugins: Plugins, population: Population, ids: np.ndarray, skip: set[str]
) -> tuple[dict[str, np.ndarray], list[str], dict[str, str]]:
    """Merged auxiliary columns, the entries kept, and the skipped ones with their reason."""
    merged: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    kept: list[str] = []
    skipped: dict[str, str] = {}
    for index, entry in enumerate(resolved.model.auxiliary):
        provider: AuxiliaryProvider = plugins.auxiliary.get(entry.provider)(resolved.options[f"auxiliary[{index}]"])
        where = f"auxiliary[{index}] ({entry.key}, provider {entry.provider})"
        try:
            columns = provider.simulate(population, ids)
        except SimulationError as error:
            if entry.key in skip:
                skipped[entry.key] = str(error)
                continue
            raise SimulationError(f"{where}: {error}\n  To simulate without it: --skip-auxiliary {entry.key}") from None
        if entry.key in skip:
            skipped[entry.key] = "skipped on request (--skip-auxiliary)"
            continue
        for name, values in columns.items():
            values = np.asarray(values)
            if values.shape[:1] != (len(population),):
                raise SimulationError(
                    f"{where}: simulated column {name!r} has shape {values.shape}, expected {len(population)} rows"
                )
            if name in merged and not _same(merged[name], values):
                raise SimulationError(
                    f"{where}: simulated column {name!r} differs from the one {origin[name]} returned; the "
                    "auxiliary table holds one column per name: rename one through the providers' options"
                )
            merged.setdefault(name, values)
            origin.setdefault(name, where)
        kept.append(entry.key)
    return merged, kept, skipped


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


# ----------------------------------------------------------------------------------------------- spectra
def _flux_factor(grid: NativeGrid, wave_nm: np.ndarray) -> np.ndarray | float:
    """Factor from W m⁻² nm⁻¹ to the archive's ``flux_unit`` (per pixel where it depends on λ)."""
    import astropy.units as u

    if not grid.flux_unit:
        raise SimulationError(
            "the reader's simulation grid has physical fluxes (normalised=False) but no flux_unit; "
            "the reader must say which unit its archive uses"
        )
    try:
        target = u.Unit(grid.flux_unit)
        one = 1.0 * u.W / u.m**2 / u.nm
        factor = one.to(target, equivalencies=u.spectral_density(wave_nm * u.nm))
    except (ValueError, u.UnitsError) as error:
        raise SimulationError(
            f"flux_unit {grid.flux_unit!r} of the reader's simulation grid cannot be converted from W m-2 nm-1: "
            f"{error}; allowed: an astropy spectral flux density unit"
        ) from None
    value = np.asarray(factor.value, dtype=np.float64)
    return float(value) if value.ndim == 0 else value


def _synthesize(
    synthesizer: Synthesizer, labels: Mapping[str, np.ndarray], wave: np.ndarray, resolution: float, rows: int
) -> np.ndarray:
    flux = np.asarray(synthesizer.synthesize(labels, wave, resolution), dtype=np.float64)
    shape = (rows, wave.shape[-1])
    if flux.shape != shape:
        raise SimulationError(f"synthesizer {synthesizer.name!r} returned flux of shape {flux.shape}, expected {shape}")
    if not np.isfinite(flux).all():
        raise SimulationError(f"synthesizer {synthesizer.name!r} returned non-finite flux")
    return flux


def _batch_spectra(
    population: Population,
    rows: slice,
    ids: np.ndarray,
    grid: NativeGrid,
    wave_nm: np.ndarray,
    snr: np.ndarray,
    synthesizer: Synthesizer,
    synth_labels: Sequence[str],
    resolution: float,
    seed: int,
) -> Any:
    from starlabel.containers import Spectra
    from starlabel.population import continuum_flux, subset
    from starlabel.wavelengths import doppler_shift_to_rest

    part = subset(population, rows)
    count = len(part)
    wave = doppler_shift_to_rest(wave_nm, part.vrad) if grid.observed_frame else wave_nm
    labels = {name: part.labels[name] for name in synth_labels}
    model = _synthesize(synthesizer, labels, wave, resolution, count)
    if grid.normalised:
        continuum: np.ndarray | float = 1.0
    else:
        continuum = continuum_flux(part, wave_nm) * _flux_factor(grid, wave_nm)
    sigma = np.sqrt(np.maximum(model, FLUX_FLOOR)) / snr[rows][:, None]
    if not grid.normalised:
        sigma = sigma * continuum
    noise = np.empty_like(model)
    for i, row in enumerate(range(rows.start, rows.stop)):
        noise[i] = np.random.default_rng([seed, 101, row]).standard_normal(model.shape[1])
    flux = model * continuum + noise * sigma
    return Spectra(
        source_id=ids[rows],
        wavelength=np.array(grid.wavelength, dtype=np.float64),
        flux=flux,
        ivar=Spectra.ivar_from_sigma(sigma),
        mask=np.zeros(flux.shape, dtype=bool),
        unit=grid.unit,
        medium=grid.medium,
        meta={"vrad": part.vrad.copy(), "snr": snr[rows].copy(), "ra": part.ra.copy(), "dec": part.dec.copy()},
    )


# --------------------------------------------------------------------------------------------- main entry
def simulate(
    descriptor: ResolvedDescriptor,
    n: int,
    snr: SnrDistribution,
    out: str | Path,
    *,
    plugins: Plugins,
    seed: int = 42,
    synthesizer: str = "linelist",
    batch_size: int = 2000,
    overwrite: bool = False,
    skip_auxiliary: Sequence[str] = (),
    population_options: Mapping[str, Any] | None = None,
    command: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> SimulationReport:
    """Simulate ``n`` stars of ``descriptor``'s survey into ``out`` (see the module docstring).

    Parameters
    ----------
    descriptor : ResolvedDescriptor
        The survey to simulate: its reader must implement the simulation methods.
    n : int
        Number of stars.
    snr : SnrDistribution
        Per-spectrum S/N distribution (:func:`starlabel.snr.parse_snr`).
    out : path
        Output folder (absent or empty, unless ``overwrite``).
    plugins : Plugins
        Installed components.
    seed : int
        Seed of the population, the S/N values and the noise.
    synthesizer : str
        Name of a registered synthesizer.
    batch_size : int
        Stars synthesized and written at once (bounds memory: about 6 × batch_size × pixels × 8 bytes).
    overwrite : bool
        Replace a previous simulation in ``out``.
    skip_auxiliary : sequence of str
        Auxiliary entries (store key or provider name) to leave out when they cannot be simulated.
    population_options : mapping, optional
        Keyword options of :func:`starlabel.population.mock_population`.
    command : str
        The command line, for the record.
    progress : callable, optional
        Called as ``progress(rows_done, rows_total)`` after each batch.

    Returns
    -------
    SimulationReport

    Raises
    ------
    starlabel.errors.SimulationError
        The descriptor's components cannot simulate, a label cannot be provided, ``out`` is not empty, or
        a file cannot be written (the message says which and what to do).
    """
    from starlabel._version import __version__
    from starlabel.population import mock_population
    from starlabel.simulate_descriptor import check_descriptor, derived_descriptor, dump_descriptor, spectra_patterns
    from starlabel.simulate_labels import (
        COLUMN_UNITS,
        DEFAULT_LABELS,
        elements_needed,
        label_units,
        map_labels,
        truth_columns,
    )
    from starlabel.wavelengths import convert_wavelength

    started = time.perf_counter()
    out = Path(out)
    model = descriptor.model
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise SimulationError(f"--n must be a positive number of stars, got {n!r}")
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise SimulationError(f"--batch-size must be a positive number of stars, got {batch_size!r}")
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise SimulationError(f"--seed must be a non-negative integer, got {seed!r}")
    label_names = list(model.labels.columns) if model.labels is not None else list(DEFAULT_LABELS)
    where = f"{descriptor.path or descriptor.name}: labels.columns"
    mapping = map_labels(label_names, where)
    if "table_labels" not in plugins.label_sources:
        raise SimulationError(
            "the derived descriptor reads the truth table with the label source 'table_labels', which is not "
            "installed or is blocked (STARLABEL_DISABLE_PLUGINS); unblock starlabel_tables"
        )
    resolution = model.instrument.resolution
    if resolution is None:
        raise SimulationError(
            f"{descriptor.path or descriptor.name}: instrument.resolution is not set; the synthesizer needs the "
            "resolving power R = λ/Δλ"
        )
    synth: Synthesizer = plugins.synthesizers.get(synthesizer)()
    known = list(synth.label_names())
    skip = _skip_names(descriptor, skip_auxiliary)
    previous = _check_out(out, overwrite)
    reader: InstrumentReader = plugins.readers.get(model.instrument.reader)(descriptor.options["instrument"])
    grid = reader.simulation_grid()
    wave_nm = convert_wavelength(grid.wavelength, grid.unit, grid.medium, "nm", "vacuum")

    options = dict(population_options or {})
    options["elements"] = sorted(set(options.get("elements", ())) | set(elements_needed(label_names)))
    population = mock_population(int(n), int(seed), **options)
    ids = np.asarray(reader.simulation_ids(population))
    if ids.shape != (len(population),) or len(np.unique(ids)) != len(ids):
        raise SimulationError(
            f"reader {reader.name!r}: simulation_ids returned {ids.shape} ids, "
            f"{len(np.unique(ids)) if ids.ndim == 1 else '?'} unique, for {len(population)} stars; they must be unique"
        )
    aux_columns, kept, skipped = _auxiliary(descriptor, plugins, population, ids, skip)
    snr_values = snr.sample(np.random.default_rng([int(seed), 100]), len(population))
    synth_labels = [name for name in known if name in population.labels]
    unmodelled = sorted({name for name, label in mapping.items() if label not in known})

    _clear_previous(out, previous)
    spectra_dir = out / SPECTRA_FOLDER
    planned = [SPECTRA_FOLDER, TRUTH_FILE, AUXILIARY_FILE, GRID_FILE, f"{model.name}.yaml", RECORD_FILE]
    partial = {"command": command, "seed": int(seed), "n": int(n), "outputs": planned, "started": time.time()}
    with storage_errors(out, "create the output folder", SimulationError):
        spectra_dir.mkdir(parents=True, exist_ok=True)
        (out / PARTIAL_FILE).write_text(json.dumps(partial, indent=2))

    files: list[Path] = []
    seen: set[Path] = set()
    with storage_errors(spectra_dir, "write simulated spectra", SimulationError, then="run again with --overwrite"):
        for start in range(0, len(population), int(batch_size)):
            rows = slice(start, min(start + int(batch_size), len(population)))
            spectra = _batch_spectra(
                population, rows, ids, grid, wave_nm, snr_values, synth, synth_labels, float(resolution), int(seed)
            )
            written = [Path(p) for p in reader.write(spectra, spectra_dir)]
            missing = [str(p) for p in written if not p.is_file()]
            if missing:
                raise SimulationError(f"reader {reader.name!r} says it wrote {', '.join(missing)}, which do not exist")
            for path in written:
                if path not in seen:
                    seen.add(path)
                    files.append(path)
            if progress:
                progress(rows.stop, len(population))
    if not files:
        raise SimulationError(f"reader {reader.name!r} wrote no file for {len(population)} spectra")

    notes: list[str] = []
    patterns = spectra_patterns(files, out)
    truth = truth_columns(population, ids, mapping, snr_values)
    errors = {name: f"{name}_err" for name in label_names}
    doc, extra = derived_descriptor(
        descriptor,
        out,
        patterns=patterns,
        label_names=label_names,
        label_units=label_units(mapping),
        error_names=errors,
        kept_auxiliary=kept,
        grid=grid,
        observed_frame=grid.observed_frame,
        notes=notes,
    )
    target = out / f"{model.name}.yaml"
    text = dump_descriptor(doc, descriptor.path.name if descriptor.path is not None else model.name)
    check_descriptor(text, target, plugins)

    relative = [p.resolve().relative_to(out.resolve()).as_posix() for p in files]
    report = SimulationReport(
        out=str(out),
        descriptor=str(target),
        name=str(doc["name"]),
        rows=len(population),
        spectra_files=relative,
        patterns=patterns,
        truth=TRUTH_FILE,
        auxiliary=AUXILIARY_FILE if kept else "",
        skipped_auxiliary=skipped,
        unmodelled_labels=unmodelled,
        notes=notes,
    )
    with storage_errors(out, "write the simulation's tables", SimulationError, then="run again with --overwrite"):
        if kept:
            _write_table(aux_columns, out / AUXILIARY_FILE, {})
        _write_text(target, text)
        units = COLUMN_UNITS | {name: "K" for name, label in mapping.items() if label == "teff"}
        _write_table(truth, out / TRUTH_FILE, units)
        report.seconds = time.perf_counter() - started
        record = {
            "command": command,
            "seed": int(seed),
            "n": int(n),
            "snr": str(snr),
            "synthesizer": synthesizer,
            "batch_size": int(batch_size),
            "descriptor": {"name": model.name, "hash": descriptor.hash()},
            "population": {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in options.items()},
            "skip_auxiliary": sorted(skip),
            "versions": _versions(plugins, __version__),
            "outputs": [SPECTRA_FOLDER, TRUTH_FILE, target.name, RECORD_FILE]
            + ([AUXILIARY_FILE] if kept else [])
            + [p.name for p in extra],
            "files": {
                "spectra": {"count": len(relative), "patterns": patterns, "first": relative[:RECORD_MAX_FILES]},
                "truth": TRUTH_FILE,
                "auxiliary": report.auxiliary,
                "descriptor": target.name,
                "grid": [p.name for p in extra],
            },
            "report": {k: v for k, v in report.to_dict().items() if k != "spectra_files"},
        }
        _write_text(out / RECORD_FILE, json.dumps(record, indent=2, default=str))
        (out / PARTIAL_FILE).unlink()
    return report


def _versions(plugins: Plugins, version: str) -> dict[str, str]:
    import astropy

    return {
        "starlabel": version,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "astropy": astropy.__version__,
        **{f"plugin:{k}": v for k, v in plugins.versions().items()},
    }


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _write_table(columns: Mapping[str, np.ndarray], path: Path, units: Mapping[str, str]) -> None:
    from astropy.table import Table

    table = Table()
    for name, values in columns.items():
        values = np.asarray(values)
        if values.dtype.kind in "OU":
            values = values.astype(str)
        elif values.dtype == np.int8:  # astropy writes int8 FITS columns as logical (L): widen
            values = values.astype(np.int16)
        table[name] = values
        if name in units:
            table[name].unit = units[name]
    temporary = path.with_name(f".{path.name}.partial")
    table.write(temporary, format="fits", overwrite=True)
    os.replace(temporary, path)


__all__ = ["SimulationReport", "simulate"]
