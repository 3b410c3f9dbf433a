from __future__ import annotations

from pathlib import Path

import pytest
from toys import ToyLowPriority, ToyReader, ToyTwin

from starlabel.components import InstrumentReader
from starlabel.errors import AmbiguousReaderError, NoReaderError
from starlabel.identify import choose_reader, matching_readers
from starlabel.registry import Registry


def registry(*classes: type[InstrumentReader]) -> Registry[InstrumentReader]:
    reg: Registry[InstrumentReader] = Registry(InstrumentReader)
    for cls in classes:
        reg.add(cls, "toy")
    return reg


class Raises(ToyReader):
    """Breaks the never-raise promise."""

    name = "toy_raises"
    priority = 100

    @classmethod
    def identify(cls, path: Path) -> bool:
        raise OSError("disk on fire")


def test_one_match_and_priority_decides() -> None:
    assert choose_reader("x.low", registry(ToyReader, ToyLowPriority)) is ToyLowPriority
    assert choose_reader("x.toy", registry(ToyReader, ToyLowPriority)) is ToyReader
    assert [c.name for c in matching_readers("x.toy", registry(ToyReader, ToyLowPriority))] == ["toy_reader", "toy_low"]


def test_no_reader_lists_readers_tried() -> None:
    with pytest.raises(NoReaderError) as info:
        choose_reader("spectrum.fits", registry(ToyReader, ToyLowPriority, Raises))
    assert str(info.value) == (
        "spectrum.fits: no instrument reader recognises this file (tried: toy_low, toy_raises, toy_reader); "
        "name the reader in the descriptor (instrument.reader) or check the file's format"
    )


def test_tie_is_ambiguous_and_lists_candidates() -> None:
    with pytest.raises(AmbiguousReaderError) as info:
        choose_reader("x.toy", registry(ToyReader, ToyTwin, ToyLowPriority))
    assert str(info.value) == (
        "x.toy: ambiguous, several readers of equal priority recognise this file: toy_reader, toy_twin; "
        "name one in the descriptor (instrument.reader)"
    )
