"""Base classes of every kind of component a plugin can contribute.

A component class declares, as class attributes, the ``name`` a descriptor uses, an ``Options``
pydantic model for its ``options:`` block, a ``citation``, a ``data_model_url`` and a ``status``.
Instances are built from validated options: ``Reader(options)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from starlabel.containers import AuxTable, LabelTable, NativeGrid, Population, Spectra

if TYPE_CHECKING:
    import torch

    from starlabel.lines import SpectralLine

Status = Literal["stable", "experimental", "stub"]
STATUSES: tuple[str, ...] = ("stable", "experimental", "stub")


class ComponentOptions(BaseModel):
    """Base of every ``Options`` model: unknown keys are refused, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(ABC):
    """Common declarations of every component.

    Attributes
    ----------
    kind : str
        Human name of the component kind, used in messages (set by each base class).
    name : str
        Key used in descriptors; unique within its kind.
    Options : type[ComponentOptions]
        Model validating the component's ``options:`` block.
    citation : str
        What to cite when using it.
    data_model_url : str
        Where the format or method it implements is documented.
    status : {"stable", "experimental", "stub"}
        Maturity, shown by ``starlabel plugins``.
    """

    kind: ClassVar[str] = "component"
    name: ClassVar[str]
    Options: ClassVar[type[ComponentOptions]] = ComponentOptions
    citation: ClassVar[str] = ""
    data_model_url: ClassVar[str] = ""
    status: ClassVar[Status] = "experimental"

    def __init__(self, options: ComponentOptions | Mapping[str, Any] | None = None) -> None:
        if options is None or isinstance(options, Mapping):
            options = self.Options.model_validate(dict(options or {}))
        elif not isinstance(options, self.Options):
            raise TypeError(f"{type(self).__name__} expects {self.Options.__name__}, got {type(options).__name__}")
        self.options = options

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


class InstrumentReader(Component):
    """Reads survey files into :class:`~starlabel.containers.Spectra` on the native grid.

    Attributes
    ----------
    priority : int
        When several readers identify one file, the highest priority wins; a tie is an error.
    line_list : str or None
        File name of a CSV of known spectral lines shipped inside the reader's own package (beside the
        module defining the class), in the format of :mod:`starlabel.lines`; None when there is none.
        Read with :meth:`spectral_lines`; ``starlabel explain`` marks these lines on its plots.
    """

    kind = "instrument reader"
    priority: ClassVar[int] = 0
    line_list: ClassVar[str | None] = None

    @classmethod
    def spectral_lines(cls) -> list[SpectralLine]:
        """The known spectral lines of :attr:`line_list` (empty when there is none).

        The resource is looked up with :mod:`importlib.resources` in the package of the module of the
        class that sets :attr:`line_list` (``__module__`` without its last part): a subclass that
        inherits the attribute reads its parent's file.

        Raises
        ------
        starlabel.lines.LineListError
            When the resource is missing or malformed (naming it, the line and what is allowed).
        """
        from importlib.resources import files

        from starlabel.lines import LineListError, read_line_list

        if cls.line_list is None:
            return []
        owner = next(c for c in cls.__mro__ if "line_list" in vars(c))
        package = owner.__module__.rpartition(".")[0] or owner.__module__
        source = f"{package}/{cls.line_list}"
        try:
            text = files(package).joinpath(cls.line_list).read_text(encoding="utf-8")
        except (OSError, ImportError, TypeError, UnicodeDecodeError) as error:
            raise LineListError(
                f"{source}: line list of reader {cls.name!r} cannot be read ({type(error).__name__}: {error}); "
                "ship the CSV inside the package (package data) or set line_list = None"
            ) from None
        return read_line_list(text, source)

    @classmethod
    def identify(cls, path: Path) -> bool:
        """Return True when this reader recognises ``path``.

        Must be cheap (peek at a header, a suffix) and must never raise: return False instead.
        """
        return False

    @abstractmethod
    def read(self, path: Path) -> Spectra:
        """Read every spectrum in ``path``."""

    def read_parts(self, path: Path) -> Iterator[Spectra]:
        """Read ``path`` as consecutive parts whose concatenation is :meth:`read`'s result.

        Optional: by default one part, the whole file. A reader of large multi-spectrum files overrides it
        to hand out a few hundred rows at a time as it parses (problem lines all on the last part): ingest
        then prepares and writes rows while the rest of the file is still being read, with memory bounded
        by a few parts. Errors may come after some parts; the caller drops that file's parts.
        """
        yield self.read(path)

    # -- optional: writing simulated spectra (``starlabel simulate``) --------------------------------------
    def simulation_grid(self) -> NativeGrid:
        """The wavelengths, medium and flux convention of this reader's archive files.

        Optional; readers that can write their format (:meth:`write`) implement it.

        Raises
        ------
        starlabel.errors.SimulationError
            This reader cannot write simulated spectra.
        """
        raise _cannot_simulate(self)

    def simulation_ids(self, population: Population) -> np.ndarray:
        """Identifiers of ``population``'s stars as this archive writes them (and :meth:`read` returns them).

        The default is the population's int64 ``source_id``; a reader whose archive uses other ids (an
        APOGEE_ID, a Gaia-ESO CNAME) derives them, for example from the coordinates. Must be unique.
        """
        return population.source_id

    def write(self, spectra: Spectra, folder: Path) -> list[Path]:
        """Write ``spectra`` under ``folder`` in this reader's archive format; return the files written.

        ``spectra`` is on :meth:`simulation_grid`'s wavelengths, with ids from :meth:`simulation_ids`;
        ``spectra.meta`` holds ``vrad`` (km/s) and ``snr``. Reading every returned file with :meth:`read`
        must give back the ids, the wavelengths, the flux (to the format's precision), ivar and mask,
        and ``vrad`` where the archive keeps it. Optional.

        Raises
        ------
        starlabel.errors.SimulationError
            This reader cannot write simulated spectra.
        """
        raise _cannot_simulate(self)


@dataclass
class Normalised:
    """Output of a normaliser: normalised flux, its inverse variance, the mask and the continuum divided out."""

    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    continuum: np.ndarray


class Normaliser(Component):
    """Pseudo-continuum normalisation of spectra on a common grid."""

    kind = "normaliser"

    @abstractmethod
    def normalise(
        self,
        wavelength: np.ndarray,
        flux: np.ndarray,
        ivar: np.ndarray,
        mask: np.ndarray,
        arms: Sequence[tuple[float, float]] = (),
    ) -> Normalised:
        """Divide (N, P) ``flux`` by a fitted continuum; ``ivar`` scales by continuum², masked pixels stay masked.

        Parameters
        ----------
        wavelength : numpy.ndarray
            (P,) common grid.
        flux, ivar, mask : numpy.ndarray
            (N, P) spectra, inverse variances and bad-pixel masks (True = bad).
        arms : sequence of (start, stop)
            Wavelength ranges fitted independently (arms or chips); empty means one range.
        """


class AuxiliaryProvider(Component):
    """Supplies per-star non-spectral inputs aligned to source ids, with a missing mask."""

    kind = "auxiliary provider"

    @abstractmethod
    def columns(self) -> list[str]:
        """Names of the columns :meth:`load` returns, in order."""

    @abstractmethod
    def load(self, paths: Sequence[Path]) -> AuxTable:
        """Read the provider's columns for every star found in ``paths``."""

    def simulate(self, population: Population, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Table columns from which :meth:`load` reads this provider's inputs for ``population``.

        ``ids`` are the spectra's identifiers (:meth:`InstrumentReader.simulation_ids`), one per star; the
        returned mapping holds the id column this provider joins by (filled with ``ids``) and every column
        :meth:`load` reads, named as in the archive table, each of length N. ``starlabel simulate`` merges
        the mappings of all providers into one table. Optional.

        Raises
        ------
        starlabel.errors.SimulationError
            This provider cannot simulate its inputs (or a column it is asked for).
        """
        raise _cannot_simulate(self)


class LabelCuts(BaseModel):
    """Base of a label source's ``Cuts`` model (the descriptor's ``labels.cuts`` block)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelSource(Component):
    """Supplies reference labels with errors and ok flags, after selection cuts."""

    kind = "label source"
    Cuts: ClassVar[type[LabelCuts]] = LabelCuts

    @abstractmethod
    def label_names(self) -> list[str]:
        """Labels this source can provide with its current options."""

    @abstractmethod
    def load(self, path: Path, columns: Sequence[str], cuts: LabelCuts) -> LabelTable:
        """Read ``columns`` for the stars in ``path`` that pass ``cuts``."""


@dataclass(frozen=True)
class InputSpec:
    """Shapes a network is built for, derived from a descriptor and its store.

    Attributes
    ----------
    arm_pixels : tuple of int
        Pixels per spectral arm (one entry for single-arm instruments; empty for no spectrum).
    n_aux : int
        Width of the concatenated auxiliary inputs.
    labels : tuple of str
        Output label names.
    """

    arm_pixels: tuple[int, ...]
    n_aux: int
    labels: tuple[str, ...]


class Architecture(Component):
    """Builds a torch module from an :class:`InputSpec`.

    The module returned by :meth:`build` follows one contract, which training, prediction and explain
    rely on:

    ``forward(flux, aux) -> (mean, log_var)``
        ``flux`` is ``(B, P)`` float32 with ``P = sum(spec.arm_pixels)``: the arms' pixels concatenated in
        order, standardised per pixel (masked pixels are 0). ``aux`` is ``(B, spec.n_aux)`` float32
        (``(B, 0)`` when there are no auxiliary inputs). ``mean`` is ``(B, len(spec.labels))`` in
        standardised label units; ``log_var`` is the same shape (the log of a predicted variance, in the
        same units) when the module is heteroscedastic, else ``None``.
    ``heteroscedastic`` : bool attribute
        True when ``forward`` returns a ``log_var``.
    ``mc_dropout`` : bool attribute
        True when dropout is meant to stay active at prediction time for Monte-Carlo sampling.
    ``trunk`` : torch.nn.Module attribute
        The convolutional feature extractor (every spectrum branch), frozen by ``--freeze-trunk`` when
        fine-tuning; empty (an ``nn.ModuleList()``) when the network has no spectrum branch.
    ``export_inference()`` : optional method
        A deterministic copy of the module with the same ``forward`` contract that runs faster on a CPU
        (dropout off), e.g. built with :func:`starlabel.fastinfer.compile_stack`; prediction uses it for
        its deterministic passes unless ``--engine eager`` is given, and falls back to the module when the
        method is absent or raises :class:`starlabel.fastinfer.UnsupportedLayerError`.
    """

    kind = "architecture"

    @abstractmethod
    def build(self, spec: InputSpec) -> torch.nn.Module:
        """Return an untrained network for ``spec``."""


class Synthesizer(Component):
    """Forward model from labels to continuum-normalised spectra.

    Third parties plug in real grids (Korg, Turbospectrum, a Payne emulator) by subclassing this and
    registering the class with ``register_synthesizers``.
    """

    kind = "synthesizer"

    def label_names(self) -> list[str]:
        """Labels :meth:`synthesize` understands (``teff``, ``logg``, ``m_h``, ``alpha_m``, ``<el>_fe`` ...)."""
        return ["teff", "logg", "m_h", "alpha_m"]

    @abstractmethod
    def synthesize(self, labels: Mapping[str, np.ndarray], wavelength: np.ndarray, resolution: float) -> np.ndarray:
        """Return (N, P) continuum-normalised flux.

        Parameters
        ----------
        labels : mapping of str to numpy.ndarray
            N values of each label: ``teff`` (K), ``logg`` (dex), ``m_h`` and ``alpha_m`` (dex) at least;
            labels the model does not know raise :class:`~starlabel.errors.SimulationError` listing those
            it knows.
        wavelength : numpy.ndarray
            (P,) increasing rest-frame vacuum wavelengths in nm, or (N, P) one grid per star (e.g.
            Doppler-shifted).
        resolution : float
            Resolving power R = lambda / FWHM of the Gaussian instrumental profile.
        """


COMPONENT_KINDS: dict[str, type[Component]] = {
    "reader": InstrumentReader,
    "auxiliary": AuxiliaryProvider,
    "label_source": LabelSource,
    "architecture": Architecture,
    "synthesizer": Synthesizer,
    "normaliser": Normaliser,
}
"""Registry key → base class. The plugin manager fills one registry per entry."""


def _cannot_simulate(component: Component) -> Exception:
    from starlabel.errors import SimulationError

    return SimulationError(
        f"{component.kind} {component.name!r} ({type(component).__module__}) cannot simulate its data: it "
        "does not implement the optional simulation methods; use a descriptor whose components do, or add them"
    )
