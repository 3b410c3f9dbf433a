"""``float_text.format_rows``: float32 written as the archive's Java writer does, shortest and exact."""

from __future__ import annotations

import numpy as np
import pytest

from starlabel_gaia.float_text import format_rows
from starlabel_gaia.rvs_floats import parse_lists


def significant_digits(value: np.float32) -> int:
    """Digits of numpy's shortest unique repr of a float32 (Dragon4), the reference for 'shortest'."""
    mantissa = np.format_float_scientific(value, unique=True, trim="-").split("e")[0]
    return len(mantissa.replace("-", "").replace(".", "").lstrip("0") or "0")


def digits_written(token: bytes) -> int:
    """Significant digits of one written value (``-0.00123``, ``4.5E-17``, ``1200.0``)."""
    digits = token.split(b"E")[0].replace(b"-", b"").replace(b".", b"").strip(b"0")
    return len(digits) or 1


@pytest.mark.parametrize("seed", range(3))
def test_round_trip_and_shortest(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal((40, 50)) * 10.0 ** rng.uniform(-40, 37, (40, 50))).astype(np.float32)
    values[rng.random(values.shape) < 0.1] = np.float32(1.0) + rng.integers(0, 9, 1)[0]  # short decimals too
    rows = format_rows(values)
    for row, text in zip(values, rows, strict=True):
        tokens = text.split(b",")
        back = np.array([float(t) for t in tokens], dtype=np.float64).astype(np.float32)
        np.testing.assert_array_equal(back, row)  # Python's correctly rounded float, then float32
        written = np.array([digits_written(t) for t in tokens])
        shortest = np.array([significant_digits(v) for v in row])
        # below 2**24 no short decimal is a tie between two float32s: exactly the shortest digits;
        # above, a tie is refused (one more digit, still exact)
        small = np.abs(row) < 2**24
        np.testing.assert_array_equal(written[small], shortest[small])
        assert np.all((written[~small] >= shortest[~small]) & (written[~small] <= shortest[~small] + 1))
    parsed, counts = parse_lists(rows)  # the reader's own parser agrees
    assert np.all(counts == values.shape[1])
    np.testing.assert_array_equal(parsed.astype(np.float32), values.ravel())


def test_java_spellings() -> None:
    values = np.array(
        [
            [
                0.0,
                -0.0,
                1.0,
                -2.5,
                0.001,
                9.5e-4,
                1.0e-5,
                123456.7,
                9999999.0,
                1.0e7,
                3.3061049e-16,
                0.98345,
                np.nan,
                np.inf,
            ]
        ],
        dtype=np.float32,
    )
    expected = b"0.0,-0.0,1.0,-2.5,0.001,9.5E-4,1.0E-5,123456.7,9999999.0,1.0E7,3.3061049E-16,0.98345,null,null"
    assert format_rows(values) == [expected]


def test_rows_are_separate_and_shapes_checked() -> None:
    values = np.arange(12, dtype=np.float32).reshape(3, 4) / 4
    assert format_rows(values) == [b"0.0,0.25,0.5,0.75", b"1.0,1.25,1.5,1.75", b"2.0,2.25,2.5,2.75"]
    assert format_rows(np.zeros((2, 0))) == [b"", b""]
    with pytest.raises(ValueError, match="2-D"):
        format_rows(np.zeros(3))
