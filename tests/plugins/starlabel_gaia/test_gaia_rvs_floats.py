"""``rvs_floats.parse_lists``: exact against Python's ``float`` for every spelling the archive writes."""

from __future__ import annotations

import numpy as np
import pytest

from starlabel_gaia.rvs_floats import _parse_fast, parse_lists, parse_one

MISSING = (b"nan", b"NaN", b"null")


def python_values(texts: list[bytes]) -> np.ndarray:
    """The reference: Python's correctly rounded ``float`` per token, NaN for the missing spellings."""
    out = []
    for text in texts:
        for token in text.split(b","):
            token = token.strip()
            out.append(np.nan if token.lower() in (b"nan", b"null", b"") else float(token))
    return np.array(out, dtype=np.float64)


def spell(rng: np.random.Generator, value: np.float32) -> str:
    """How a writer may spell a float32: shortest positional, Java-style ``E`` below 1e-3, or missing."""
    if np.isnan(value):
        return str(rng.choice(["NaN", "null", "nan"]))
    if value != 0 and abs(value) < 1e-3:
        return np.format_float_scientific(value, trim="0", exp_digits=1).replace("e", "E").replace("E+", "E")
    return np.format_float_positional(value, trim="0")


@pytest.mark.parametrize("seed", range(6))
def test_exact_against_python(seed: int) -> None:
    rng = np.random.default_rng(seed)
    texts, written = [], []
    for _ in range(int(rng.integers(1, 8))):
        n = int(rng.integers(1, 400))
        values = (rng.standard_normal(n) * 10.0 ** rng.uniform(-5, 3.9)).astype(np.float32)
        values[rng.random(n) < 0.05] = np.nan
        texts.append(",".join(spell(rng, v) for v in values).encode())
        written.append(values)
    parsed, counts = parse_lists(texts)
    np.testing.assert_array_equal(counts, [v.size for v in written])
    np.testing.assert_array_equal(parsed, python_values(texts))  # correctly rounded float64
    np.testing.assert_array_equal(parsed.astype(np.float32), np.concatenate(written))  # float32 round trip


def test_fast_path_taken_for_archive_spellings() -> None:
    values, points = _parse_fast([b"0.9942193,-1.25,NaN,null,9.473045E-4", b"nan,1234.5678901"])
    np.testing.assert_array_equal(values, [0.9942193, -1.25, np.nan, np.nan, 9.473045e-4, np.nan, 1234.5678901])
    assert points.size == 7


@pytest.mark.parametrize(
    "text",
    [b"1.0, 2.5, 3.0", b"12345.5,1.0", b"0.123456789012,1.5", b"1e-05,2", b"Infinity,1.0", b"1.0,,2.0", b"1.0E-30"],
)
def test_other_spellings_fall_back_exactly(text: bytes) -> None:
    assert _parse_fast([text]) is None
    (parsed, counts) = parse_lists([text])
    assert counts[0] == text.count(b",") + 1
    np.testing.assert_array_equal(parsed, python_values([text]))


def test_counts_for_empty_and_unparseable_lists() -> None:
    parsed, counts = parse_lists([b"1.5,2.5", b"", b"  ", b"1.0,abc", memoryview(b"[7.25]")[1:-1]])
    np.testing.assert_array_equal(counts, [2, 0, 0, -1, 1])
    np.testing.assert_array_equal(parsed, [1.5, 2.5, 7.25])
    assert parse_one(b"1.0,x") is None
    assert parse_one(b"") is not None and parse_one(b"").size == 0


def test_no_false_markers() -> None:
    # "0.0" and "00" are values, not the internal missing markers ("00." / "00.0")
    parsed, _ = parse_lists([b"0.0,0.5,10.0,-0.0"])
    np.testing.assert_array_equal(parsed, [0.0, 0.5, 10.0, -0.0])
    assert not np.isnan(parsed).any()
