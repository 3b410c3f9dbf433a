"""``example_ascii``: one spectrum per plain-text file.

Layout::

    # starlabel-example-ascii
    # source_id: 1234
    # wavelength_unit: nm
    <wavelength> <flux> <error>
    ...
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from starlabel.components import ComponentOptions, InstrumentReader
from starlabel.containers import Spectra
from starlabel.errors import DataFileError

MAGIC = "# starlabel-example-ascii"


class ExampleAsciiOptions(ComponentOptions):
    """Options of ``example_ascii``."""

    min_error: float = Field(0.0, ge=0, description="errors below this mark the pixel bad")


class ExampleAscii(InstrumentReader):
    """Plain-text spectra: a magic first line, a source_id header, then wavelength/flux/error rows."""

    name = "example_ascii"
    Options = ExampleAsciiOptions
    citation = "starlabel test suite"
    data_model_url = "https://example.org/starlabel-example-ascii"
    status = "experimental"
    priority = 10

    @classmethod
    def identify(cls, path: Path) -> bool:
        """True when the first line is the magic line."""
        try:
            with open(path, "rb") as handle:
                return handle.readline(64).rstrip(b"\r\n") == MAGIC.encode()
        except OSError:
            return False

    def read(self, path: Path) -> Spectra:
        """Read the single spectrum in ``path``."""
        header: dict[str, str] = {}
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.startswith("#"):
                    break
                key, _, value = line[1:].partition(":")
                header[key.strip()] = value.strip()
        if "source_id" not in header:
            raise DataFileError(str(path), "missing '# source_id: N' header line")
        table = np.loadtxt(path, comments="#", ndmin=2)
        if table.shape[1] != 3:
            raise DataFileError(str(path), f"expected 3 columns (wavelength flux error), found {table.shape[1]}")
        wave, flux, err = table.T
        err = np.where(err < self.options.min_error, np.nan, err)
        ivar = Spectra.ivar_from_sigma(err)[None]
        flux = flux[None]
        return Spectra(
            source_id=np.array([int(header["source_id"])], dtype=np.int64),
            wavelength=wave,
            flux=flux,
            ivar=ivar,
            mask=~np.isfinite(flux) | (ivar == 0),
            unit=header.get("wavelength_unit", "nm"),
        )
