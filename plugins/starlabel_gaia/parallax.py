"""``gaia_parallax``: Gaia parallax, its error and absolute magnitudes, with an optional zero-point correction.

Columns, in order: ``parallax``, ``parallax_error`` (mas) and ``abs_g``, ``abs_bp``, ``abs_rp`` (mag, for the
bands of option ``bands``). With the parallax ϖ in mas the distance is ``d = 1000 / ϖ`` pc, so

    M = m − 5 log10(d / 10 pc) = m + 5 log10(ϖ / 100)

(no extinction correction; ϖ is the zero-point-corrected parallax).

Zero point (option ``zero_point``): ``"none"``; a number Z (mas), subtracted: ``ϖ = parallax − Z``; or
``"lindegren2021"``: Z from :mod:`starlabel_gaia.parallax_zeropoint` per source, which needs the columns
``phot_g_mean_mag``, ``nu_eff_used_in_astrometry``, ``pseudocolour``, ``ecl_lat`` and
``astrometric_params_solved``.

What is missing (NaN and flagged, never zero):

- ``parallax``: the published value is null or not finite; or (``lindegren2021``) no Z can be computed
  (2-parameter solution, null inputs), or the source lies outside the calibrated range and
  ``zero_point_outside`` is ``"missing"`` (the default; ``"extrapolate"`` keeps the recipe's clamped value);
- ``parallax_error``: null or not finite (never depends on the zero point);
- ``abs_*``: ``parallax`` missing or ≤ 0 (corrected value), ``parallax_over_error`` below ``min_over_error``,
  or the magnitude missing (null, non-finite, placeholder below −90, or no such column in the file).

So a finite non-positive parallax is kept in ``parallax`` while the absolute magnitudes are masked.
``parallax_over_error`` is the catalogue column when present (published parallax / error), else computed
from the published (uncorrected) parallax and its error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from starlabel.components import AuxiliaryProvider, ComponentOptions
from starlabel.containers import AuxTable, Population
from starlabel.errors import MissingColumnError
from starlabel.tables import find_column, float_column, id_column, read_table
from starlabel_gaia.ids import null_ids
from starlabel_gaia.parallax_zeropoint import zero_point
from starlabel_gaia.photometry import ID_CANDIDATES, SENTINEL_BELOW, band_candidates, check_simulation_ids

Band = Literal["g", "bp", "rp"]
ZERO_POINT_COLUMNS: tuple[str, ...] = (
    "phot_g_mean_mag",
    "nu_eff_used_in_astrometry",
    "pseudocolour",
    "ecl_lat",
    "astrometric_params_solved",
)


class GaiaParallaxOptions(ComponentOptions):
    """Options of ``gaia_parallax``."""

    zero_point: Literal["none", "lindegren2021"] | float = Field(
        "none", description="parallax zero point: none, lindegren2021 (per source), or a constant Z in mas (subtracted)"
    )
    zero_point_outside: Literal["missing", "extrapolate"] = Field(
        "missing",
        description="lindegren2021 outside 6<G<21 and its colour range: mark the parallax missing, or extrapolate",
    )
    min_over_error: float = Field(0.0, ge=0, description="parallax_over_error below this → absolute magnitudes missing")
    bands: list[Band] = Field(default_factory=lambda: ["g", "bp", "rp"], description="absolute magnitudes to return")
    id_column: str | None = Field(
        None, description=f"source-id column; default: the first present of {', '.join(ID_CANDIDATES)}"
    )
    parallax_column: str = Field("parallax", description="parallax column (mas)")
    parallax_error_column: str = Field("parallax_error", description="parallax error column (mas)")
    g_column: str | None = Field(None, description="G magnitude column; default: " + ", ".join(band_candidates("g")))
    bp_column: str | None = Field(None, description="BP magnitude column; default: " + ", ".join(band_candidates("bp")))
    rp_column: str | None = Field(None, description="RP magnitude column; default: " + ", ".join(band_candidates("rp")))
    hdu: int | str | None = Field(None, description="FITS extension to read (default 1)")


def absolute_magnitude(magnitude: np.ndarray, parallax_mas: np.ndarray) -> np.ndarray:
    """``m + 5 log10(ϖ / 100)`` with ϖ in mas (distance 1000/ϖ pc); NaN where ϖ ≤ 0 or either is not finite."""
    good = np.isfinite(magnitude) & np.isfinite(parallax_mas) & (parallax_mas > 0)
    out = np.full(np.shape(magnitude), np.nan)
    out[good] = magnitude[good] + 5.0 * np.log10(parallax_mas[good] / 100.0)
    return out


class GaiaParallax(AuxiliaryProvider):
    """Gaia parallax (zero-point corrected on request), its error, and absolute G, BP, RP magnitudes."""

    name = "gaia_parallax"
    Options = GaiaParallaxOptions
    citation = (
        "Gaia Collaboration, Vallenari et al. 2023, A&A 674, A1 (Gaia DR3); Lindegren et al. 2021, A&A 649, A2 "
        "(astrometric solution) and A&A 649, A4 (parallax zero point)"
    )
    data_model_url = (
        "https://gea.esac.esa.int/archive/documentation/GDR3/Gaia_archive/chap_datamodel/"
        "sec_dm_main_source_catalogue/ssec_dm_gaia_source.html"
    )
    status = "experimental"

    def columns(self) -> list[str]:
        """``parallax, parallax_error`` then ``abs_<band>`` for each of ``bands``."""
        return ["parallax", "parallax_error", *(f"abs_{band}" for band in self.options.bands)]

    def load(self, paths: Sequence[Path]) -> AuxTable:
        """Read every star of ``paths`` (rows with a null or non-positive id are dropped).

        Raises
        ------
        MissingColumnError
            No id, parallax or error column, no G column when ``abs_g`` or the Lindegren zero point needs
            it, or (``lindegren2021``) any of its input columns; the message lists all that are missing.
        DataFileError
            Unreadable file, float ids, or files mixing integer and string ids.
        """
        return AuxTable.concat(self.columns(), [(str(path), *self._load_one(Path(path))) for path in paths])

    def simulate(self, population: Population, ids: np.ndarray) -> dict[str, np.ndarray]:
        """``gaia_source`` astrometry of ``population``: the id column (``ids``), the observed parallax (true
        parallax + the Lindegren et al. 2021 zero point + noise of the DR3 parallax uncertainty at the
        star's G), ``parallax_error``, ``parallax_over_error``, the zero-point inputs
        (``astrometric_params_solved``, ``nu_eff_used_in_astrometry``, ``pseudocolour``, ``ecl_lat``, the G
        magnitude) and the BP, RP magnitudes, named as :meth:`load` reads them; ``ra``, ``dec`` too. See
        :mod:`starlabel_gaia.simulate_aux`. The zero point is always injected, whatever ``zero_point`` says:
        with ``lindegren2021`` :meth:`load` gives back the true parallax plus the noise.

        Raises
        ------
        SimulationError
            The population has no V or I magnitude (G is derived from them), or ``ids`` is not one per star.
        """
        from starlabel_gaia.simulate_aux import astrometry_columns, photometry_columns

        options = self.options
        out = {options.id_column or ID_CANDIDATES[0]: check_simulation_ids(self.name, population, ids)}
        photometry = photometry_columns(population, self.name)
        astrometry = astrometry_columns(population, photometry)
        out[options.parallax_column] = astrometry.pop("parallax")
        out[options.parallax_error_column] = astrometry.pop("parallax_error")
        astrometry.pop("zero_point")
        out |= astrometry
        for band in ("g", "bp", "rp"):
            out[getattr(options, f"{band}_column") or band_candidates(band)[0]] = photometry[f"phot_{band}_mean_mag"]
        return out

    # ------------------------------------------------------------------------------------------ one file
    def _load_one(self, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        table = read_table(path, self.options.hdu)
        options = self.options
        id_name = self._column(table, path, "id_column", [options.id_column] if options.id_column else ID_CANDIDATES)
        sid, id_missing = id_column(table, id_name, path)
        keep = ~null_ids(sid, id_missing)

        raw, _ = float_column(table, self._column(table, path, "parallax_column", [options.parallax_column]), path)
        error, error_bad = float_column(
            table, self._column(table, path, "parallax_error_column", [options.parallax_error_column]), path
        )
        corrected = raw - self._zero_point(table, path)

        over = find_column(table.colnames, ["parallax_over_error"])
        ratio = float_column(table, over, path)[0] if over else raw / np.where(error > 0, error, np.nan)
        trusted = np.isfinite(corrected) & (corrected > 0)
        if options.min_over_error > 0:
            trusted &= np.isfinite(ratio) & (ratio >= options.min_over_error)

        columns = [corrected, np.where(error_bad, np.nan, error)]
        for band in options.bands:
            magnitude = self._magnitude(table, path, band)
            columns.append(np.where(trusted, absolute_magnitude(magnitude, corrected), np.nan))
        values = np.stack(columns, axis=1)
        return sid[keep], values[keep], ~np.isfinite(values[keep])

    def _zero_point(self, table: Any, path: Path) -> np.ndarray | float:
        """Z (mas) per row, or a constant; NaN where it is unknown (or outside the range, by option)."""
        setting = self.options.zero_point
        if setting == "none":
            return 0.0
        if not isinstance(setting, str):
            return float(setting)
        names = {
            wanted: find_column(
                table.colnames,
                [self.options.g_column] if wanted == "phot_g_mean_mag" and self.options.g_column else [wanted],
            )
            for wanted in ZERO_POINT_COLUMNS
        }
        absent = [wanted for wanted, found in names.items() if found is None]
        if absent:
            raise MissingColumnError(
                str(path),
                absent[0],
                list(table.colnames),
                f"zero_point: lindegren2021 needs the gaia_source columns {', '.join(ZERO_POINT_COLUMNS)}; "
                f"missing: {', '.join(absent)}. Use zero_point: none or a constant (mas) for tables without them",
            )
        g, nu, pc, beta = (float_column(table, names[c], path)[0] for c in ZERO_POINT_COLUMNS[:4])
        solved_column = table[names["astrometric_params_solved"]]
        solved = np.where(np.ma.getmaskarray(solved_column), -1, np.ma.getdata(solved_column)).astype(np.int64)
        z, valid = zero_point(g, nu, pc, beta, solved)
        if self.options.zero_point_outside == "missing":
            z = np.where(valid, z, np.nan)
        return z

    def _magnitude(self, table: Any, path: Path, band: str) -> np.ndarray:
        """Magnitude of ``band``; all NaN when the file has no such column (unless named by option)."""
        given = getattr(self.options, f"{band}_column")
        name = find_column(table.colnames, [given] if given else band_candidates(band))
        if name is None:
            if given or band == "g":
                self._column(table, path, f"{band}_column", [given] if given else band_candidates(band))
            return np.full(len(table), np.nan)
        values, bad = float_column(table, name, path)
        return np.where(bad | (values < SENTINEL_BELOW), np.nan, values)

    @staticmethod
    def _column(table: Any, path: Path, option: str, candidates: Sequence[str]) -> str:
        found = find_column(table.colnames, candidates)
        if found is None:
            raise MissingColumnError(
                str(path),
                candidates[0],
                list(table.colnames),
                f"looked for {', '.join(candidates)}; set option {option} to the column to use",
            )
        return found
