"""Signal-to-noise distributions given on the command line (``--snr``) for simulated and degraded spectra.

Syntax (whitespace ignored):

``20``
    every spectrum at S/N 20;
``15:25`` or ``uniform:15,25``
    uniform between 15 and 25;
``loguniform:10,100``
    uniform in log S/N;
``normal:20,3``
    normal with mean 20 and standard deviation 3, redrawn below 1;
``lognormal:3.0,0.5``
    exp of a normal with mean 3.0 and standard deviation 0.5 (natural log of S/N).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from starlabel.errors import SimulationError

KINDS: dict[str, str] = {
    "uniform": "uniform:LOW,HIGH",
    "loguniform": "loguniform:LOW,HIGH",
    "normal": "normal:MEAN,SIGMA",
    "lognormal": "lognormal:MU,SIGMA (natural log of S/N)",
}
"""Distribution kinds and their syntax; a plain number means a fixed S/N and ``LOW:HIGH`` a uniform one."""

_HELP = "allowed: a number (20), LOW:HIGH (15:25), " + ", ".join(KINDS.values())


@dataclass(frozen=True)
class SnrDistribution:
    """A distribution of per-spectrum S/N.

    Attributes
    ----------
    kind : str
        ``fixed`` or one of :data:`KINDS`.
    a, b : float
        Its two parameters (``b`` unused for ``fixed``).
    """

    kind: str
    a: float
    b: float = 0.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Return ``n`` S/N values (float64, all ≥ 1 except where a fixed or uniform value is lower)."""
        if self.kind == "fixed":
            return np.full(n, self.a)
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b, n)
        if self.kind == "loguniform":
            return np.exp(rng.uniform(math.log(self.a), math.log(self.b), n))
        if self.kind == "lognormal":
            return np.exp(rng.normal(self.a, self.b, n))
        values = rng.normal(self.a, self.b, n)
        for _ in range(100):
            low = values < 1.0
            if not low.any():
                break
            values[low] = rng.normal(self.a, self.b, int(low.sum()))
        return np.maximum(values, 1.0)

    def __str__(self) -> str:
        return f"{self.a:g}" if self.kind == "fixed" else f"{self.kind}:{self.a:g},{self.b:g}"


def parse_snr(text: str) -> SnrDistribution:
    """Parse a ``--snr`` value (see the module docstring for the syntax).

    Raises
    ------
    starlabel.errors.SimulationError
        The text is not one of the allowed forms, or its numbers are out of range (S/N must be > 0,
        LOW < HIGH, SIGMA ≥ 0), naming the value and what is allowed.
    """
    raw = text
    text = "".join(text.split()).lower()
    try:
        if ":" not in text:
            dist = SnrDistribution("fixed", float(text))
        else:
            head, _, tail = text.partition(":")
            if head in KINDS:
                parts = tail.split(",")
                if len(parts) != 2:
                    raise ValueError(f"{head} takes two numbers ({KINDS[head]})")
                dist = SnrDistribution(head, float(parts[0]), float(parts[1]))
            else:
                dist = SnrDistribution("uniform", float(head), float(tail))
    except ValueError as error:
        detail = str(error) if "takes two" in str(error) else "not understood"
        raise SimulationError(f"--snr {raw!r}: {detail}; {_HELP}") from None
    _check(dist, raw)
    return dist


def _check(dist: SnrDistribution, raw: str) -> None:
    values = (dist.a, dist.b)
    if not all(math.isfinite(v) for v in values):
        raise SimulationError(f"--snr {raw!r}: numbers must be finite; {_HELP}")
    problem = ""
    if dist.kind in ("fixed", "uniform", "loguniform") and dist.a <= 0:
        problem = "S/N must be > 0"
    elif dist.kind in ("uniform", "loguniform") and not dist.b > dist.a:
        problem = "HIGH must be greater than LOW"
    elif dist.kind == "normal" and (dist.a <= 0 or dist.b < 0):
        problem = "MEAN must be > 0 and SIGMA ≥ 0"
    elif dist.kind == "lognormal" and dist.b < 0:
        problem = "SIGMA must be ≥ 0"
    if problem:
        raise SimulationError(f"--snr {raw!r}: {problem}; {_HELP}")
