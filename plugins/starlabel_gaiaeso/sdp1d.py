"""``eso_sdp_1d``: ESO Phase 3 one-dimensional spectra (SDP standard), as Gaia-ESO GIRAFFE/UVES products.

=======  ===========================================================================================
HDU      content
=======  ===========================================================================================
0        header only: ``PRODCATG = 'SCIENCE.SPECTRUM'``, ``OBJECT``, ``RA``, ``DEC``, ``INSTRUME``,
         ``WAVELMIN``/``WAVELMAX``/``SPEC_BIN`` (nm), ``SPEC_RES``, ``SNR``, ``MJD-OBS``; for Gaia-ESO the
         ``CNAME`` (assumed keyword) and the setup (see :mod:`starlabel_gaiaeso.setups`)
1        BINTABLE with ONE row: array columns ``WAVE``, ``FLUX``, ``ERR`` (σ), optional ``QUAL``
         (0 = good), ``FLUX_REDUCED``/``ERR_REDUCED``; per column ``TUNITn``, ``TUCDn``, ``TUTYPn``
=======  ===========================================================================================

Wavelengths are returned in the unit of the WAVE column's ``TUNIT`` (``default_unit`` when absent) and
checked against ``WAVELMIN``/``WAVELMAX``, which the standard gives in nm, so a wrong ``TUNIT`` is caught.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from starlabel.components import ComponentOptions, InstrumentReader
from starlabel.containers import NativeGrid, Population, Spectra
from starlabel.errors import DataFileError
from starlabel_gaiaeso.citations import SDP_URL, SPECTRA_CITATION
from starlabel_gaiaeso.identify import is_sdp_spectrum
from starlabel_gaiaeso.sdpfile import LAYOUT, SdpColumn, SdpContent, read_sdp
from starlabel_gaiaeso.setups import SETUPS, header_setup

FLUX_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "default": (("FLUX",), ("ERR", "ERR_FLUX", "ERROR")),
    "reduced": (("FLUX_REDUCED",), ("ERR_REDUCED",)),
}
"""Flux and error column candidates per ``flux`` option (tried in order, case-insensitive)."""

META_KEYWORDS: dict[str, tuple[str, ...]] = {
    "snr": ("SNR",),
    "spec_res": ("SPEC_RES",),
    "mjd_obs": ("MJD-OBS",),
    "exptime": ("TEXPTIME", "EXPTIME"),
    "ra": ("RA",),
    "dec": ("DEC",),
}
"""Numeric HDU0 keywords copied to ``meta`` (NaN when absent); ``vrad`` is added from ``vrad_keywords``."""


class Sdp1dOptions(ComponentOptions):
    """Options of ``eso_sdp_1d``."""

    setup: Literal["HR10", "HR15N", "HR21", "U520", "U580", "any"] = Field(
        "any",
        description="refuse files of another FLAMES setup (read from SETUP / ESO INS EXP MODE / "
        "ESO INS FILT NAME / ESO INS GRAT2 WLEN, else from WAVELMIN/WAVELMAX); any: no check",
    )
    flux: Literal["default", "reduced"] = Field(
        "default", description="default: FLUX and ERR (Gaia-ESO: normalised); reduced: FLUX_REDUCED and ERR_REDUCED"
    )
    medium: Literal["air", "vacuum", "header"] = Field(
        "air",
        description="medium of WAVE; Gaia-ESO/ESO FLAMES spectra are in air; header: from TUCD "
        "(em.wl;obs.atmos = air, em.wl = vacuum)",
    )
    default_unit: str = Field("nm", description="wavelength unit when the WAVE column has no TUNIT")
    id_keyword: str = Field("CNAME", description="HDU0 keyword holding the source id; OBJECT is the fallback")
    vrad_keywords: tuple[str, ...] = Field(
        ("VRAD", "VEL", "RV"), description="HDU0 keywords tried for meta['vrad'] (km/s; NaN when none is present)"
    )
    use_qual: bool = Field(True, description="mask pixels whose QUAL column (when present) is not 0")
    check_range: bool = Field(True, description="check WAVE (in TUNIT) against WAVELMIN/WAVELMAX (nm)")


class EsoSdp1d(InstrumentReader):
    """ESO SDP 1D spectra (one-row WAVE/FLUX/ERR table): Gaia-ESO GIRAFFE and UVES products, air wavelengths."""

    name = "eso_sdp_1d"
    Options = Sdp1dOptions
    line_list = "lines_giraffe.csv"
    citation = SPECTRA_CITATION
    data_model_url = SDP_URL
    status = "experimental"
    priority = 5
    """Low: a generic ESO format; an instrument-specific reader of SDP files should win."""

    @classmethod
    def identify(cls, path: Path) -> bool:
        """True for PRODCATG = SCIENCE.SPECTRUM* and a one-row HDU1 table with WAVE and FLUX (never raises)."""
        return is_sdp_spectrum(path)

    def read(self, path: Path) -> Spectra:
        """Read the one spectrum of ``path``.

        Returns
        -------
        Spectra
            One spectrum: ``source_id`` the ``id_keyword`` (default CNAME) or OBJECT string; wavelength
            (NELEM,) in TUNIT; flux as stored; ``ivar = 1/ERR²``; mask = non-finite flux, ERR not finite
            and > 0, or QUAL ≠ 0; ``meta``: ``vrad`` (km/s), ``snr``, ``spec_res``, ``mjd_obs``,
            ``exptime``, ``ra``, ``dec`` (NaN when absent).

        Raises
        ------
        DataFileError
            Not the SDP layout (no HDU1 table, not one row, no WAVE/FLUX/ERR), a setup other than the
            ``setup`` option, a wavelength unit that is not a length or disagrees with WAVELMIN/WAVELMAX,
            no id keyword, an unreadable or truncated file.
        """
        path = Path(path)
        content = read_sdp(path)
        self._check_setup(content)
        wave_col = content.column(("WAVE",), "wavelength")
        flux_names, err_names = FLUX_COLUMNS[self.options.flux]
        other = "reduced" if self.options.flux == "default" else "default"
        hint = f"Set the reader option flux: {other} if the file holds {'/'.join(FLUX_COLUMNS[other][0])}."
        flux_col = content.column(flux_names, "flux", hint)
        err_col = content.column(err_names, "flux error", hint)
        unit = self._unit(content, wave_col)
        wave = wave_col.values
        flux, sigma = flux_col.values, err_col.values
        mask = ~np.isfinite(flux) | ~np.isfinite(sigma) | ~(sigma > 0) | ~np.isfinite(wave)
        if self.options.use_qual and "QUAL" in content.columns:
            mask |= content.columns["QUAL"].values != 0
        ivar = np.where(mask, 0.0, Spectra.ivar_from_sigma(sigma))
        return Spectra(
            source_id=np.array([self._source_id(content)]),
            wavelength=wave,
            flux=flux[None, :],
            ivar=ivar[None, :],
            mask=mask[None, :],
            unit=unit,
            medium=self._medium(wave_col),
            meta=self._meta(content.header0),
        )

    # -- simulation (``starlabel simulate``) ---------------------------------------------------------------
    def simulation_grid(self) -> NativeGrid:
        """The product grid of the ``setup`` option: air nm, observed frame, physical flux.

        GIRAFFE setups are sampled at 0.005 nm (HR15N: 647.0–679.0 nm, 6401 pixels), UVES at 0.0025 nm
        (assumed); see :mod:`starlabel_gaiaeso.sdp1d_write`.

        Raises
        ------
        SimulationError
            The ``setup`` option is ``any``: simulated files need one setup.
        """
        from starlabel_gaiaeso.sdp1d_write import ges_grid

        return ges_grid(self.options.setup, self.name)

    def simulation_ids(self, population: Population) -> np.ndarray:
        """Gaia-ESO CNAMEs ``HHMMSSss±DDMMSSs`` from the population's ra/dec (truncated).

        Stars whose truncated coordinates coincide would share a CNAME: the first keeps it, each later
        one has its right ascension stepped by +0.01 s, +0.02 s … until unused (deterministic; see
        :func:`starlabel_gaiaeso.cname.cnames`).
        """
        from starlabel_gaiaeso.cname import cnames

        return cnames(population.ra, population.dec)

    def write(self, spectra: Spectra, folder: Path) -> list[Path]:
        """Write one ESO SDP 1D file ``ADP.<timestamp>.fits`` per spectrum (the ``setup`` option's grid).

        The id goes to ``OBJECT`` and the ``id_keyword`` card, ``meta["vrad"]`` (km/s) to the first of
        ``vrad_keywords``, ``meta["snr"]`` to ``SNR``; bad pixels get ``QUAL = 1``. Layout and naming:
        :mod:`starlabel_gaiaeso.sdp1d_write`.

        Raises
        ------
        SimulationError
            ``setup: any``, spectra not on :meth:`simulation_grid`, ids empty or repeated, a file that
            cannot be written.
        """
        from starlabel_gaiaeso.sdp1d_write import write_ges_files

        return write_ges_files(
            spectra,
            Path(folder),
            setup=self.options.setup,
            id_keyword=self.options.id_keyword,
            vrad_keyword=self.options.vrad_keywords[0] if self.options.vrad_keywords else "VRAD",
            reader=self.name,
        )

    # ------------------------------------------------------------------------------------------- helpers
    def _check_setup(self, content: SdpContent) -> None:
        wanted = self.options.setup
        if wanted == "any":
            return
        found, where = header_setup(content.header0)
        expected = SETUPS[wanted]
        if found is None:
            raise DataFileError(
                str(content.path),
                f"cannot tell the FLAMES setup ({where}); the reader option setup: {wanted} expects "
                f"{expected.start:g}–{expected.stop:g} nm. Set setup: any to skip the check",
            )
        if found != wanted:
            raise DataFileError(
                str(content.path),
                f"setup {found} (from {where}), but the reader option asks for setup: {wanted} "
                f"({expected.start:g}–{expected.stop:g} nm); select the {wanted} files, or set setup: {found} or any",
            )

    def _unit(self, content: SdpContent, wave: SdpColumn) -> str:
        import astropy.units as u

        text = wave.unit or self.options.default_unit
        try:
            unit = u.Unit(text)
            is_length = unit.physical_type == "length"
        except (ValueError, TypeError):
            is_length = False
        if not is_length:
            raise DataFileError(
                str(content.path),
                f"HDU1 column {wave.name} has TUNIT {text!r}, not a wavelength unit (nm, Angstrom, um). {LAYOUT}",
            )
        name = unit.to_string()
        if self.options.check_range:
            self._check_range(content, wave, unit, text)
        return name

    @staticmethod
    def _check_range(content: SdpContent, wave: SdpColumn, unit: Any, text: str) -> None:
        import astropy.units as u

        wmin, wmax = content.header0.get("WAVELMIN"), content.header0.get("WAVELMAX")
        values = wave.values[np.isfinite(wave.values)]
        if not isinstance(wmin, int | float) or not isinstance(wmax, int | float) or values.size == 0:
            return
        low, high = (np.array([values.min(), values.max()]) * unit).to_value(u.nm)
        tolerance = 0.02 * (wmax - wmin) + 1.0
        if abs(low - wmin) > tolerance or abs(high - wmax) > tolerance:
            raise DataFileError(
                str(content.path),
                f"HDU1 column {wave.name} spans {values.min():g}–{values.max():g} {text} = {low:g}–{high:g} nm, "
                f"but HDU0 WAVELMIN/WAVELMAX say {wmin:g}–{wmax:g} nm: TUNIT is probably wrong. Fix TUNIT "
                f"(or default_unit when TUNIT is absent), or set check_range: false",
            )

    def _medium(self, wave: SdpColumn) -> Literal["air", "vacuum"]:
        if self.options.medium != "header":
            return self.options.medium
        return "air" if "obs.atmos" in wave.ucd.lower() else "vacuum"

    def _source_id(self, content: SdpContent) -> str:
        for keyword in (self.options.id_keyword, "OBJECT"):
            value = content.header0.get(keyword)
            if isinstance(value, str) and value.strip():
                return value.strip()
        raise DataFileError(
            str(content.path),
            f"HDU0 has no {self.options.id_keyword} or OBJECT keyword with the star's name; set the reader "
            f"option id_keyword to the keyword that holds it. {LAYOUT}",
        )

    def _meta(self, header: Any) -> dict[str, np.ndarray]:
        meta = {"vrad": np.array([_number(header, self.options.vrad_keywords)])}
        meta.update({key: np.array([_number(header, keywords)]) for key, keywords in META_KEYWORDS.items()})
        return meta


def _number(header: Any, keywords: tuple[str, ...]) -> float:
    """The first of ``keywords`` in ``header`` holding a finite number, else NaN."""
    for keyword in keywords:
        value = header.get(keyword)
        if isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
            return float(value)
    return float("nan")
