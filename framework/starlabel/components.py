"""Base classes of every kind of component a plugin can contribute.

A component class declares, as class attributes, the ``name`` a descriptor uses, an ``Options``
pydantic model for its ``options:`` block, a ``citation``, a ``data_model_url`` and a ``status``.
Instances are built from validated options: ``Reader(options)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from starlabel.containers import AuxTable, LabelTable, Spectra

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
    """

    kind = "architecture"

    @abstractmethod
    def build(self, spec: InputSpec) -> torch.nn.Module:
        """Return an untrained network for ``spec``."""


class Synthesizer(Component):
    """Forward model from labels to continuum-normalised spectra."""

    kind = "synthesizer"

    @abstractmethod
    def synthesize(self, labels: Mapping[str, np.ndarray], wavelength: np.ndarray, resolution: float) -> np.ndarray:
        """Return (N, P) normalised flux for N label sets on ``wavelength`` at resolving power ``resolution``."""


COMPONENT_KINDS: dict[str, type[Component]] = {
    "reader": InstrumentReader,
    "auxiliary": AuxiliaryProvider,
    "label_source": LabelSource,
    "architecture": Architecture,
    "synthesizer": Synthesizer,
    "normaliser": Normaliser,
}
"""Registry key → base class. The plugin manager fills one registry per entry."""
