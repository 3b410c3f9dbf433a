"""Spectra and grids shared by the grid, resampling and LSF tests."""

from __future__ import annotations

import numpy as np

from starlabel.grid import WavelengthGrid, pixel_edges

RVS = WavelengthGrid.linear(846.0, 870.0, 0.01)
SMALL = WavelengthGrid.linear(500.0, 512.0, 0.1)


def gaussian_line(wave: np.ndarray, centre: float, sigma: float, depth: float = 0.6) -> np.ndarray:
    return 1.0 - depth * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)


def equivalent_width(wave: np.ndarray, flux: np.ndarray) -> float:
    return float(np.sum((1.0 - flux) * np.diff(pixel_edges(wave))))


def line_sigma(wave: np.ndarray, flux: np.ndarray) -> float:
    depth = 1.0 - flux
    centre = np.sum(depth * wave) / np.sum(depth)
    return float(np.sqrt(np.sum(depth * (wave - centre) ** 2) / np.sum(depth)))


def spectra(wave: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.05, 0.2, size=(n, wave.size))
    flux = 1.0 + sigma * rng.standard_normal((n, wave.size))
    return flux, 1.0 / sigma**2, np.zeros(flux.shape, dtype=bool)


def bad_input_setup(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    wave = SMALL.wavelength
    flux, ivar, mask = spectra(wave, 4, seed=seed)
    mask[0, [10, 11, 40]] = True
    mask[1, 0] = True
    mask[2, 77] = True
    mask[3, -1] = True
    return wave, flux, ivar, mask
