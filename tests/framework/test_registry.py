from __future__ import annotations

from pathlib import Path

import pytest

from starlabel.components import AuxiliaryProvider, ComponentOptions, InstrumentReader
from starlabel.errors import DuplicateComponentError, InvalidComponentError, UnknownComponentError
from starlabel.registry import Registry


class ReaderA(InstrumentReader):
    """A reader."""

    name = "gaia_parallax_reader"

    def read(self, path: Path):  # pragma: no cover - never called
        raise NotImplementedError


class ReaderB(ReaderA):
    """Same name as ReaderA."""


class Incomplete(InstrumentReader):
    """Forgets read()."""

    name = "incomplete"


def test_duplicate_name_names_both_classes() -> None:
    registry = Registry(InstrumentReader)
    registry.add(ReaderA, "plugin_one")
    with pytest.raises(DuplicateComponentError) as info:
        registry.add(ReaderB, "plugin_two")
    assert str(info.value) == (
        "duplicate instrument reader name 'gaia_parallax_reader': "
        f"{__name__}.ReaderA (plugin plugin_one) and {__name__}.ReaderB (plugin plugin_two) both register it; "
        "rename one of them or block one plugin with STARLABEL_DISABLE_PLUGINS"
    )


def test_unknown_name_suggests_and_lists() -> None:
    registry = Registry(InstrumentReader)
    registry.add(ReaderA, "p")
    with pytest.raises(UnknownComponentError) as info:
        registry.get("gaia_paralax_reader")
    assert str(info.value) == (
        "unknown instrument reader 'gaia_paralax_reader'. Did you mean gaia_parallax_reader? "
        "Available: gaia_parallax_reader"
    )


def test_unknown_name_without_close_match() -> None:
    registry = Registry(InstrumentReader)
    with pytest.raises(
        UnknownComponentError, match=r"^unknown instrument reader 'zzz'. Available: \(none installed\)$"
    ):
        registry.get("zzz")


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        (object(), "must be a subclass of starlabel.components.InstrumentReader"),
        (AuxiliaryProvider, "must be a subclass of starlabel.components.InstrumentReader"),
        (Incomplete, "it does not implement read"),
    ],
)
def test_invalid_components_refused(candidate: object, message: str) -> None:
    with pytest.raises(InvalidComponentError, match=message):
        Registry(InstrumentReader).add(candidate, "p")


def test_bad_name_and_status_refused() -> None:
    class BadName(ReaderA):
        name = "Bad-Name"

    class BadStatus(ReaderA):
        name = "fine"
        status = "beta"  # type: ignore[assignment]

    class BadOptions(ReaderA):
        name = "fine2"
        Options = dict  # type: ignore[assignment]

    with pytest.raises(InvalidComponentError, match="lower-case letters"):
        Registry(InstrumentReader).add(BadName, "p")
    with pytest.raises(InvalidComponentError, match="status 'beta' is not one of stable, experimental, stub"):
        Registry(InstrumentReader).add(BadStatus, "p")
    with pytest.raises(InvalidComponentError, match="'Options' must be a pydantic model class"):
        Registry(InstrumentReader).add(BadOptions, "p")


def test_options_validated_on_construction() -> None:
    class Opts(ComponentOptions):
        width: int = 3

    class WithOptions(ReaderA):
        name = "with_options"
        Options = Opts

    assert WithOptions().options.width == 3
    assert WithOptions({"width": 5}).options.width == 5
    with pytest.raises(Exception, match="Extra inputs are not permitted"):
        WithOptions({"widht": 5})
