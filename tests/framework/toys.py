"""Toy components so core tests depend on no survey plugin."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from starlabel import hookimpl
from starlabel.components import (
    Architecture,
    AuxiliaryProvider,
    ComponentOptions,
    InputSpec,
    InstrumentReader,
    LabelCuts,
    LabelSource,
)
from starlabel.containers import AuxTable, LabelTable, Spectra


class ToyReaderOptions(ComponentOptions):
    setup: Literal["HR10", "HR15N", "HR21"] = "HR21"


class ToyReader(InstrumentReader):
    """Reads .toy files."""

    name = "toy_reader"
    Options = ToyReaderOptions
    priority = 5

    @classmethod
    def identify(cls, path: Path) -> bool:
        return path.suffix == ".toy"

    def read(self, path: Path) -> Spectra:
        flux = np.ones((1, 3))
        return Spectra(np.array([1]), np.array([1.0, 2.0, 3.0]), flux, flux, flux == 0)


class ToyTwin(ToyReader):
    """Also reads .toy files, same priority."""

    name = "toy_twin"


class ToyLowPriority(ToyReader):
    """Reads .toy and .low files with low priority."""

    name = "toy_low"
    priority = 0

    @classmethod
    def identify(cls, path: Path) -> bool:
        return path.suffix in (".toy", ".low")


class ToyParallaxOptions(ComponentOptions):
    zero_point: Literal["none", "lindegren2021"] = "none"
    min_over_error: float = Field(0.0, ge=0)


class ToyParallax(AuxiliaryProvider):
    """Parallax."""

    name = "toy_parallax"
    Options = ToyParallaxOptions

    def columns(self) -> list[str]:
        return ["parallax"]

    def load(self, paths: Sequence[Path]) -> AuxTable:
        return AuxTable(np.array([1]), ["parallax"], np.ones((1, 1)), np.zeros((1, 1), bool))


class ToyPhotometry(ToyParallax):
    """Photometry."""

    name = "toy_photometry"
    Options = ComponentOptions


class ToyCuts(LabelCuts):
    snr_min: float = 0.0


class ToyLabels(LabelSource):
    """Labels."""

    name = "toy_labels"
    Cuts = ToyCuts

    def label_names(self) -> list[str]:
        return ["teff", "logg", "m_h", "alpha_m"]

    def load(self, path: Path, columns: Sequence[str], cuts: LabelCuts) -> LabelTable:
        n = len(columns)
        return LabelTable(np.array([1]), list(columns), np.ones((1, n)), np.ones((1, n)), np.ones((1, n), bool))


class ToyNetOptions(ComponentOptions):
    width: int = Field(16, ge=1)


class ToyNet(Architecture):
    """A network."""

    name = "toy_net"
    Options = ToyNetOptions

    def build(self, spec: InputSpec):  # pragma: no cover - not used by core tests
        raise NotImplementedError


class ToyPlugin:
    @hookimpl
    def register_instrument_readers(self) -> list[type]:
        return [ToyReader]

    @hookimpl
    def register_auxiliary_providers(self) -> list[type]:
        return [ToyParallax, ToyPhotometry]

    @hookimpl
    def register_label_sources(self) -> list[type]:
        return [ToyLabels]

    @hookimpl
    def register_architectures(self) -> list[type]:
        return [ToyNet]


class NpzReader(InstrumentReader):
    """Reads .npz files with arrays ids, wave, flux, err and optional snr, vrad; unit and medium as 0-d strings."""

    name = "toy_npz"

    @classmethod
    def identify(cls, path: Path) -> bool:
        return path.suffix == ".npz"

    def read(self, path: Path) -> Spectra:
        from starlabel.errors import DataFileError

        try:
            data = dict(np.load(path, allow_pickle=False))
        except Exception as error:
            raise DataFileError(str(path), f"not a toy npz file: {error}") from None
        err = data["err"]
        ivar = Spectra.ivar_from_sigma(err)
        flux = data["flux"]
        meta = {k: data[k] for k in ("snr", "vrad") if k in data}
        return Spectra(
            data["ids"],
            data["wave"],
            flux,
            ivar,
            ~np.isfinite(flux) | (ivar == 0),
            unit=str(data.get("unit", "nm")),
            medium=str(data.get("medium", "vacuum")),  # type: ignore[arg-type]
            meta=meta,
        )


def write_npz(path: Path, ids, wave, flux, err, **extra) -> Path:  # type: ignore[no-untyped-def]
    """Write a toy_npz file."""
    np.savez(path, ids=np.asarray(ids), wave=np.asarray(wave), flux=np.asarray(flux), err=np.asarray(err), **extra)
    return path


class NpzPlugin:
    @hookimpl
    def register_instrument_readers(self) -> list[type]:
        return [NpzReader]
