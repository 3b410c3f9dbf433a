"""Survey descriptors: one YAML file says everything survey-specific.

:func:`load_descriptor` parses a file with ``yaml.safe_load``, validates its structure with the
pydantic models below (unknown keys refused), then validates each component reference against the
installed plugins and each ``options:`` block against that component's ``Options``. Every problem is
reported at once, as ``file:line: dotted.key: message``.
"""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator, model_validator

from starlabel.errors import DescriptorError, DescriptorIssue, UnknownComponentError
from starlabel.suggest import did_you_mean
from starlabel.yamlsource import YamlDocument, dotted, parse_yaml

if TYPE_CHECKING:
    from starlabel.plugins import Plugins

SCHEMA_VERSION = 1
"""Newest descriptor ``schema_version`` this starlabel understands."""

_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Arm(_Strict):
    """One spectral arm (or chip) of a multi-arm instrument, in the grid's unit."""

    name: str
    start: float
    stop: float


class InstrumentSection(_Strict):
    """Which reader turns files into spectra, and the instrument's resolving power."""

    reader: str = Field(description="name of a registered instrument reader")
    resolution: float | None = Field(None, gt=0, description="resolving power R = λ/Δλ")
    arms: list[Arm] = Field(default_factory=list, description="arms/chips, for per-arm network branches")
    options: dict[str, Any] = Field(default_factory=dict, description="the reader's options")


class GridSection(_Strict):
    """The wavelength grid every spectrum is resampled onto before storage."""

    start: float | None = Field(None, gt=0, description="first pixel (linear and log grids)")
    stop: float | None = Field(None, gt=0, description="last pixel (linear and log grids)")
    step: float | None = Field(None, gt=0, description="pixel step: in `unit` for linear, in dex of log10(λ) for log")
    spacing: Literal["linear", "log", "explicit"] = "linear"
    file: str | None = Field(
        None,
        description="explicit grids: file of wavelengths (text columns, .npy or FITS), looked up beside the "
        "descriptor, then in the data folder",
    )
    column: int = Field(0, ge=0, description="explicit grids: column of a text or FITS-table file")
    unit: str = "nm"
    medium: Literal["vacuum", "air"] = "vacuum"

    @field_validator("unit")
    @classmethod
    def _length_unit(cls, unit: str) -> str:
        import astropy.units as u

        try:
            parsed = u.Unit(unit)
        except ValueError:
            raise ValueError(
                f"unknown wavelength unit {unit!r}; allowed: an astropy length unit such as nm, Angstrom, um"
            ) from None
        if parsed.physical_type != "length":
            raise ValueError(
                f"{unit!r} is a {parsed.physical_type} unit; allowed: a length unit such as nm, Angstrom, um"
            )
        return unit

    @model_validator(mode="after")
    def _whole_steps(self) -> GridSection:
        if self.spacing == "explicit":
            given = [k for k in ("start", "stop", "step") if getattr(self, k) is not None]
            if self.file is None or given:
                raise ValueError(
                    "an explicit grid takes its pixels from 'file:' alone"
                    + (f"; remove {', '.join(given)}" if given else "; add file: with the wavelengths")
                )
            return self
        missing = [k for k in ("start", "stop", "step") if getattr(self, k) is None]
        if missing or self.file is not None:
            raise ValueError(
                f"a {self.spacing} grid needs start, stop and step"
                + (f" (missing: {', '.join(missing)})" if missing else "")
                + ("; 'file:' is for spacing: explicit" if self.file is not None else "")
            )
        assert self.start is not None and self.stop is not None and self.step is not None
        if self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be greater than start ({self.start})")
        span = np.log10(self.stop / self.start) if self.spacing == "log" else self.stop - self.start
        steps = span / self.step
        if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
            raise ValueError(
                f"stop - start spans {steps:.6g} steps of {self.step}; it must be a whole number "
                f"(adjust stop to {self._stop_for(round(steps)):.10g})"
            )
        return self

    def _stop_for(self, steps: int) -> float:
        assert self.start is not None and self.step is not None
        if self.spacing == "log":
            return float(self.start * 10 ** (steps * self.step))
        return self.start + steps * self.step

    @property
    def n_pixels(self) -> int:
        """Number of pixels, both ends included (linear and log grids)."""
        start, stop, step = self._parameters()
        span = np.log10(stop / start) if self.spacing == "log" else stop - start
        return int(round(span / step)) + 1

    def _parameters(self) -> tuple[float, float, float]:
        if self.start is None or self.stop is None or self.step is None:
            raise ValueError(
                f"an explicit grid's pixels are in {self.file}: use starlabel.grid.WavelengthGrid.from_section"
            )
        return self.start, self.stop, self.step

    def wavelength(self) -> np.ndarray:
        """Pixel centres in ``unit`` (float64), built as start + i*step, never by accumulation (linear, log)."""
        start, _, step = self._parameters()
        index = np.arange(self.n_pixels, dtype=np.float64)
        if self.spacing == "log":
            return start * 10.0 ** (index * step)
        return start + index * step


class MaskRegion(_Strict):
    """A wavelength range (grid unit) whose pixels are always masked."""

    start: float
    stop: float
    why: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> MaskRegion:
        if self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be greater than start ({self.start})")
        return self


class NormaliseSection(_Strict):
    """Pseudo-continuum normalisation applied during ingest."""

    method: str = Field("none", description="name of a registered normaliser")
    options: dict[str, Any] = Field(default_factory=dict)


class RestFrameSection(_Strict):
    """Per-star radial velocity removed during ingest (omit for spectra the survey already puts in the rest frame)."""

    source: Literal["meta", "table"] = Field(
        description="meta: a per-spectrum value the reader exposes (a header keyword); table: a column of a table file"
    )
    key: str = Field(description="meta key or table column holding the radial velocity")
    unit: str = Field("km/s", description="velocity unit")
    table: str | None = Field(None, description="with source: table, glob of the table file under the data root")
    id_column: str = Field("source_id", description="with source: table, the column joined to source_id")

    @model_validator(mode="after")
    def _table_needs_file(self) -> RestFrameSection:
        if self.source == "table" and not self.table:
            raise ValueError("source: table needs 'table:', the glob of the file holding the velocities")
        return self


class AuxiliaryEntry(_Strict):
    """One auxiliary provider and its options; stored as ``aux/<name>``."""

    provider: str = Field(description="name of a registered auxiliary provider")
    name: str | None = Field(None, pattern=_NAME_PATTERN, description="store key; default: the provider name")
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        """Store key of this entry."""
        return self.name or self.provider


class LabelsSection(_Strict):
    """Where reference labels come from, which ones, and the selection cuts."""

    source: str = Field(description="name of a registered label source")
    columns: list[str] = Field(min_length=1)
    cuts: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("columns")
    @classmethod
    def _unique(cls, columns: list[str]) -> list[str]:
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"labels listed more than once: {', '.join(repeated)}")
        return columns


class NetworkSection(_Strict):
    """The network architecture and its hyper-parameters."""

    architecture: str = Field(description="name of a registered architecture")
    options: dict[str, Any] = Field(default_factory=dict)


class SplitSection(_Strict):
    """Fractions of stars (by a seeded hash of source_id) in each split."""

    train: float = Field(0.8, gt=0, lt=1)
    valid: float = Field(0.1, gt=0, lt=1)
    test: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitSection:
        total = self.train + self.valid + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"train + valid + test must be 1, got {total:g}")
        return self


class AugmentSection(_Strict):
    """Training-time augmentation of the spectra (never applied to validation or prediction)."""

    snr: tuple[float, float] | None = Field(
        None, description="add noise down to a target S/N drawn log-uniformly in [low, high], from the per-pixel ivar"
    )
    rv_kms: float = Field(0.0, ge=0, description="shift by a radial velocity drawn uniformly in ±rv_kms (km/s)")
    mask_fraction: float = Field(0.0, ge=0, lt=1, description="mask a random fraction (up to this) of the pixels")
    probability: float = Field(1.0, ge=0, le=1, description="chance that a given star is augmented")

    @field_validator("snr")
    @classmethod
    def _snr_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not (0 < value[0] <= value[1]):
            raise ValueError(f"snr must be [low, high] with 0 < low <= high, got {list(value)}")
        return value


class TrainingSection(_Strict):
    """How networks are trained."""

    seed: int = 0
    ensemble: int = Field(1, ge=1, description="number of ensemble members (each with its own seed and train/valid split)")
    epochs: int = Field(50, ge=1, description="maximum epochs per member")
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0, description="peak AdamW learning rate")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay")
    schedule: Literal["cosine", "constant"] = Field(
        "cosine", description="learning rate per epoch: linear warm-up then cosine decay to 1%, or constant"
    )
    warmup_epochs: int = Field(1, ge=0)
    patience: int = Field(10, ge=1, description="epochs without validation improvement before stopping")
    loss: Literal["auto", "mse", "gaussian_nll"] = Field(
        "auto",
        description="masked mean squared error, or Gaussian negative log-likelihood with the network's variance "
        "head (auto: gaussian_nll when the architecture is heteroscedastic)",
    )
    label_errors: bool = Field(
        True, description="gaussian_nll adds the reference-label errors to the predicted variance"
    )
    mc_samples: int = Field(16, ge=1, description="Monte-Carlo dropout passes at prediction (MC-dropout networks)")
    buffer_rows: int = Field(8192, ge=1, description="shuffle-buffer size in rows (bounds memory)")
    augment: AugmentSection = Field(default_factory=AugmentSection)
    split: SplitSection = Field(default_factory=SplitSection)


class IngestSection(_Strict):
    """How spectra go into a store."""

    duplicates: Literal["keep_highest_snr", "error"] = Field(
        "keep_highest_snr", description="a source id seen twice: keep the row of highest S/N, or stop with an error"
    )
    resample: Literal["flux", "interpolate"] = Field(
        "flux", description="flux-conserving rebinning, or linear interpolation, onto the grid"
    )
    chunk_rows: int = Field(1024, ge=16, description="rows per store chunk (and per committed unit of work)")


class DataSection(_Strict):
    """Where the survey files are, relative to ``root`` (or to what ``locate_survey_data`` finds)."""

    release: str | None = None
    root: str | None = Field(None, description="folder, relative to the descriptor file; default: located by plugins")
    spectra: Annotated[
        list[str],
        WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
    ] = Field(default_factory=list, description="glob pattern(s) of spectrum files")
    labels: str | None = Field(None, description="label table file")
    auxiliary: dict[str, str] = Field(default_factory=dict, description="aux entry name → file glob")

    @field_validator("spectra", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Descriptor(_Strict):
    """A survey descriptor (schema version 1)."""

    schema_version: int = Field(ge=1)
    name: str = Field(pattern=_NAME_PATTERN)
    description: str = ""
    instrument: InstrumentSection
    grid: GridSection
    mask: list[MaskRegion] = Field(default_factory=list)
    normalise: NormaliseSection = Field(default_factory=NormaliseSection)
    rest_frame: RestFrameSection | None = None
    auxiliary: list[AuxiliaryEntry] = Field(default_factory=list)
    labels: LabelsSection | None = None
    network: NetworkSection | None = None
    training: TrainingSection = Field(default_factory=TrainingSection)
    ingest: IngestSection = Field(default_factory=IngestSection)
    data: DataSection = Field(default_factory=DataSection)

    @model_validator(mode="after")
    def _unique_aux(self) -> Descriptor:
        keys = [entry.key for entry in self.auxiliary]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(
                f"auxiliary entries share the store key(s) {', '.join(repeated)}; give each a distinct 'name:'"
            )
        return self


@dataclass
class ResolvedDescriptor:
    """A validated descriptor with each component's options validated by that component.

    Attributes
    ----------
    model : Descriptor
        The validated document.
    path : Path | None
        File it came from.
    options : dict
        Validated ``Options`` (or ``Cuts``) per dotted key: ``instrument``, ``auxiliary[0]``,
        ``labels``, ``labels.cuts``, ``network``.
    """

    model: Descriptor
    path: Path | None
    options: dict[str, BaseModel]

    @property
    def name(self) -> str:
        """Survey name."""
        return self.model.name

    def resolved(self) -> dict[str, Any]:
        """The descriptor as a plain dict, with every default (including component options) filled in."""
        out = self.model.model_dump(mode="json")
        out["instrument"]["options"] = self.options["instrument"].model_dump(mode="json")
        out["normalise"]["options"] = self.options["normalise"].model_dump(mode="json")
        for index, entry in enumerate(out["auxiliary"]):
            entry["options"] = self.options[f"auxiliary[{index}]"].model_dump(mode="json")
            entry["name"] = entry["name"] or entry["provider"]
        if out["labels"] is not None:
            out["labels"]["options"] = self.options["labels"].model_dump(mode="json")
            out["labels"]["cuts"] = self.options["labels.cuts"].model_dump(mode="json")
        if out["network"] is not None:
            out["network"]["options"] = self.options["network"].model_dump(mode="json")
        return out

    def hash(self) -> str:
        """SHA-256 of what defines a model's inputs and outputs (everything but ``description`` and ``data``)."""
        content = {k: v for k, v in self.resolved().items() if k not in ("description", "data")}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def load_descriptor(path: str | Path, plugins: Plugins) -> ResolvedDescriptor:
    """Read and fully validate the descriptor file at ``path``.

    Raises
    ------
    starlabel.errors.DescriptorError
        With every problem found, each naming file, line and dotted key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DescriptorError(
            [DescriptorIssue(str(path), None, "", f"cannot read: {error.strerror or error}")]
        ) from None
    return validate_document(parse_yaml(text, str(path)), plugins, path)


def validate_document(doc: YamlDocument, plugins: Plugins, path: Path | None = None) -> ResolvedDescriptor:
    """Validate a parsed YAML document against the models and the installed components."""
    issues = list(doc.duplicates)
    data = doc.data
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise DescriptorError(
            [DescriptorIssue(doc.file, doc.line_of(()), "", f"a descriptor must be a mapping of keys, got {got}")]
        )
    version = data.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        message = (
            f"descriptor schema_version {version} is newer than this starlabel supports ({SCHEMA_VERSION}); "
            f"upgrade starlabel (pip install -U starlabel) or write schema_version: {SCHEMA_VERSION}"
        )
        raise DescriptorError([doc.issue(("schema_version",), message)])
    try:
        model = Descriptor.model_validate(data)
    except ValidationError as error:
        raise DescriptorError(issues + _pydantic_issues(error, doc, Descriptor, ())) from None

    options: dict[str, BaseModel] = {}
    _component(
        plugins, "reader", model.instrument.reader, model.instrument.options, ("instrument",), doc, issues, options
    )
    _component(
        plugins, "normaliser", model.normalise.method, model.normalise.options, ("normalise",), doc, issues, options
    )
    for index, entry in enumerate(model.auxiliary):
        _component(plugins, "auxiliary", entry.provider, entry.options, ("auxiliary", index), doc, issues, options)
    if model.labels is not None:
        cls = _component(
            plugins, "label_source", model.labels.source, model.labels.options, ("labels",), doc, issues, options
        )
        if cls is not None:
            cuts = _validate_model(cls.Cuts, model.labels.cuts, ("labels", "cuts"), doc, issues)
            if cuts is not None:
                options["labels.cuts"] = cuts
            if "labels" in options:
                _check_label_columns(cls, options["labels"], model.labels.columns, doc, issues)
    if model.network is not None:
        _component(
            plugins,
            "architecture",
            model.network.architecture,
            model.network.options,
            ("network",),
            doc,
            issues,
            options,
        )
    _check_mask(model, doc, issues)
    _check_data(model, doc, issues)
    if issues:
        raise DescriptorError(issues)
    return ResolvedDescriptor(model, path, options)


# ----------------------------------------------------------------------------------------------- helpers
_NAME_KEYS = {
    "reader": "reader",
    "normaliser": "method",
    "auxiliary": "provider",
    "label_source": "source",
    "architecture": "architecture",
}


def _component(
    plugins: Plugins,
    kind: str,
    name: str,
    raw: Mapping[str, Any],
    where: tuple[str | int, ...],
    doc: YamlDocument,
    issues: list[DescriptorIssue],
    options: dict[str, BaseModel],
) -> Any:
    name_key = (*where, _NAME_KEYS[kind])
    try:
        cls = plugins.registry(kind).get(name)
    except UnknownComponentError as error:
        issues.append(doc.issue(name_key, str(error)))
        return None
    validated = _validate_model(cls.Options, raw, (*where, "options"), doc, issues)
    if validated is not None:
        options[dotted(where)] = validated
    return cls


def _validate_model(
    model: type[BaseModel], raw: Any, where: tuple[str | int, ...], doc: YamlDocument, issues: list[DescriptorIssue]
) -> BaseModel | None:
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        issues.extend(_pydantic_issues(error, doc, model, where))
        return None


def _check_label_columns(
    cls: Any, opts: BaseModel, columns: list[str], doc: YamlDocument, issues: list[DescriptorIssue]
) -> None:
    try:
        available = list(cls(opts).label_names())
    except Exception as error:  # a label source that cannot list its labels is reported, not fatal
        issues.append(doc.issue(("labels",), f"{cls.name} cannot list its labels: {error}"))
        return
    for index, column in enumerate(columns):
        if column not in available:
            key = ("labels", "columns", index)
            hint = f"{did_you_mean(column, available)} Available: {', '.join(available)}"
            issues.append(doc.issue(key, f"label source {cls.name!r} has no label {column!r}.{hint}"))


def _check_mask(model: Descriptor, doc: YamlDocument, issues: list[DescriptorIssue]) -> None:
    grid = model.grid
    if grid.start is None or grid.stop is None:  # explicit grid: checked when its file is read
        return
    for index, region in enumerate(model.mask):
        if region.stop <= grid.start or region.start >= grid.stop:
            key = ("mask", index)
            issues.append(
                doc.issue(
                    key,
                    f"region {region.start}–{region.stop} lies outside the grid {grid.start}–{grid.stop} {grid.unit}",
                )
            )


def _check_data(model: Descriptor, doc: YamlDocument, issues: list[DescriptorIssue]) -> None:
    keys = [entry.key for entry in model.auxiliary]
    for name in model.data.auxiliary:
        if name not in keys:
            key = ("data", "auxiliary", name)
            issues.append(
                doc.issue(
                    key,
                    f"no auxiliary entry is named {name!r}.{did_you_mean(name, keys)} Entries: {', '.join(keys) or '(none)'}",
                )
            )


def _pydantic_issues(
    error: ValidationError, doc: YamlDocument, model: type[BaseModel], prefix: tuple[str | int, ...]
) -> list[DescriptorIssue]:
    out = []
    for item in error.errors(include_url=False):
        loc = tuple(part for part in item["loc"] if not (isinstance(part, str) and part.startswith("function-")))
        path = (*prefix, *loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            allowed = _fields_at(model, loc[:-1])
            message = (
                f"unknown key {loc[-1]!r}.{did_you_mean(str(loc[-1]), allowed)} Allowed keys: {', '.join(allowed)}"
            )
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = item["msg"].removeprefix("Value error, ")
            if kind not in ("value_error", "assertion_error"):
                message += f"; got {item['input']!r}"
        out.append(doc.issue(path, message))
    return out


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the (nested) model found at ``loc`` under ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


__all__ = [
    "SCHEMA_VERSION",
    "Descriptor",
    "ResolvedDescriptor",
    "load_descriptor",
    "validate_document",
]
