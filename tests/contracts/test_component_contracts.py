"""Contracts every registered component keeps, built-in or third-party (parametrized over what is installed)."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from starlabel.components import STATUSES, Component, InputSpec
from starlabel.lines import SpectralLine
from starlabel.plugins import load_plugins
from starlabel.testing import component_params

ALL = component_params()
READERS = component_params(kinds=("reader",))
ARCHITECTURES = component_params(kinds=("architecture",))


def random_specs(seed: int) -> list[InputSpec]:
    """Seeded input specs: a short single arm, auxiliary inputs only, then 1, 2, 3 and 1 arms of 1–300 pixels
    with 0–12 auxiliary inputs and 1–6 labels each."""
    rng = np.random.default_rng(seed)
    specs = [InputSpec((20,), 0, ("a",)), InputSpec((), 3, ("a", "b"))]
    for n_arms in (1, 2, 3, 1):
        arms = tuple(int(n) for n in rng.integers(1, 301, size=n_arms))
        labels = tuple(f"label_{i}" for i in range(int(rng.integers(1, 7))))
        specs.append(InputSpec(arms, int(rng.integers(0, 13)), labels))
    return specs


def defaults_or_none(cls: type[Component]) -> Component | None:
    """An instance with default options, or None when the component has required options."""
    try:
        return cls()
    except ValidationError as error:
        assert all(e["type"] == "missing" for e in error.errors()), error
        return None


@pytest.mark.parametrize(("kind", "cls"), ALL)
def test_declarations(kind: str, cls: type[Component]) -> None:
    assert cls.status in STATUSES
    assert cls.summary(), f"{cls.__name__} needs a docstring (first line is its summary)"
    assert isinstance(cls.citation, str) and isinstance(cls.data_model_url, str)
    json.dumps(cls.Options.model_json_schema())  # options must be describable for `survey schema`
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        cls.Options.model_validate({"surely_not_an_option": 1})


@pytest.mark.parametrize(("kind", "cls"), ALL)
def test_default_construction(kind: str, cls: type[Component]) -> None:
    instance = defaults_or_none(cls)
    if instance is None:
        pytest.skip(f"{cls.name} has required options")
    if kind == "auxiliary":
        columns = instance.columns()
        assert columns and all(isinstance(c, str) for c in columns) and len(set(columns)) == len(columns)
    if kind == "label_source":
        names = instance.label_names()
        assert names and len(set(names)) == len(names)


@pytest.mark.parametrize(("kind", "cls"), READERS)
def test_reader_identify_rejects_junk_without_raising(kind: str, cls: type[Component], junk_files: list[Path]) -> None:
    assert isinstance(inspect.getattr_static(cls, "identify"), classmethod)
    for path in junk_files:
        assert cls.identify(path) is False, f"{cls.name} claimed {path.name}"


@pytest.mark.parametrize(("kind", "cls"), ARCHITECTURES)
@pytest.mark.parametrize(
    "spec", random_specs(2024), ids=lambda s: f"arms{list(s.arm_pixels)}-aux{s.n_aux}-l{len(s.labels)}"
)
def test_architecture_builds_and_runs(kind: str, cls: type[Component], spec: InputSpec) -> None:
    torch = pytest.importorskip("torch")
    architecture = defaults_or_none(cls)
    if architecture is None:
        pytest.skip(f"{cls.name} has required options")
    torch.manual_seed(0)
    model = architecture.build(spec)  # type: ignore[attr-defined]
    torch.manual_seed(0)
    twin = architecture.build(spec)  # type: ignore[attr-defined]
    assert isinstance(model, torch.nn.Module)
    assert isinstance(model.heteroscedastic, bool) and isinstance(model.mc_dropout, bool)
    assert isinstance(model.trunk, torch.nn.Module)
    if not spec.arm_pixels:
        assert sum(p.numel() for p in model.trunk.parameters()) == 0, "no spectrum: the trunk must be empty"
    for (name, a), (_, b) in zip(model.state_dict().items(), twin.state_dict().items(), strict=True):
        assert torch.equal(a, b), f"{name} differs between two builds under the same torch.manual_seed"

    generator = torch.Generator().manual_seed(1)
    batch = 4
    flux = torch.randn(batch, sum(spec.arm_pixels), generator=generator, dtype=torch.float32)
    aux = torch.randn(batch, spec.n_aux, generator=generator, dtype=torch.float32)
    for training in (True, False):
        model.train(training)
        mean, log_var = model(flux, aux)
        assert mean.shape == (batch, len(spec.labels)) and mean.dtype == torch.float32
        assert not torch.isnan(mean).any()
        if model.heteroscedastic:
            assert log_var is not None and log_var.shape == mean.shape and not torch.isnan(log_var).any()
        else:
            assert log_var is None
        if training:
            loss = mean.square().mean() + (log_var.mean() if log_var is not None else 0.0)
            loss.backward()


def shipped_grids(reader: str) -> list[tuple[str, dict]]:
    """``(descriptor file, grid section)`` of each plugin-shipped descriptor using ``reader`` with a linear or log grid."""
    found = []
    for path, _ in load_plugins().survey_descriptors():
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        grid = document.get("grid", {})
        if document.get("instrument", {}).get("reader") == reader and grid.get("spacing", "linear") != "explicit":
            found.append((Path(path).name, grid))
    return found


@pytest.mark.parametrize(("kind", "cls"), READERS)
def test_reader_line_list_parses_and_falls_on_its_grids(kind: str, cls: type[Component]) -> None:
    import astropy.units as u

    lines = cls.spectral_lines()  # type: ignore[attr-defined]
    assert isinstance(lines, list) and all(isinstance(line, SpectralLine) for line in lines)
    if cls.line_list is not None:  # type: ignore[attr-defined]
        assert lines, f"{cls.name}: line list {cls.line_list} is empty"  # type: ignore[attr-defined]
    for line in lines:
        assert math.isfinite(line.wavelength) and line.wavelength > 0, line
        assert u.Unit(line.unit).physical_type == "length", line
        assert line.medium in ("air", "vacuum"), line
        assert line.species.strip(), line
    for name, grid in shipped_grids(cls.name) if lines else []:
        inside = [
            line for line in lines if grid["start"] <= line.in_frame(grid["unit"], grid["medium"]) <= grid["stop"]
        ]
        assert inside, f"{cls.name}: no line of {cls.line_list} falls on the grid of {name} (unit or medium wrong?)"  # type: ignore[attr-defined]
