"""Synthesis rate of the built-in ``linelist`` synthesizer on four survey set-ups, beside a baseline.

    python bench/synth.py [--n 2000] [--baseline-n 50] [--threads 2] [--seed 1]

For each set-up (Gaia RVS, Gaia-ESO GIRAFFE HR15N, APOGEE apStar, a 4MOST-LR-like grid) it draws ``n`` random
FGK labels (4000-7000 K, log g 1-5, [M/H] -2..0.5), synthesises them with the vectorised model (one thread,
then ``--threads`` threads) and, as the baseline measured in the same run, the same model called star by star
in a Python loop on the first ``baseline-n`` stars. Prints spectra per second (wall clock, and per CPU second
for the one-thread run, which a busy machine disturbs less) and the speed-up. Best of two runs each.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from starlabel_synth.model import LineListSynthesizer

SETUPS: dict[str, tuple[Callable[[], np.ndarray], float]] = {
    "RVS 846-870 nm, 0.01 nm": (lambda: np.arange(846.0, 870.0 + 1e-9, 0.01), 11500.0),
    "GIRAFFE HR15N 647-679 nm, 0.005 nm": (lambda: np.arange(647.0, 679.0 + 1e-9, 0.005), 17000.0),
    "APOGEE apStar log grid": (lambda: 10 ** (4.179 + 6e-6 * np.arange(8575)) / 10.0, 22500.0),
    "4MOST-LR-like 370-950 nm, log grid": (
        lambda: np.exp(np.arange(np.log(370.0), np.log(950.0), 1.0 / (3 * 6500))),
        6500.0,
    ),
}


def draw_labels(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random FGK dwarfs and giants."""
    return {
        "teff": rng.uniform(4000.0, 7000.0, n),
        "logg": rng.uniform(1.0, 5.0, n),
        "m_h": rng.uniform(-2.0, 0.5, n),
        "alpha_m": rng.uniform(-0.1, 0.4, n),
    }


def rate(run: Callable[[], object], n: int) -> tuple[float, float]:
    """Spectra per wall-clock second and per CPU second of ``run`` (which synthesises ``n``), best of two."""
    wall = cpu = np.inf
    for _ in range(2):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return n / wall, n / cpu


def measure(
    wave: np.ndarray, resolution: float, labels: dict[str, np.ndarray], baseline_n: int, threads: int
) -> tuple[float, float, float, float]:
    """Rates of one set-up: vectorised (wall, CPU), threaded (wall), star-by-star loop (wall)."""
    single = LineListSynthesizer({"threads": 1})
    threaded = LineListSynthesizer({"threads": threads})
    n = labels["teff"].size
    single.synthesize({key: value[:2] for key, value in labels.items()}, wave, resolution)  # warm-up
    one, one_cpu = rate(lambda: single.synthesize(labels, wave, resolution), n)
    many, _ = rate(lambda: threaded.synthesize(labels, wave, resolution), n)

    def loop() -> None:
        for i in range(baseline_n):
            single.synthesize({key: value[i : i + 1] for key, value in labels.items()}, wave, resolution)

    base, _ = rate(loop, baseline_n)
    return one, one_cpu, many, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="stars per vectorised run")
    parser.add_argument("--baseline-n", type=int, default=50, help="stars of the star-by-star baseline")
    parser.add_argument("--threads", type=int, default=2, help="threads of the threaded run")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"linelist synthesizer; {os.cpu_count()} CPUs visible; n = {args.n}, baseline n = {args.baseline_n}")
    header = (
        f"{'set-up':36s} {'pixels':>6s} {'R':>6s} {'1 thread':>9s} {'(CPU)':>7s} "
        f"{f'{args.threads} threads':>10s} {'loop':>6s} {'speed-up':>8s}"
    )
    print(header)
    print("-" * len(header))
    for name, (make_grid, resolution) in SETUPS.items():
        wave = make_grid()
        one, one_cpu, many, base = measure(wave, resolution, draw_labels(args.n, rng), args.baseline_n, args.threads)
        print(
            f"{name:36s} {wave.size:6d} {resolution:6.0f} {one:9.0f} {one_cpu:7.0f} {many:10.0f} {base:6.0f} "
            f"{max(one, many) / base:7.1f}x"
        )
    print(
        "spectra per second (wall clock; '(CPU)': per CPU second of the 1-thread run); 'loop': the same model "
        "called star by star, the baseline; speed-up: best vectorised rate / loop"
    )


if __name__ == "__main__":
    main()
