"""Planning a ``starlabel degrade`` run: checks of the source against the target, the operators, the crop.

Everything here happens before anything is written: the resolving powers, the auxiliary entries and
labels the target needs from the store, the composed convolution+resampling operator (see
:mod:`starlabel.degrade`), the target grid's coverage and, with ``crop``, the cropped target descriptor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from starlabel.errors import StarlabelError
from starlabel.store import Store

if TYPE_CHECKING:
    from starlabel.components import Normaliser
    from starlabel.descriptor import ResolvedDescriptor
    from starlabel.grid import WavelengthGrid
    from starlabel.plugins import Plugins
    from starlabel.resample import SparseOperator
    from starlabel.snr import SnrDistribution

MAX_BAD_FRACTION = 0.1
"""With convolution: mask an output pixel when more than this fraction of its kernel weight is on bad pixels."""


class DegradeError(StarlabelError):
    """A store cannot be degraded to a target descriptor (resolution, coverage, labels, aux, output in the way)."""

    exit_code = 2


@dataclass(frozen=True)
class DegradeOptions:
    """How to degrade.

    Attributes
    ----------
    snr : SnrDistribution or None
        Target S/N distribution (None: keep the noise the degraded spectra have).
    seed : int
        Seed of the S/N draws and the noise; row ``i`` of the source uses ``(seed, i)``, so results do not
        depend on chunk sizes or on resuming.
    crop : bool
        Restrict the target grid (and its arms and mask) to the range the source covers, instead of
        refusing a target grid the source does not cover.
    label_map : mapping
        Target label name → stored label name, for labels stored under other names.
    overwrite : bool
        Replace a complete store (or an unfinished write of other inputs) at the output path.
    """

    snr: SnrDistribution | None = None
    seed: int = 0
    crop: bool = False
    label_map: Mapping[str, str] = field(default_factory=dict)
    overwrite: bool = False


@dataclass
class Plan:
    """Everything fixed for one run: the (possibly cropped) target, the operators, what to copy.

    Attributes
    ----------
    source : Store
        The complete source store.
    target : ResolvedDescriptor
        The target descriptor, cropped when ``cropped_yaml`` is set.
    grid : WavelengthGrid
        The output grid (the target's, possibly cropped).
    operator : SparseOperator
        Source pixels → output pixels: convolution then resampling, composed.
    footprint : scipy.sparse.csr_matrix
        (P_out, P_in) resampling weights: the source pixels inside each output pixel.
    region_mask : numpy.ndarray
        (P_out,) the target's ``mask`` regions.
    normaliser : Normaliser
        The target's normaliser.
    arms : list of (start, stop)
        The target's arms.
    aux, labels : dict
        Output key → stored key.
    r_source, r_target : float
        Resolving powers.
    covered_fraction : float
        Fraction of the (uncropped) target grid's pixels the source covers.
    cropped_yaml : str or None
        The cropped descriptor's text.
    cropped_grid : numpy.ndarray or None
        The cropped wavelengths of an explicit grid (written beside the cropped descriptor).
    """

    source: Store
    target: ResolvedDescriptor
    grid: WavelengthGrid
    operator: SparseOperator
    footprint: Any
    region_mask: np.ndarray
    normaliser: Normaliser
    arms: list[tuple[float, float]]
    aux: dict[str, str]
    labels: dict[str, str]
    r_source: float
    r_target: float
    covered_fraction: float
    cropped_yaml: str | None = None
    cropped_grid: np.ndarray | None = None

    @property
    def convolved(self) -> bool:
        """True when the resolving power is lowered (``r_target < r_source``)."""
        return self.r_target < self.r_source


def _resolutions(source: Store, target: ResolvedDescriptor) -> tuple[float, float]:
    r_source = source.meta["descriptor"].get("instrument", {}).get("resolution")
    r_target = target.model.instrument.resolution
    where = target.path or target.name
    if r_source is None:
        raise DegradeError(
            f"{source.path}: its descriptor gives no instrument.resolution, so the spectra cannot be convolved to "
            f"another resolving power; re-ingest the source with instrument.resolution set"
        )
    if r_target is None:
        raise DegradeError(f"{where}: instrument.resolution is not set; give the resolving power to degrade to")
    if r_target > r_source:
        raise DegradeError(
            f"{where}: instrument.resolution {r_target:g} is higher than the source store's ({r_source:g}, "
            f"{source.path}); degrading can only lower the resolving power: allowed targets have R ≤ {r_source:g}"
        )
    return float(r_source), float(r_target)


def _target_grid(target: ResolvedDescriptor) -> WavelengthGrid:
    from starlabel.grid import WavelengthGrid

    search = []
    if target.path is not None:
        search.append(target.path.parent)
        if target.model.data.root:
            search.append(target.path.parent / target.model.data.root)
    return WavelengthGrid.from_section(target.model.grid, search)


def _operators(
    source_grid: WavelengthGrid, grid: WavelengthGrid, r_source: float, r_target: float, mode: str
) -> tuple[SparseOperator, Any, np.ndarray]:
    """Composed convolution+resampling operator, the resampling footprint, and the wavelength coverage."""
    from starlabel.lsf import convolution_operator
    from starlabel.resample import SparseOperator, resampling_operator
    from starlabel.wavelengths import convert_wavelength

    wave_in = convert_wavelength(source_grid.wavelength, source_grid.unit, source_grid.medium, grid.unit, grid.medium)
    resampling = resampling_operator(wave_in, grid, mode)  # type: ignore[arg-type]
    if not r_target < r_source:
        return resampling, resampling.weights, resampling.covered
    kernel = convolution_operator(source_grid.wavelength, r_source, r_target)
    weights = (resampling.weights @ kernel.weights).tocsr()
    off_grid = resampling.weights @ (~kernel.covered).astype(np.float64) > 0
    operator = SparseOperator(weights, resampling.covered & ~off_grid, MAX_BAD_FRACTION)
    return operator, resampling.weights, resampling.covered


def _aux_plan(source: Store, target: ResolvedDescriptor) -> dict[str, str]:
    """Target aux key → stored aux key; every target entry must be a stored one (same provider and options)."""
    stored = [e for e in source.meta["descriptor"].get("auxiliary", []) if e.get("name") in source.layout.aux]
    plan: dict[str, str] = {}
    problems = []
    for entry in target.resolved()["auxiliary"]:
        key, provider, options = entry["name"], entry["provider"], entry.get("options", {})
        same = [e for e in stored if e["provider"] == provider and e.get("options", {}) == options]
        by_name = next((e for e in stored if e["name"] == key), None)
        if by_name is not None and by_name in same:
            plan[key] = key
        elif by_name is None and len(same) == 1:
            plan[key] = same[0]["name"]
        elif by_name is not None and by_name["provider"] != provider:
            problems.append(f"{key}: provider {provider} in the target, {by_name['provider']} in the store")
        elif by_name is not None:
            problems.append(
                f"{key}: options differ (target {json.dumps(options, sort_keys=True)}, store "
                f"{json.dumps(by_name.get('options', {}), sort_keys=True)})"
            )
        else:
            problems.append(f"{key} (provider {provider}): not in the store")
    if problems:
        held = ", ".join(f"{e['name']} (provider {e['provider']})" for e in stored) or "(none)"
        raise DegradeError(
            f"{target.path or target.name}: auxiliary entries the source store {source.path} cannot supply: "
            + "; ".join(problems)
            + f". The store holds: {held}. Allowed: a subset of these; remove the others from the target descriptor"
        )
    return plan


def _label_plan(source: Store, target: ResolvedDescriptor, label_map: Mapping[str, str]) -> dict[str, str]:
    """Target label → stored label, for the target's ``labels.columns`` in order."""
    from starlabel.suggest import closest

    columns = list(target.model.labels.columns) if target.model.labels is not None else []
    where = target.path or target.name
    unknown = [name for name in label_map if name not in columns]
    if unknown:
        raise DegradeError(
            f"--map {unknown[0]}={label_map[unknown[0]]}: {unknown[0]!r} is not one of the target's labels.columns; "
            f"allowed: {', '.join(columns) or '(the target has no labels)'}"
        )
    available = list(source.layout.labels)
    plan = {name: label_map.get(name, name) for name in columns}
    missing = [name for name, stored in plan.items() if stored not in available]
    if missing:
        hints = [f"--map {m}={closest(plan[m], available, 0.3) or available[0]}" for m in missing if available]
        raise DegradeError(
            f"{where}: labels {', '.join(plan[m] for m in missing)} (labels.columns) are not in the source store "
            f"{source.path}; it holds: {', '.join(available) or '(no labels)'}"
            + (f". Map target labels to stored ones with --map TARGET=STORED, e.g. {' '.join(hints)}" if hints else "")
        )
    return plan


def _coverage_error(
    source: Store, grid: WavelengthGrid, covered: np.ndarray, usable: np.ndarray, source_grid: WavelengthGrid
) -> str:
    from starlabel.wavelengths import convert_wavelength

    wave = grid.wavelength
    span = f"{wave[0]:g}–{wave[-1]:g} {grid.unit} ({grid.medium})"
    if not covered.any():
        ends = convert_wavelength(
            source_grid.wavelength[[0, -1]], source_grid.unit, source_grid.medium, grid.unit, grid.medium
        )
        return (
            f"{source.path}: does not overlap the target grid {span} at all (it covers {ends[0]:g}–{ends[1]:g} "
            f"{grid.unit}); choose a target whose grid overlaps the source"
        )
    first, last = np.flatnonzero(covered)[[0, -1]]
    text = (
        f"{source.path}: covers only {wave[first]:g}–{wave[last]:g} {grid.unit} of the target grid {span}: "
        f"{int(covered.sum())} of {covered.size} target pixels ({covered.mean():.1%})"
    )
    if not usable.any():
        return (
            text + "; all of them lie within the convolution kernel's reach of the source's edges: nothing to crop to"
        )
    low, high = np.flatnonzero(usable)[[0, -1]]
    return text + (
        f"; re-run with --crop to restrict the target grid, arms and mask to {wave[low]:g}–{wave[high]:g} "
        f"{grid.unit} (the pixels whose whole convolution kernel lies on the source grid); the cropped "
        "descriptor is written next to the output store, for ingesting target spectra"
    )


def _clean(value: float) -> float:
    return float(f"{value:.12g}")


def _cropped_document(
    target: ResolvedDescriptor, grid: WavelengthGrid, first: int, last: int, out: Path, source: Store
) -> dict[str, Any]:
    """The target's resolved descriptor with grid, arms and mask restricted to pixels ``first..last``."""
    data = target.resolved()
    wave = grid.wavelength
    section = dict(data["grid"])
    n = last - first
    if grid.spacing == "explicit":
        section["file"], section["column"] = f"{out.name}.grid.txt", 0
    else:
        start = _clean(float(wave[first]))
        step = float(section["step"])
        stop = start + n * step if grid.spacing == "linear" else start * 10.0 ** (n * step)
        section["start"], section["stop"] = start, _clean(stop)
    data["grid"] = section
    lo, hi = float(wave[first]), float(wave[last])

    def clip(regions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = []
        for region in regions:
            start, stop = max(region["start"], lo), min(region["stop"], hi)
            if stop > start:
                kept.append({**region, "start": _clean(start), "stop": _clean(stop)})
        return kept

    data["mask"] = clip(data["mask"])
    data["instrument"]["arms"] = clip(data["instrument"]["arms"])
    root = data["data"].get("root")
    if root and target.path is not None and not Path(root).is_absolute():
        data["data"]["root"] = str((target.path.parent / root).resolve())
    note = f"cropped by starlabel degrade to {lo:g}–{hi:g} {grid.unit}, the coverage of {source.path.name}"
    data["description"] = f"{data['description']} ({note})" if data.get("description") else note
    return data


def _crop(
    target: ResolvedDescriptor, plugins: Plugins, grid: WavelengthGrid, covered: np.ndarray, out: Path, source: Store
) -> tuple[ResolvedDescriptor, str, np.ndarray | None]:
    """Validate the cropped descriptor; return it, its YAML text, and the explicit grid values (if any)."""
    import yaml

    from starlabel.descriptor import validate_document
    from starlabel.yamlsource import parse_yaml

    first, last = (int(i) for i in np.flatnonzero(covered)[[0, -1]])
    data = _cropped_document(target, grid, first, last, out, source)
    header = f"# {target.name} cropped to the coverage of the store {source.path.name} by `starlabel degrade`\n"
    text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path = descriptor_path(out)
    cropped = validate_document(parse_yaml(text, str(path)), plugins, path)
    values = grid.wavelength[first : last + 1].copy() if grid.spacing == "explicit" else None
    return cropped, text, values


def descriptor_path(out: str | Path) -> Path:
    """Where the cropped descriptor of the output store ``out`` is written: ``OUT.descriptor.yaml`` beside it."""
    out = Path(out)
    return out.parent / f"{out.name}.descriptor.yaml"


def plan_degrade(
    source: Store, target: ResolvedDescriptor, plugins: Plugins, out: Path, options: DegradeOptions
) -> Plan:
    """Check the source against the target and build everything a run needs; nothing is written.

    Raises
    ------
    DegradeError
        Target resolution higher than the source's (or either missing), auxiliary entries or labels the
        store cannot supply, an unknown ``--map`` label, or a target grid the source does not cover
        (without ``crop``; with it, one it covers only within the kernel's reach of its edges).
    """
    from starlabel.grid import WavelengthGrid

    r_source, r_target = _resolutions(source, target)
    aux = _aux_plan(source, target)
    labels = _label_plan(source, target, options.label_map)
    source_grid = WavelengthGrid.from_dict(source.meta["grid"])
    mode = target.model.ingest.resample
    grid = _target_grid(target)
    operator, footprint, covered = _operators(source_grid, grid, r_source, r_target, mode)
    fraction = float(covered.mean())
    cropped_yaml, values = None, None
    if not covered.all():
        if not options.crop or not operator.covered.any():
            raise DegradeError(_coverage_error(source, grid, covered, operator.covered, source_grid))
        target, cropped_yaml, values = _crop(target, plugins, grid, operator.covered, out, source)
        grid = WavelengthGrid.explicit(values, grid.unit, grid.medium) if values is not None else _target_grid(target)
        operator, footprint, _ = _operators(source_grid, grid, r_source, r_target, mode)
    model = target.model
    region_mask = np.zeros(len(grid), dtype=bool)
    for region in model.mask:
        region_mask |= (grid.wavelength >= region.start) & (grid.wavelength <= region.stop)
    normaliser = plugins.normalisers.get(model.normalise.method)(target.options["normalise"])
    arms = [(arm.start, arm.stop) for arm in model.instrument.arms]
    return Plan(
        source=source,
        target=target,
        grid=grid,
        operator=operator,
        footprint=footprint,
        region_mask=region_mask,
        normaliser=normaliser,
        arms=arms,
        aux=aux,
        labels=labels,
        r_source=r_source,
        r_target=r_target,
        covered_fraction=fraction,
        cropped_yaml=cropped_yaml,
        cropped_grid=values,
    )


__all__ = ["MAX_BAD_FRACTION", "DegradeError", "DegradeOptions", "Plan", "descriptor_path", "plan_degrade"]
