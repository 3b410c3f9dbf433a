"""``gaia_rvs_dr3``: Gaia DR3 RVS mean spectra (846-870 nm, 2401 pixels) as the Gaia archive publishes them.

Layouts read (details in the ``rvs_*`` modules and the plugin README):

- bulk files ``RvsMeanSpectrum_NNNNNN-MMMMMM.csv.gz``: gzip ECSV, one source per row, ``flux`` and
  ``flux_error`` as quoted JSON arrays of 2401 values (:mod:`starlabel_gaia.rvs_bulk`, streamed);
- DataLink products ``RVS-Gaia DR3 <source_id>.csv`` (2401 rows of ``wavelength, flux, flux_error`` with
  the scalars repeated) and the ECSV/FITS/VOTable variants with the scalars in the metadata;
- DataLink zip bundles holding such files (other products are skipped and listed).

Spectra come on the native grid ``846 + 0.01 i`` nm (vacuum, rest frame, continuum-normalised by the
archive), flux and ``ivar = 1 / flux_error²`` as stored (float32 values in float64 arrays), the mask true
where flux is not finite or ``ivar`` is 0. The edge pixels the archive leaves empty are masked, nothing
else: cutting noisy edges is the descriptor's ``mask:``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from starlabel.components import ComponentOptions, InstrumentReader
from starlabel.containers import NativeGrid, Spectra
from starlabel_gaia.ids import null_ids
from starlabel_gaia.rvs_batch import RvsBatch
from starlabel_gaia.rvs_grid import RVS_PIXELS, rvs_wavelength
from starlabel_gaia.rvs_sniff import has_archive_suffix, sniff


class GaiaRvsDr3Options(ComponentOptions):
    """Options of ``gaia_rvs_dr3``."""

    min_valid_pixels: int = Field(
        1000,
        ge=0,
        le=RVS_PIXELS,
        description="spectra with fewer valid pixels (finite flux, positive finite error) are skipped and reported",
    )
    prefetch: bool = Field(
        True,
        description="decompress bulk .csv.gz files in a background thread, overlapping with parsing "
        "(about 1.5x faster when a second core is free; results are identical)",
    )


class GaiaRvsDr3(InstrumentReader):
    """Gaia DR3 RVS mean spectra (2401 px, 846-870 nm): bulk csv.gz files, DataLink files and zip bundles."""

    name = "gaia_rvs_dr3"
    Options = GaiaRvsDr3Options
    line_list = "lines_rvs.csv"
    citation = (
        "Gaia Collaboration, Vallenari et al. 2023, A&A 674, A1 (Gaia DR3); RVS mean spectra: Seabroke et al. "
        "2022, Gaia DR3 documentation chapter 6 (Sartoretti et al. 2022); Katz et al. 2023, A&A 674, A5 (RVS "
        "processing and radial velocities); Recio-Blanco et al. 2023, A&A 674, A29 (GSP-Spec analysis of the "
        "RVS spectra)"
    )
    data_model_url = (
        "https://gea.esac.esa.int/archive/documentation/GDR3/Gaia_archive/chap_datamodel/"
        "sec_dm_spectroscopic_tables/ssec_dm_rvs_mean_spectrum.html"
    )
    status = "experimental"
    priority = 10

    @classmethod
    def identify(cls, path: Path) -> bool:
        """True for a ``.csv[.gz]``, ``.ecsv[.gz]``, ``.fits[.gz]``, ``.xml``, ``.vot`` or ``.zip`` file whose
        first bytes show an RVS layout (see :mod:`starlabel_gaia.rvs_sniff`). Cheap; never raises."""
        try:
            path = Path(path)
            return has_archive_suffix(path) and sniff(path) is not None
        except Exception:
            return False

    def read(self, path: Path) -> Spectra:
        """Read every spectrum in ``path``.

        Parameters
        ----------
        path : Path
            A bulk file, a DataLink product or a DataLink zip bundle.

        Returns
        -------
        Spectra
            In file order: ``source_id`` int64, the 2401-pixel grid (nm, vacuum), flux, ivar, mask and
            ``meta`` ``solution_id``, ``combined_transits``, ``combined_ccds``, ``deblended_ccds`` (int64,
            -1 = missing), ``ra``, ``dec`` (deg, NaN = missing). ``problems`` names every skipped row,
            source or member (wrong pixel count, null id, fewer than ``min_valid_pixels`` valid pixels),
            a truncated file, ignored zip members and repeated ids.

        Raises
        ------
        DataFileError
            Not an RVS file, or nothing in it could be read (no complete row, every row of the wrong
            length, ...); the message names the file and the expected layout.
        """
        from starlabel_gaia.rvs_read import read_rvs

        path = Path(path)
        return to_spectra(read_rvs(path, self.options.prefetch), str(path), self.options.min_valid_pixels)

    # -------------------------------------------------------------------------------- simulation
    def simulation_grid(self) -> NativeGrid:
        """846-870 nm in 0.01 nm steps (2401 px), vacuum, continuum-normalised, rest frame (as DR3 publishes)."""
        from starlabel_gaia.rvs_write import rvs_simulation_grid

        return rvs_simulation_grid()

    def write(self, spectra: Spectra, folder: Path) -> list[Path]:
        """Write ``spectra`` as bulk ``RvsMeanSpectrum_NNNNNN-MMMMMM.csv.gz`` files (at most 5000 sources
        each, never overwriting a file); see :mod:`starlabel_gaia.rvs_write`.

        Raises
        ------
        SimulationError
            Spectra on another grid, air wavelengths, ids that are not positive integers, unwritable folder.
        """
        from starlabel_gaia.rvs_write import write_rvs

        return write_rvs(spectra, Path(folder))


def to_spectra(batch: RvsBatch, label: str, min_valid_pixels: int) -> Spectra:
    """Turn a batch into :class:`Spectra`, dropping (and reporting) null ids and near-empty spectra."""
    problems = list(batch.problems)
    null = null_ids(batch.source_id, np.zeros(len(batch), dtype=bool))
    for row in np.flatnonzero(null):
        problems.append(f"{label}: spectrum {row} has a null source_id ({batch.source_id[row]}); skipped")
    flux = batch.flux.astype(np.float64)
    ivar = Spectra.ivar_from_sigma(batch.flux_error)
    bad = ~np.isfinite(flux)
    ivar[bad] = 0.0
    mask = bad | (ivar == 0)
    valid = RVS_PIXELS - np.count_nonzero(mask, axis=1)
    sparse = (valid < min_valid_pixels) & ~null
    for row in np.flatnonzero(sparse):
        problems.append(
            f"{label}: source_id {batch.source_id[row]} has {valid[row]} valid pixels, fewer than "
            f"min_valid_pixels = {min_valid_pixels}; skipped"
        )
    keep = ~(null | sparse)
    problems += _duplicates(label, batch.source_id[keep])
    return Spectra(
        source_id=batch.source_id[keep],
        wavelength=rvs_wavelength(),
        flux=flux[keep],
        ivar=ivar[keep],
        mask=mask[keep],
        unit="nm",
        medium="vacuum",
        meta={key: value[keep] for key, value in batch.meta.items()},
        problems=problems,
    )


def _duplicates(label: str, ids: np.ndarray) -> list[str]:
    """One line when some source ids occur more than once (all kept)."""
    unique, counts = np.unique(ids, return_counts=True)
    repeated = unique[counts > 1]
    if repeated.size == 0:
        return []
    shown = ", ".join(str(v) for v in repeated[:3]) + (", ..." if repeated.size > 3 else "")
    return [f"{label}: {repeated.size} source_id values occur more than once (e.g. {shown}); all kept"]
