"""``linelist``: a simple, fast line-list model from labels to continuum-normalised spectra."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import Literal

import numpy as np
from pydantic import Field

from starlabel.components import ComponentOptions, Synthesizer
from starlabel.errors import SimulationError
from starlabel.suggest import did_you_mean
from starlabel.wavelengths import C_KMS
from starlabel_synth.atmosphere import layer
from starlabel_synth.atoms import label_for
from starlabel_synth.linelist import LineList, load_line_list
from starlabel_synth.profiles import MAX_WINDOW_KMS, FineGrid, optical_depth
from starlabel_synth.resampling import (
    WorkGrid,
    broaden,
    broadening_sigma_kms,
    decimate,
    decimation_factor,
    pixel_average,
    pixel_edges,
)
from starlabel_synth.strengths import Abundances, line_widths

COVERAGE_NM: tuple[float, float] = (300.0, 2500.0)
"""Wavelengths (vacuum nm) the model accepts; requests outside are refused (most likely Angstrom or another
unit). The shipped lines cover 370–1700 nm: elsewhere inside this range the model returns the continuum (1)."""

REFERENCE_DOPPLER_KMS = 1.2
"""Narrowest Doppler width the fine grid is built for (Fe near 3500 K with 0.5 km/s microturbulence)."""

REQUIRED_LABELS: tuple[str, ...] = ("teff", "logg", "m_h")
"""Labels every call must give; ``alpha_m`` defaults to 0 and each ``<x>_fe`` to its α/solar value."""

_FINE_BYTES = 96 * 2**20
"""Memory budget of the fine-grid arrays of one batch (bytes)."""


class LineListOptions(ComponentOptions):
    """Options of ``linelist``."""

    microturbulence: float | None = Field(
        None, ge=0.0, le=10.0, description="microturbulence ξ, km/s (default: 2.2 − 0.27 log g, clipped to 0.5–3)"
    )
    macroturbulence: float = Field(
        4.0, ge=0.0, le=100.0, description="macroturbulence (and rotation) as a Gaussian FWHM, km/s, added to c/R"
    )
    profile: Literal["voigt", "gaussian"] = Field(
        "voigt", description="line profile: pseudo-Voigt with damping wings, or pure Doppler (Gaussian)"
    )
    oversample: float = Field(
        2.0, ge=1.0, le=10.0, description="fine-grid points per 1.2 km/s, the narrowest Doppler width modelled"
    )
    max_depth: float = Field(0.8, gt=0.0, lt=1.0, description="depth of a fully saturated line core")
    tau_cutoff: float = Field(1e-4, gt=0.0, le=1e-2, description="optical depth at which a line's window ends")
    line_list: str | None = Field(None, description="path of a line-list CSV to use instead of the shipped one")
    batch_size: int = Field(256, ge=1, le=100000, description="stars synthesised together (memory is also capped)")
    threads: int = Field(1, ge=1, le=64, description="batches synthesised in parallel threads")


class LineListSynthesizer(Synthesizer):
    """Line-list model: a simple, fast forward model of FGK(M) spectra, NOT a stellar atmosphere.

    Each star is reduced to one representative layer at ``T = 0.87 Teff`` whose gas and electron pressures
    follow scaling laws in ``Teff``, ``log g`` and ``[M/H]`` (``Pg ∝ g^(2/3)``, ``Pe ∝ g^(1/3)``, plus hydrogen
    ionisation from Saha's equation). About 360 real transitions (370–1700 nm, vacuum) get Saha–Boltzmann
    populations for abundances ``solar (Asplund 2009) + [M/H] (+ [α/M] for O, Mg, Si, S, Ca, Ti, or
    + [X/Fe] from a ``<x>_fe`` label)``, are divided by an H⁻ + H + electron-scattering continuous opacity,
    and are given Doppler (thermal + microturbulent) and damping (van der Waals ∝ Pg; resonance and Stark
    for hydrogen) widths. Optical depths are summed on a fine grid uniform in ln λ and turned into flux as
    ``F = 1 − max_depth · (1 − exp(−τ))``, a curve of growth with linear, saturated and damping parts;
    the spectrum is then broadened by a Gaussian of FWHM ``c/R`` (and the macroturbulence) and averaged
    over the requested pixels. One constant is calibrated on the Sun. Molecular CN, CO and OH bands are
    represented by a few effective lines. Responses to the labels go in the right direction with roughly
    the right size; absolute line strengths are good to a few tens of per cent at best. Valid roughly for
    3500 K ≤ Teff ≤ 9000 K, 0 ≤ log g ≤ 5, −3 ≤ [M/H] ≤ +0.5.

    ``labels`` need ``teff`` (K), ``logg`` and ``m_h``; ``alpha_m`` defaults to 0, and ``<x>_fe`` labels
    (``mg_fe``, ``c_fe``, ``li_fe`` ...) override ``[α/M]``/solar for one element.
    """

    name = "linelist"
    Options = LineListOptions
    citation = (
        "starlabel_synth line-list model (simple one-layer LTE model); atomic data from NIST ASD (Kramida et al.), "
        "VALD3 (Ryabchikova et al. 2015, Phys. Scr. 90, 054005) and Smith et al. 2013 (ApJ 765, 16); solar "
        "abundances Asplund et al. 2009 (ARA&A 47, 481); continuous opacity after Gray 2005 (The Observation "
        "and Analysis of Stellar Photospheres)"
    )
    data_model_url = "https://physics.nist.gov/PhysRefData/ASD/lines_form.html"
    status = "experimental"
    options: LineListOptions

    # ------------------------------------------------------------------------------------------ line list
    @cached_property
    def lines(self) -> LineList:
        """The line list in use (read once)."""
        return load_line_list(self.options.line_list)

    def label_names(self) -> list[str]:
        """``teff``, ``logg``, ``m_h``, ``alpha_m`` and ``<x>_fe`` for every element of the line list but H and Fe."""
        extra = [label_for(e) for e in self.lines.elements if e not in ("H", "Fe")]
        return ["teff", "logg", "m_h", "alpha_m", *extra]

    # ------------------------------------------------------------------------------------------ synthesis
    def synthesize(self, labels: Mapping[str, np.ndarray], wavelength: np.ndarray, resolution: float) -> np.ndarray:
        """Return (N, P) continuum-normalised flux (see :meth:`starlabel.components.Synthesizer.synthesize`).

        Raises
        ------
        starlabel.errors.SimulationError
            For an unknown or missing label, label values that are not finite (or a Teff ≤ 0), labels of
            different lengths, wavelengths that are not finite and increasing or lie outside 300–2500 nm,
            a wavelength array whose rows do not match the labels, or a resolution that is not positive.
        """
        values = self._labels(labels)
        n_stars = values["teff"].size
        wave = self._wavelength(wavelength, n_stars)
        if not (np.isfinite(resolution) and resolution > 0):
            raise SimulationError(f"synthesizer {self.name!r}: resolution {resolution!r}; allowed: a positive number")
        if wave.shape[-1] == 0 or n_stars == 0:
            return np.ones((n_stars, wave.shape[-1]))
        return self._synthesize(values, wave, float(resolution))

    def _synthesize(self, labels: dict[str, np.ndarray], wave: np.ndarray, resolution: float) -> np.ndarray:
        o = self.options
        n_stars = labels["teff"].size
        sigma = broadening_sigma_kms(resolution, o.macroturbulence)
        fine_step = REFERENCE_DOPPLER_KMS / o.oversample / C_KMS
        factor = decimation_factor(sigma, fine_step * C_KMS)
        u = np.log(wave)
        edges = pixel_edges(u, factor * fine_step)
        margin = (5.0 * sigma / C_KMS) + 2.0 * factor * fine_step
        start = float(edges.min()) - margin
        size = int(np.ceil((float(edges.max()) + margin - start) / fine_step)) + 1
        size = -(-size // factor) * factor
        fine = FineGrid(start, fine_step, size)
        work = WorkGrid(start + 0.5 * (factor - 1) * fine_step, factor * fine_step, size // factor)
        lam_lo, lam_hi = np.exp(start), np.exp(start + size * fine_step)
        reach = MAX_WINDOW_KMS / C_KMS
        chosen = (self.lines.wavelength > lam_lo * (1 - reach)) & (self.lines.wavelength < lam_hi * (1 + reach))
        lines = _subset(self.lines, chosen)
        batch = max(1, min(o.batch_size, _FINE_BYTES // (size * 8 * 2)))
        starts = list(range(0, n_stars, batch))
        out = np.empty((n_stars, wave.shape[-1]))

        def run(first: int) -> None:
            rows = slice(first, min(first + batch, n_stars))
            part = {key: value[rows] for key, value in labels.items()}
            reduced = self._absorption(part, lines, fine, factor)
            reduced = broaden(reduced, sigma, work.step * C_KMS, factor, fine_step * C_KMS)
            row_edges = edges[rows] if edges.ndim == 2 else edges
            out[rows] = 1.0 - pixel_average(reduced, work, row_edges)

        if o.threads > 1 and len(starts) > 1:
            with ThreadPoolExecutor(max_workers=o.threads) as pool:
                list(pool.map(run, starts))
        else:
            for first in starts:
                run(first)
        return out

    def _absorption(self, labels: dict[str, np.ndarray], lines: LineList, fine: FineGrid, factor: int) -> np.ndarray:
        """``max_depth · (1 − exp(−τ))`` averaged over blocks of ``factor`` fine pixels, (n, fine.size // factor)."""
        o = self.options
        n_stars = labels["teff"].size
        if len(lines) == 0:
            return np.zeros((n_stars, fine.size // factor))
        atm = layer(labels["teff"], labels["logg"], labels["m_h"])
        vmic = (
            np.full_like(labels["teff"], o.microturbulence)
            if o.microturbulence is not None
            else np.clip(2.2 - 0.27 * labels["logg"], 0.5, 3.0)
        )
        abundances = Abundances.from_labels(labels, lines.elements)
        widths = line_widths(lines, atm, abundances, vmic)
        lorentz = widths.lorentz if o.profile == "voigt" else None
        depth = optical_depth(fine, factor, lines.wavelength, widths.strength, widths.doppler, lorentz, o.tau_cutoff)
        # transmitted fraction exp(-tau) per work pixel: far wings everywhere, times the block means near lines
        transmitted = depth.far
        np.negative(transmitted, out=transmitted)
        np.exp(transmitted, out=transmitted)
        near = depth.near
        np.negative(near, out=near)
        np.exp(near, out=near)
        transmitted[:, depth.blocks] *= decimate(near, factor)
        # absorption = max_depth * (1 - transmitted)
        transmitted -= 1.0
        transmitted *= -o.max_depth
        return transmitted

    # ------------------------------------------------------------------------------------------ checks
    def _labels(self, labels: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        known = self.label_names()
        unknown = sorted(set(labels) - set(known))
        if unknown:
            hint = did_you_mean(unknown[0], known)
            raise SimulationError(
                f"synthesizer {self.name!r} does not model label(s) {', '.join(map(repr, unknown))}.{hint} "
                f"Known labels: {', '.join(known)}"
            )
        missing = [name for name in REQUIRED_LABELS if name not in labels]
        if missing:
            raise SimulationError(
                f"synthesizer {self.name!r} needs label(s) {', '.join(map(repr, missing))}; required: "
                f"{', '.join(REQUIRED_LABELS)} (alpha_m defaults to 0). Known labels: {', '.join(known)}"
            )
        arrays = {name: np.atleast_1d(np.asarray(value, dtype=np.float64)) for name, value in labels.items()}
        sizes = {name: a.size for name, a in arrays.items() if a.size != 1}
        n_stars = max(sizes.values(), default=1)
        for name, a in arrays.items():
            if a.ndim != 1 or a.size not in (1, n_stars):
                raise SimulationError(
                    f"synthesizer {self.name!r}: label {name!r} has shape {a.shape}; every label must hold N values "
                    f"(one per star, N = {n_stars}) or one value for all"
                )
            bad = ~np.isfinite(a) | ((a <= 0) if name == "teff" else False)
            if bad.any():
                index = int(np.flatnonzero(bad)[0])
                allowed = "a finite temperature > 0 K" if name == "teff" else "a finite number"
                raise SimulationError(
                    f"synthesizer {self.name!r}: label {name!r}[{index}] = {float(a[index])!r}; allowed: {allowed}"
                )
        result = {name: np.broadcast_to(a, (n_stars,)).copy() for name, a in arrays.items()}
        result.setdefault("alpha_m", np.zeros(n_stars))
        return result

    def _wavelength(self, wavelength: np.ndarray, n_stars: int) -> np.ndarray:
        wave = np.asarray(wavelength, dtype=np.float64)
        if wave.ndim not in (1, 2) or (wave.ndim == 2 and wave.shape[0] != n_stars):
            raise SimulationError(
                f"synthesizer {self.name!r}: wavelength has shape {wave.shape}; allowed: (P,) or (N, P) with "
                f"N = {n_stars} stars"
            )
        if wave.size == 0:
            return wave
        if not np.isfinite(wave).all():
            raise SimulationError(f"synthesizer {self.name!r}: wavelengths must be finite numbers (vacuum nm)")
        if (np.diff(wave, axis=-1) <= 0).any():
            raise SimulationError(f"synthesizer {self.name!r}: wavelengths must increase strictly along each row")
        low, high = float(wave.min()), float(wave.max())
        if low < COVERAGE_NM[0] or high > COVERAGE_NM[1]:
            raise SimulationError(
                f"synthesizer {self.name!r}: wavelengths {low:g}–{high:g} nm leave the range it accepts, "
                f"{COVERAGE_NM[0]:g}–{COVERAGE_NM[1]:g} nm (vacuum nm; convert Angstrom or air wavelengths first; "
                "its lines cover 370–1700 nm, elsewhere it returns the continuum)"
            )
        return wave


def _subset(lines: LineList, keep: np.ndarray) -> LineList:
    """The lines where ``keep`` is true."""
    return LineList(
        wavelength=lines.wavelength[keep],
        element=lines.element[keep],
        ion=lines.ion[keep],
        excitation=lines.excitation[keep],
        loggf=lines.loggf[keep],
        note=tuple(n for n, k in zip(lines.note, keep.tolist(), strict=True) if k),
        source=lines.source,
    )
