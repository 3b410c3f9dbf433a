"""``rvs_floats_arrow.parse_equal_lists``: Arrow's parse agrees bit for bit with ``parse_lists`` or declines."""

from __future__ import annotations

import numpy as np
import pytest

from starlabel_gaia.rvs_floats import parse_lists
from starlabel_gaia.rvs_floats_arrow import parse_equal_lists

LENGTH = 7


def reference(texts: list[bytes]) -> np.ndarray:
    """``parse_lists``' values of ``texts`` (each must hold LENGTH values), one row per text."""
    values, counts = parse_lists(texts)
    assert list(counts) == [LENGTH] * len(texts)
    return values.reshape(len(texts), LENGTH)


def assert_same_bits(parsed: np.ndarray | None, texts: list[bytes]) -> None:
    """Equal to the general parser as float64 bits (NaN where it has NaN) and as the stored float32 bytes."""
    expected = reference(texts)
    assert parsed is not None
    assert parsed.shape == expected.shape and parsed.dtype == np.float64
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(parsed), nan)
    np.testing.assert_array_equal(parsed.view(np.uint64)[~nan], expected.view(np.uint64)[~nan])
    with np.errstate(over="ignore"):  # values beyond float32 become inf in both
        stored, expected_stored = parsed.astype(np.float32)[~nan], expected.astype(np.float32)[~nan]
    np.testing.assert_array_equal(stored.view(np.uint32), expected_stored.view(np.uint32))


@pytest.mark.parametrize(
    "texts",
    [
        [b"0.9942193,1.0037086,0.99856293,1.00835,0.99952966,0.99445605,0.9991499"],  # archive float32 spellings
        [b"null,NaN,nan,,1.5,null,-2.25", b"1,2,3,4,5,6,7"],  # missing values and integers
        [b"9.473045E-4,1e-05,2.5e+3,-1.0E-30,3E2,1.5e-310,4.9e-324"],  # exponents, subnormals
        [b"-0.5,-0.0,-1234.5678,1234.5678901,99999.125,123456789.5,-7.0"],  # signs, 4 and more integer digits
        [b"1.7976931348623157e308,2.2250738585072014e-308,0.1,0.2,0.3,1e23,8.98846567431158e307"],
        [b" 1.5,2.5 ,\t3.5,+4.5,.5,5.,1.00000000000000000000001"],  # spaces, plus sign, long fractions
        [b"inf,-inf,Infinity,-Infinity,1e400,-1e400,1e-400"],  # infinities and overflow
        [memoryview(b"[1.25,2.5,3.75,5.0,6.25,7.5,8.75]")[1:-1]],  # a slice of a larger buffer
    ],
)
def test_agrees_with_the_general_parser(texts: list[bytes]) -> None:
    assert_same_bits(parse_equal_lists(texts, LENGTH), [bytes(t) for t in texts])


@pytest.mark.parametrize("seed", range(4))
def test_random_float32_spellings_round_trip(seed: int) -> None:
    """Shortest float32 spellings (positional and Java-style exponents), many magnitudes, missing values."""
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal((40, LENGTH)) * 10.0 ** rng.uniform(-8, 5, (40, LENGTH))).astype(np.float32)
    values[rng.random(values.shape) < 0.05] = np.nan
    texts = []
    for row in values:
        cells = []
        for v in row:
            if np.isnan(v):
                cells.append(str(rng.choice(["NaN", "null", ""])))
            elif abs(v) < 1e-3:
                cells.append(np.format_float_scientific(v, trim="0").replace("e", "E"))
            else:
                cells.append(np.format_float_positional(v, trim="0"))
        texts.append(",".join(cells).encode())
    parsed = parse_equal_lists(texts, LENGTH)
    assert_same_bits(parsed, texts)
    assert parsed is not None
    stored = parsed.astype(np.float32)
    np.testing.assert_array_equal(stored[~np.isnan(values)], values[~np.isnan(values)])  # float32 round trip


@pytest.mark.parametrize("seed", range(3))
def test_random_decimals_correctly_rounded(seed: int) -> None:
    """Up to 20 significant digits and any exponent: the same float64 as Python's ``float``."""
    rng = np.random.default_rng(100 + seed)
    texts = []
    for _ in range(30):
        cells = []
        for _ in range(LENGTH):
            digits = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 21))))
            point = int(rng.integers(0, len(digits) + 1))
            cell = digits[:point] + "." + digits[point:] if point < len(digits) else digits
            if rng.random() < 0.3:
                cell += f"e{int(rng.integers(-330, 310))}"
            cells.append(("-" if rng.random() < 0.5 else "") + cell)
        texts.append(",".join(cells).encode())
    parsed = parse_equal_lists(texts, LENGTH)
    expected = np.array([[float(c) for c in t.split(b",")] for t in texts])
    assert parsed is not None
    np.testing.assert_array_equal(parsed.view(np.uint64), expected.view(np.uint64))


@pytest.mark.parametrize(
    "text, why",
    [
        (b"1,2,3,4,5,6", "six values"),
        (b"1,2,3,4,5,6,7,8", "eight values"),
        (b"1,2,3,4,5,6,", "an empty last value Arrow would drop"),
        (b"NULL,2,3,4,5,6,7", "upper-case NULL (the general parser reads it)"),
        (b"\x0b1,2,3,4,5,6,7", "a vertical tab Python strips and Arrow does not"),
        (b"1\r,2,3,4,5,6,7", "a carriage return Arrow would end a line at"),
        (b"\xef\xbb\xbf1,2,3,4,5,6,7", "a byte-order mark Arrow would drop"),
        (b"1,abc,3,4,5,6,7", "a word"),
        (b"1_0,2,3,4,5,6,7", "an underscore Python accepts"),
        (b'"1",2,3,4,5,6,7', "a quote"),
        (b"", "an empty list"),
    ],
)
def test_declines_what_it_cannot_read_exactly(text: bytes, why: str) -> None:
    assert parse_equal_lists([b"1,2,3,4,5,6,7", text], LENGTH) is None, why


def test_declines_nothing_to_parse() -> None:
    assert parse_equal_lists([], LENGTH) is None


def test_values_of_sliced_arrow_arrays_with_nulls() -> None:
    """Nulls read from the validity bits at any offset (a slice starting inside a byte)."""
    import pyarrow as pa

    from starlabel_gaia.rvs_floats_arrow import _float64_values

    values = [float(i) if i % 3 else None for i in range(40)]
    array = pa.array(values, type=pa.float64())
    for start in (0, 3, 11):
        got = _float64_values(array.slice(start, 25))
        expected = np.array([np.nan if v is None else v for v in values[start : start + 25]])
        np.testing.assert_array_equal(got, expected)
    assert _float64_values(pa.array([1.5, 2.5])).tolist() == [1.5, 2.5]
