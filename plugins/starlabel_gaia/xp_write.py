"""Writing simulated Gaia DR3 XP sampled spectra in the archive's bulk layout (``starlabel simulate``).

Format chosen: the bulk/RAW layout, ``XpSampledMeanSpectrum_NNNNNN-MMMMMM.csv.gz`` — gzip ECSV, one source
per row, ``source_id, solution_id, ra, dec, flux, flux_error`` with the two 343-element arrays as quoted
JSON. It is what the archive's bulk download of ``xp_sampled_mean_spectrum`` holds and what DataLink
returns for many sources at once (``RAW``); a user with more than a handful of stars has files of this
kind (one DataLink file per source would mean thousands of small files). The header declarations are
copied from the archive's own ECSV (the GaiaXPy test file ``XP_SAMPLED_RAW_dr3int6.ecsv``, FORMATS §2b),
flux unit ``W.m**-2.nm**-1``. :class:`~starlabel_gaia.xp_sampled.GaiaXpSampled` reads these files with
``read_archive`` (recognised by :mod:`starlabel_gaia.xp_archive_sniff`).

Values: ``flux`` in W m⁻² nm⁻¹ and ``flux_error = 1/sqrt(ivar)``, float32 in the archive's spelling
(``null`` where the flux is not finite, and for the error also where ``ivar`` is 0 or the pixel is
masked); ``solution_id``, ``ra``, ``dec`` from ``spectra.meta`` when present, else empty (missing).
"""

from __future__ import annotations

from pathlib import Path

from starlabel.containers import NativeGrid, Spectra
from starlabel_gaia.archive_write import ROWS_PER_FILE, EcsvColumn, meta_column, prepare, write_bulk
from starlabel_gaia.grid import xp_sampled_wavelength

PREFIX = "XpSampledMeanSpectrum"
FLUX_UNIT = "W m-2 nm-1"
"""The unit of the written flux, as astropy spells it (the files say ``W.m**-2.nm**-1``)."""
_ARCHIVE_UNIT = "W.m**-2.nm**-1"
COLUMNS: tuple[EcsvColumn, ...] = (
    EcsvColumn(
        "source_id", "int64", "Unique source identifier (unique within a particular Data Release)", "meta.id;meta.main"
    ),
    EcsvColumn("solution_id", "int64", "Solution Identifier", "meta.version"),
    EcsvColumn(
        "ra",
        "float64",
        "Right Ascension",
        "pos.eq.ra",
        unit="deg",
        utype="Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1",
    ),
    EcsvColumn(
        "dec",
        "float64",
        "Declination",
        "pos.eq.dec",
        unit="deg",
        utype="Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2",
    ),
    EcsvColumn(
        "flux", "string", "mean BP + RP combined spectrum flux", "spect", subtype="float32[null]", unit=_ARCHIVE_UNIT
    ),
    EcsvColumn(
        "flux_error",
        "string",
        "mean BP + RP combined spectrum flux error",
        "stat.error;spect",
        subtype="float32[null]",
        unit=_ARCHIVE_UNIT,
    ),
)
"""The header declarations of the archive's XP_SAMPLED RAW ECSV."""


def xp_simulation_grid() -> NativeGrid:
    """The default XP sampled grid: 336-1020 nm in 2 nm steps (343 px), fluxes in W m⁻² nm⁻¹, rest frame."""
    return NativeGrid(
        wavelength=xp_sampled_wavelength(),
        unit="nm",
        medium="vacuum",
        normalised=False,
        observed_frame=False,
        flux_unit=FLUX_UNIT,
    )


def write_xp_sampled(spectra: Spectra, folder: Path, rows_per_file: int = ROWS_PER_FILE) -> list[Path]:
    """Write ``spectra`` as XP sampled bulk files under ``folder``; return the files written.

    Parameters
    ----------
    spectra : Spectra
        On the XP sampled grid (:func:`xp_simulation_grid`), flux in W m⁻² nm⁻¹, ids positive int64.
    folder : Path
        Created when missing; files already there are never overwritten.
    rows_per_file : int
        Largest number of sources per file.

    Raises
    ------
    SimulationError
        Another grid, air wavelengths, ids that are not positive integers, or an unwritable folder.
    """
    if len(spectra) == 0:
        return []
    ids, flux, sigma = prepare(spectra, xp_sampled_wavelength(), "gaia_xp_sampled")
    scalars = {
        "solution_id": meta_column(spectra, "solution_id", integer=True),
        "ra": meta_column(spectra, "ra", integer=False),
        "dec": meta_column(spectra, "dec", integer=False),
    }
    return write_bulk(Path(folder), PREFIX, COLUMNS, ids, scalars, {"flux": flux, "flux_error": sigma}, rows_per_file)
