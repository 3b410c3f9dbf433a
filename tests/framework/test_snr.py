"""``--snr`` distributions: the syntax, the errors (each listing what is allowed), and the draws' statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from starlabel.errors import SimulationError
from starlabel.snr import KINDS, SnrDistribution, parse_snr

ALLOWED = (
    "allowed: a number (20), LOW:HIGH (15:25), uniform:LOW,HIGH, loguniform:LOW,HIGH, normal:MEAN,SIGMA, "
    "lognormal:MU,SIGMA (natural log of S/N)"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20", SnrDistribution("fixed", 20.0)),
        ("7.5", SnrDistribution("fixed", 7.5)),
        ("15:25", SnrDistribution("uniform", 15.0, 25.0)),
        (" 15 : 25 ", SnrDistribution("uniform", 15.0, 25.0)),
        ("uniform:15,25", SnrDistribution("uniform", 15.0, 25.0)),
        ("Uniform: 15, 25", SnrDistribution("uniform", 15.0, 25.0)),
        ("loguniform:10,100", SnrDistribution("loguniform", 10.0, 100.0)),
        ("normal:20,3", SnrDistribution("normal", 20.0, 3.0)),
        ("normal:20,0", SnrDistribution("normal", 20.0, 0.0)),
        ("lognormal:3.0,0.5", SnrDistribution("lognormal", 3.0, 0.5)),
        ("lognormal:-1,0.5", SnrDistribution("lognormal", -1.0, 0.5)),
    ],
)
def test_syntax(text: str, expected: SnrDistribution) -> None:
    parsed = parse_snr(text)
    assert parsed == expected
    assert parse_snr(str(parsed)) == parsed  # what the report records reads back the same


def test_str_is_the_canonical_form() -> None:
    assert [str(parse_snr(t)) for t in ("20", "15:25", "loguniform:10,100", "normal:20,3")] == [
        "20",
        "uniform:15,25",
        "loguniform:10,100",
        "normal:20,3",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("fast", "not understood"),
        ("", "not understood"),
        ("gauss:20,3", "not understood"),
        ("1:2:3", "not understood"),
        ("uniform:15", "uniform takes two numbers (uniform:LOW,HIGH)"),
        ("normal:1,2,3", "normal takes two numbers (normal:MEAN,SIGMA)"),
        ("lognormal:x,1", "not understood"),
        ("0", "S/N must be > 0"),
        ("-5", "S/N must be > 0"),
        ("0:10", "S/N must be > 0"),
        ("25:15", "HIGH must be greater than LOW"),
        ("loguniform:10,10", "HIGH must be greater than LOW"),
        ("normal:-1,2", "MEAN must be > 0 and SIGMA ≥ 0"),
        ("normal:20,-2", "MEAN must be > 0 and SIGMA ≥ 0"),
        ("lognormal:3,-1", "SIGMA must be ≥ 0"),
        ("inf", "numbers must be finite"),
        ("uniform:1,nan", "numbers must be finite"),
    ],
)
def test_errors_name_the_value_and_list_what_is_allowed(text: str, problem: str) -> None:
    with pytest.raises(SimulationError) as error:
        parse_snr(text)
    assert str(error.value) == f"--snr {text!r}: {problem}; {ALLOWED}"
    assert error.value.exit_code == 2


def test_every_kind_is_listed_in_the_help() -> None:
    assert set(KINDS) == {"uniform", "loguniform", "normal", "lognormal"}
    assert all(syntax in ALLOWED for syntax in KINDS.values())


N = 20000


def draw(text: str, seed: int = 1) -> np.ndarray:
    values = parse_snr(text).sample(np.random.default_rng(seed), N)
    assert values.shape == (N,) and values.dtype == np.float64
    return values


def test_fixed_and_uniform_draws() -> None:
    assert (draw("20") == 20.0).all()
    uniform = draw("15:25")
    assert 15.0 <= uniform.min() and uniform.max() < 25.0
    assert uniform.mean() == pytest.approx(20.0, abs=0.05)
    assert uniform.std() == pytest.approx(10 / math.sqrt(12), rel=0.02)
    assert stats.kstest(uniform, stats.uniform(15, 10).cdf).pvalue > 0.01


def test_loguniform_is_uniform_in_log() -> None:
    values = draw("loguniform:10,100")
    assert 10.0 <= values.min() and values.max() <= 100.0
    assert stats.kstest(np.log(values), stats.uniform(math.log(10), math.log(10)).cdf).pvalue > 0.01
    assert np.median(values) == pytest.approx(math.sqrt(10 * 100), rel=0.03)  # the geometric mean


def test_normal_and_lognormal_draws() -> None:
    normal = draw("normal:20,3")
    assert normal.mean() == pytest.approx(20.0, abs=0.1) and normal.std() == pytest.approx(3.0, rel=0.03)
    assert stats.kstest(normal, stats.norm(20, 3).cdf).pvalue > 0.01
    lognormal = draw("lognormal:3.0,0.5")
    assert stats.kstest(np.log(lognormal), stats.norm(3.0, 0.5).cdf).pvalue > 0.01
    assert np.median(lognormal) == pytest.approx(math.exp(3.0), rel=0.03)
    assert (draw("normal:20,0") == 20.0).all()


def test_normal_draws_below_one_are_redrawn() -> None:
    values = draw("normal:2,3")  # 37% of the raw draws fall below 1
    assert values.min() >= 1.0
    truncated = stats.truncnorm((1 - 2) / 3, np.inf, loc=2, scale=3)
    assert stats.kstest(values, truncated.cdf).pvalue > 0.01
    assert values.mean() == pytest.approx(truncated.mean(), rel=0.02)


def test_draws_are_seeded() -> None:
    for text in ("15:25", "loguniform:10,100", "normal:2,3", "lognormal:3,0.5"):
        np.testing.assert_array_equal(draw(text, seed=4), draw(text, seed=4))
        assert not np.array_equal(draw(text, seed=4), draw(text, seed=5))
