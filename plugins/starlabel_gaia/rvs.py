"""``gaia_rvs_dr3``: Gaia DR3 RVS mean spectra (846-870 nm, 2401 pixels) as the Gaia archive publishes them.

Layouts read (details in the ``rvs_*`` modules and the plugin README):

- bulk files ``RvsMeanSpectrum_NNNNNN-MMMMMM.csv.gz``: gzip ECSV, one source per row, ``flux`` and
  ``flux_error`` as quoted JSON arrays of 2401 values (:mod:`starlabel_gaia.rvs_bulk`, streamed);
- DataLink products ``RVS-Gaia DR3 <source_id>.csv`` (2401 rows of ``wavelength, flux, flux_error`` with
  the scalars repeated) and the ECSV/FITS/VOTable variants with the scalars in the metadata;
- DataLink zip bundles holding such files (other products are skipped and listed).

Spectra come on the native grid ``846 + 0.01 i`` nm (vacuum, rest frame, continuum-normalised by the
archive): flux as stored (float32), ``ivar = 1 / flux_error²`` (float64, from the stored float32 errors),
the mask true where flux is not finite or ``ivar`` is 0. The edge pixels the archive leaves empty are
masked, nothing else: cutting noisy edges is the descriptor's ``mask:``. ``read_parts`` hands a bulk file
over in parts as it is parsed (``starlabel ingest`` uses it); ``read`` joins them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import Field

from starlabel.components import ComponentOptions, InstrumentReader
from starlabel.containers import NativeGrid, Spectra
from starlabel_gaia.rvs_batch import RvsBatch
from starlabel_gaia.rvs_grid import RVS_PIXELS
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
        from starlabel.containers import concat_spectra

        return concat_spectra(list(self.read_parts(path)))

    def read_parts(self, path: Path) -> Iterator[Spectra]:
        """Read ``path`` as consecutive parts (a bulk file in batches of a few hundred rows, as it is parsed).

        Concatenated, the parts are :meth:`read`'s result: the same rows and values, and the same problem
        lines (all carried by the last part). Memory stays bounded by a few batches whatever the file size.

        Raises
        ------
        DataFileError
            As :meth:`read`, possibly after some parts were handed out (the caller then drops them).
        """
        from functools import partial

        from starlabel_gaia.rvs_read import iter_rvs
        from starlabel_gaia.rvs_spectra import iter_spectra, ready

        path = Path(path)
        least = self.options.min_valid_pixels
        parts = iter_rvs(path, self.options.prefetch, partial(ready, min_valid_pixels=least))
        yield from iter_spectra(parts, str(path), least)

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
    from starlabel.containers import concat_spectra
    from starlabel_gaia.rvs_spectra import iter_spectra

    return concat_spectra(list(iter_spectra([batch], label, min_valid_pixels)))
