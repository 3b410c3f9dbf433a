"""Writing simulated Gaia DR3 RVS mean spectra as the archive's bulk files (``starlabel simulate``).

``RvsMeanSpectrum_NNNNNN-MMMMMM.csv.gz``: gzip ECSV, one source per row, the columns the reader reads
(:mod:`starlabel_gaia.rvs_bulk`) in the same order and with the same declarations as the project's
generated test files (``tests/data/starlabel_gaia/make_rvs.py``): ``source_id, solution_id, ra, dec,
flux, flux_error, combined_transits, combined_ccds, deblended_ccds``. The column list of the real bulk
files is **unconfirmed** (FORMATS §1b; no real bulk file in the project's test data); the DataLink RAW
products and the XP bulk files of the same archive use this order.

Values written: ``flux`` and ``flux_error = 1/sqrt(ivar)`` as float32 in the archive's spelling
(``null`` where the flux is not finite, and for the error also where ``ivar`` is 0 or the pixel is
masked); ``source_id`` the int64 ids; ``solution_id``, ``ra``, ``dec``, ``combined_transits``,
``combined_ccds``, ``deblended_ccds`` from ``spectra.meta`` when it has them (as a spectrum read from
these files does), else empty (missing). The radial velocity is not written: DR3 RVS mean spectra
are in the rest frame and the files have no velocity column.
"""

from __future__ import annotations

from pathlib import Path

from starlabel.containers import NativeGrid, Spectra
from starlabel_gaia.archive_write import ROWS_PER_FILE, EcsvColumn, meta_column, prepare, write_bulk
from starlabel_gaia.rvs_batch import META_FLOAT, META_INT
from starlabel_gaia.rvs_grid import rvs_wavelength

PREFIX = "RvsMeanSpectrum"
COLUMNS: tuple[EcsvColumn, ...] = (
    EcsvColumn(
        "source_id", "int64", "Unique source identifier (unique within a particular Data Release)", "meta.id;meta.main"
    ),
    EcsvColumn("solution_id", "int64", "Solution Identifier", "meta.version"),
    EcsvColumn("ra", "float64", "Right ascension", "pos.eq.ra;meta.main", unit="deg"),
    EcsvColumn("dec", "float64", "Declination", "pos.eq.dec;meta.main", unit="deg"),
    EcsvColumn(
        "flux", "string", "Normalised flux of the RVS mean spectrum", "phot.flux;em.wl", subtype="float32[null]"
    ),
    EcsvColumn(
        "flux_error", "string", "Uncertainty on the normalised flux", "stat.error;phot.flux", subtype="float32[null]"
    ),
    EcsvColumn("combined_transits", "int16", "Number of transits combined", "meta.number"),
    EcsvColumn("combined_ccds", "int16", "Number of CCD spectra combined", "meta.number"),
    EcsvColumn("deblended_ccds", "int16", "Number of deblended CCD spectra", "meta.number"),
)
"""The header declarations, as in the project's generated bulk files."""


def rvs_simulation_grid() -> NativeGrid:
    """The DR3 RVS grid: 846-870 nm in 0.01 nm steps (2401 px), vacuum, continuum-normalised, rest frame."""
    return NativeGrid(
        wavelength=rvs_wavelength(), unit="nm", medium="vacuum", normalised=True, observed_frame=False, flux_unit=""
    )


def write_rvs(spectra: Spectra, folder: Path, rows_per_file: int = ROWS_PER_FILE) -> list[Path]:
    """Write ``spectra`` as RVS bulk files under ``folder``; return the files written.

    Parameters
    ----------
    spectra : Spectra
        On the RVS grid (:func:`rvs_simulation_grid`), ids positive int64 Gaia source ids.
    folder : Path
        Created when missing; files already there are never overwritten (see
        :mod:`starlabel_gaia.archive_write` for the names).
    rows_per_file : int
        Largest number of sources per file.

    Raises
    ------
    SimulationError
        Another grid, air wavelengths, ids that are not positive integers, or an unwritable folder.
    """
    if len(spectra) == 0:
        return []
    ids, flux, sigma = prepare(spectra, rvs_wavelength(), "gaia_rvs_dr3")
    scalars = {key: meta_column(spectra, key, integer=True) for key in META_INT}
    scalars |= {key: meta_column(spectra, key, integer=False) for key in META_FLOAT}
    return write_bulk(Path(folder), PREFIX, COLUMNS, ids, scalars, {"flux": flux, "flux_error": sigma}, rows_per_file)
