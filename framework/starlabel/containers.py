"""Plain numpy containers that components hand to the core.

They carry no behaviour beyond shape checks, so readers, providers and label sources written by third
parties depend on nothing but numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Medium = Literal["vacuum", "air"]


def _rows(name: str, array: np.ndarray, n: int) -> None:
    if array.shape[0] != n:
        raise ValueError(f"{name} has {array.shape[0]} rows, expected {n} (one per source_id)")


@dataclass
class Spectra:
    """Spectra of N stars on a wavelength grid of P pixels.

    Attributes
    ----------
    source_id : numpy.ndarray
        (N,) identifiers, int64 or str (survey ids can exceed 2**53). Never float.
    wavelength : numpy.ndarray
        (P,) shared grid, or (N, P) one grid per spectrum, in ``unit`` and ``medium``.
    flux : numpy.ndarray
        (N, P) flux.
    ivar : numpy.ndarray
        (N, P) inverse variance of ``flux``; 0 where unknown or bad.
    mask : numpy.ndarray
        (N, P) bool, True marks a bad pixel.
    unit : str
        Wavelength unit understood by astropy (``"nm"``, ``"Angstrom"``).
    medium : {"vacuum", "air"}
        Medium of the wavelengths.
    meta : dict of str to numpy.ndarray
        Per-spectrum scalars of length N (S/N, radial velocity, ...).
    problems : list of str
        What the reader skipped or found suspicious, one line each naming file and row (a null id,
        a repeated id); the caller reports them. Fatal problems raise instead.
    """

    source_id: np.ndarray
    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    unit: str = "nm"
    medium: Medium = "vacuum"
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.source_id.dtype.kind == "f":
            raise TypeError("source_id must be integer or string, never float (ids exceed 2**53)")
        n = self.source_id.shape[0]
        if self.flux.ndim != 2:
            raise ValueError(f"flux must be 2-D (N, P), got shape {self.flux.shape}")
        for name in ("flux", "ivar", "mask"):
            _rows(name, getattr(self, name), n)
        if self.ivar.shape != self.flux.shape or self.mask.shape != self.flux.shape:
            raise ValueError(f"flux {self.flux.shape}, ivar {self.ivar.shape} and mask {self.mask.shape} must match")
        if self.wavelength.shape not in ((self.flux.shape[1],), self.flux.shape):
            raise ValueError(
                f"wavelength shape {self.wavelength.shape} fits neither (P,) nor (N, P) for flux {self.flux.shape}"
            )
        for key, value in self.meta.items():
            _rows(f"meta[{key!r}]", value, n)

    def __len__(self) -> int:
        return int(self.source_id.shape[0])

    @staticmethod
    def ivar_from_sigma(sigma: np.ndarray) -> np.ndarray:
        """Return 1/sigma² where sigma is finite and positive and 1/sigma² is finite, else 0.

        A sigma so small that sigma² underflows (below about 1e-154) would give an infinite ivar: 0 instead.
        """
        sigma = np.asarray(sigma, dtype=np.float64)
        good = np.isfinite(sigma) & (sigma > 0)
        out = np.zeros_like(sigma)
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            np.divide(1.0, sigma**2, out=out, where=good)
        out[~np.isfinite(out)] = 0.0
        return out


def concat_spectra(parts: Sequence[Spectra]) -> Spectra:
    """One ``Spectra`` holding the rows, meta and problem lines of ``parts`` in order (a reader's parts of one file).

    The parts share the first part's unit and medium, and either one grid (1-d wavelengths) or one per row.
    """
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    shared = first.wavelength.ndim == 1
    return Spectra(
        source_id=np.concatenate([p.source_id for p in parts]),
        wavelength=first.wavelength if shared else np.concatenate([p.wavelength for p in parts]),
        flux=np.concatenate([p.flux for p in parts]),
        ivar=np.concatenate([p.ivar for p in parts]),
        mask=np.concatenate([p.mask for p in parts]),
        unit=first.unit,
        medium=first.medium,
        meta={key: np.concatenate([p.meta[key] for p in parts]) for key in first.meta},
        problems=[line for p in parts for line in p.problems],
    )


@dataclass
class AuxTable:
    """Per-star auxiliary inputs: N rows by k named columns, with a missing mask (never zero-filled)."""

    source_id: np.ndarray
    columns: list[str]
    values: np.ndarray
    missing: np.ndarray

    def __post_init__(self) -> None:
        n = self.source_id.shape[0]
        if self.values.shape != (n, len(self.columns)) or self.missing.shape != self.values.shape:
            raise ValueError(
                f"values {self.values.shape} and missing {self.missing.shape} must both be "
                f"({n}, {len(self.columns)}) for {n} ids and columns {self.columns}"
            )

    @classmethod
    def concat(cls, columns: list[str], parts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> AuxTable:
        """Rows of several files in order; ``parts`` are ``(file, ids, values, missing)``.

        Raises
        ------
        starlabel.errors.DataFileError
            The files mix integer and string ids, which cannot be joined.
        """
        from starlabel.errors import DataFileError

        k = len(columns)
        if not parts:
            return cls(np.zeros(0, np.int64), list(columns), np.zeros((0, k)), np.zeros((0, k), bool))
        first_file, first_ids = parts[0][0], parts[0][1]
        for file, ids, _, _ in parts[1:]:
            if (ids.dtype.kind in "iu") != (first_ids.dtype.kind in "iu"):
                raise DataFileError(
                    file, f"ids of dtype {ids.dtype} cannot join ids of dtype {first_ids.dtype} from {first_file}"
                )
        return cls(
            np.concatenate([p[1] for p in parts]),
            list(columns),
            np.concatenate([p[2] for p in parts]),
            np.concatenate([p[3] for p in parts]),
        )


@dataclass
class LabelTable:
    """Reference labels of N stars: values, errors and per-label ok flags (after selection cuts)."""

    source_id: np.ndarray
    names: list[str]
    values: np.ndarray
    errors: np.ndarray
    ok: np.ndarray
    units: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = (self.source_id.shape[0], len(self.names))
        for name in ("values", "errors", "ok"):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")


@dataclass
class NativeGrid:
    """The wavelengths an instrument's archive files use, for writing simulated spectra.

    Attributes
    ----------
    wavelength : numpy.ndarray
        (P,) wavelengths of the archive files, in ``unit`` and ``medium``.
    unit : str
        Wavelength unit understood by astropy.
    medium : {"vacuum", "air"}
        Medium of the wavelengths.
    normalised : bool
        True when the archive publishes continuum-normalised spectra; False for physical fluxes (the
        simulator then multiplies the normalised model by a stellar continuum in ``flux_unit``).
    observed_frame : bool
        True when the archive spectra are in the observed frame: the simulator Doppler-shifts the model
        by each star's radial velocity and the writer records it where the archive keeps it.
    flux_unit : str
        Unit of physical fluxes (``"W m-2 nm-1"``, ``"1e-17 erg s-1 cm-2 Angstrom-1"``); empty when normalised.
    """

    wavelength: np.ndarray
    unit: str
    medium: Medium
    normalised: bool
    observed_frame: bool = False
    flux_unit: str = ""


@dataclass
class Population:
    """A simulated stellar population: true labels, physical parameters and positions of N stars.

    Attributes
    ----------
    source_id : numpy.ndarray
        (N,) int64 identifiers (unique, positive).
    labels : dict of str to numpy.ndarray
        (N,) true labels: at least ``teff`` (K), ``logg`` (dex, cgs), ``m_h`` and ``alpha_m`` (dex);
        optionally single-element abundances ``<el>_fe`` (dex).
    mass, radius : numpy.ndarray
        (N,) mass (solar masses) and radius (solar radii), consistent with ``logg``.
    distance : numpy.ndarray
        (N,) heliocentric distance in pc.
    ra, dec : numpy.ndarray
        (N,) ICRS coordinates in degrees.
    parallax : numpy.ndarray
        (N,) true parallax in mas (1000 / distance).
    vrad : numpy.ndarray
        (N,) heliocentric radial velocity in km/s.
    component : numpy.ndarray
        (N,) str: ``thin``, ``thick`` or ``halo``.
    magnitudes : dict of str to numpy.ndarray
        (N,) apparent magnitudes in generic bands (Vega), no extinction.
    """

    source_id: np.ndarray
    labels: dict[str, np.ndarray]
    mass: np.ndarray
    radius: np.ndarray
    distance: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    parallax: np.ndarray
    vrad: np.ndarray
    component: np.ndarray
    magnitudes: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.source_id.shape[0]
        for key in ("teff", "logg", "m_h", "alpha_m"):
            if key not in self.labels:
                raise ValueError(f"labels lack {key!r}; a population needs teff, logg, m_h and alpha_m")
        columns = {f"labels[{k!r}]": v for k, v in self.labels.items()}
        columns |= {f"magnitudes[{k!r}]": v for k, v in self.magnitudes.items()}
        for name in ("mass", "radius", "distance", "ra", "dec", "parallax", "vrad", "component"):
            columns[name] = getattr(self, name)
        for name, value in columns.items():
            _rows(name, value, n)

    def __len__(self) -> int:
        return int(self.source_id.shape[0])
