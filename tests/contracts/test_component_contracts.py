"""Contracts every registered component keeps, built-in or third-party (parametrized over what is installed)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from starlabel.components import STATUSES, Component
from starlabel.testing import component_params

ALL = component_params()
READERS = component_params(kinds=("reader",))


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
