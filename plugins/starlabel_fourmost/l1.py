"""``fourmost_lr_l1``: 4MOST low-resolution (LRS) L1 spectra, STUB — assumed ESO SDP 1D layout.

No 4MOST spectrum was available when this reader was written. It assumes that 4MOST L1 single-object
spectra follow the ESO Phase 3 Science Data Products standard for one-dimensional spectra, as
:mod:`starlabel_gaiaeso.sdp1d` reads them:

=======  ===========================================================================================
HDU      content (assumed)
=======  ===========================================================================================
0        header only: ``PRODCATG = 'SCIENCE.SPECTRUM'``, ``INSTRUME = '4MOST'`` (or ``'4MOST-LRS'``),
         the star's name in ``OBJ_NAME`` (else ``OBJECT``), ``WAVELMIN``/``WAVELMAX`` (nm), ``SNR``
1        BINTABLE with ONE row: array columns ``WAVE`` (Å, **vacuum**), ``FLUX``, ``ERR`` (σ), optional
         ``QUAL`` (0 = good)
=======  ===========================================================================================

The keyword names and the vacuum medium are assumptions (4MOST works in vacuum wavelengths); check them
against a real L1 header before use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from starlabel.containers import NativeGrid, Population, Spectra
from starlabel.errors import DataFileError
from starlabel.fitspeek import peek_header
from starlabel_gaiaeso.citations import SDP_STANDARD
from starlabel_gaiaeso.identify import is_sdp_spectrum
from starlabel_gaiaeso.sdp1d import EsoSdp1d, Sdp1dOptions
from starlabel_gaiaeso.sdpfile import LAYOUT

INSTRUMENT_PREFIX = "4MOST"
"""``INSTRUME`` values starting with this (case-insensitive, blanks ignored) are 4MOST files."""
OTHER_SPECTROGRAPH = "HRS"
"""``INSTRUME`` values naming the high-resolution spectrograph (e.g. ``'4MOST-HRS'``) are refused."""

FOURMOST_CITATION = f"de Jong et al. 2019, The Messenger 175, 3 (4MOST); {SDP_STANDARD} (assumed L1 layout)"
FOURMOST_URL = "https://www.4most.eu/cms/facility/"


def is_fourmost_lrs(path: str | Path) -> bool:
    """True for an SDP 1D spectrum whose HDU0 ``INSTRUME`` starts with ``4MOST`` and does not name the HRS.

    Never raises: anything unreadable is False.
    """
    try:
        if not is_sdp_spectrum(path):
            return False
        h0 = peek_header(path, 0)
        value = h0.get("INSTRUME") if h0 is not None else None
        if not isinstance(value, str):
            return False
        text = value.strip().upper().replace(" ", "")
        return text.startswith(INSTRUMENT_PREFIX) and OTHER_SPECTROGRAPH not in text
    except Exception:  # identification never raises
        return False


class FourmostL1Options(Sdp1dOptions):
    """Options of ``fourmost_lr_l1``: the ``eso_sdp_1d`` options with 4MOST defaults."""

    setup: Literal["any"] = Field("any", description="no FLAMES setup check: 4MOST LRS has one fixed setup")
    medium: Literal["air", "vacuum", "header"] = Field(
        "vacuum",
        description="medium of WAVE; 4MOST works in vacuum wavelengths (assumed); header: from TUCD "
        "(em.wl;obs.atmos = air, em.wl = vacuum)",
    )
    default_unit: str = Field("Angstrom", description="wavelength unit when the WAVE column has no TUNIT")
    id_keyword: str = Field(
        "OBJ_NAME", description="HDU0 keyword holding the source id (assumed); OBJECT is the fallback"
    )
    check_instrument: bool = Field(
        True, description="refuse files whose HDU0 INSTRUME is not 4MOST LRS (what identify checks)"
    )


class FourmostLrL1(EsoSdp1d):
    """4MOST LRS L1 spectra (STUB): ESO SDP 1D layout assumed, vacuum Å, read by the ``eso_sdp_1d`` code."""

    name = "fourmost_lr_l1"
    Options = FourmostL1Options
    line_list = "lines_lrs.csv"
    citation = FOURMOST_CITATION
    data_model_url = FOURMOST_URL
    status = "stub"
    priority = 15
    """Above ``eso_sdp_1d`` (5): a 4MOST SDP file is claimed by both, and this reader must win."""

    @classmethod
    def identify(cls, path: Path) -> bool:
        """True for SDP 1D spectra (see ``eso_sdp_1d``) with ``INSTRUME = '4MOST…'`` but not HRS (never raises)."""
        return is_fourmost_lrs(path)

    def read(self, path: Path) -> Spectra:
        """Read the one spectrum of ``path`` as ``eso_sdp_1d`` does, with the 4MOST defaults.

        Returns
        -------
        Spectra
            One spectrum, wavelengths in the WAVE column's TUNIT (default Å), medium vacuum (default).

        Raises
        ------
        DataFileError
            ``INSTRUME`` not a 4MOST LRS value (unless ``check_instrument: false``), and every error of
            ``eso_sdp_1d``: not the SDP layout, a wavelength unit that is not a length or disagrees with
            WAVELMIN/WAVELMAX, no id keyword, an unreadable or truncated file.
        """
        path = Path(path)
        if self.options.check_instrument and path.is_file() and not is_fourmost_lrs(path):
            h0 = peek_header(path, 0)
            found = h0.get("INSTRUME") if h0 is not None else None
            raise DataFileError(
                str(path),
                f"not a 4MOST LRS SDP 1D spectrum (INSTRUME = {found!r}; expected '4MOST' or '4MOST-LRS' and "
                f"the SDP layout). {LAYOUT}. Set check_instrument: false to read it anyway",
            )
        return super().read(path)

    # -- simulation (``starlabel simulate``) ---------------------------------------------------------------
    def simulation_grid(self) -> NativeGrid:
        """Log-linear vacuum grid 3700–9500 Å at 2.5 pixels per resolution element for R = 6500.

        The real 4GP raster is not shipped; rest frame (the stub layout has no velocity keyword); physical
        flux in 10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹. See :mod:`starlabel_fourmost.l1_write`.
        """
        from starlabel_fourmost.l1_write import lrs_grid

        return lrs_grid()

    def simulation_ids(self, population: Population) -> np.ndarray:
        """The population's int64 ``source_id`` as text (written to the ``id_keyword`` card, read back as str)."""
        return np.array([str(value) for value in population.source_id.tolist()], dtype=str)

    def write(self, spectra: Spectra, folder: Path) -> list[Path]:
        """Write one ``L1_<id>.fits`` per spectrum in the stub's SDP 1D layout (``INSTRUME = '4MOST-LRS'``).

        The id goes to ``OBJECT`` and the ``id_keyword`` card (default ``OBJ_NAME``), ``meta["snr"]`` to
        ``SNR``; no velocity is written (rest frame). Bad pixels get ``QUAL = 1``.

        Raises
        ------
        SimulationError
            Spectra not on :meth:`simulation_grid`, ids empty or repeated, a file that cannot be written.
        """
        from starlabel_fourmost.l1_write import write_l1_files

        return write_l1_files(spectra, Path(folder), id_keyword=self.options.id_keyword, reader=self.name)
