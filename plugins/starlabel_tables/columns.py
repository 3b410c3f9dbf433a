"""``table_columns``: auxiliary inputs taken from named columns of any table file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import Field

from starlabel.components import AuxiliaryProvider, ComponentOptions
from starlabel.containers import AuxTable, Population
from starlabel.tables import float_column, id_column, read_table


class TableColumnsOptions(ComponentOptions):
    """Options of ``table_columns``."""

    id_column: str = Field(description="column holding the source id (integer or string)")
    columns: dict[str, str] = Field(min_length=1, description="input name → table column")
    hdu: int | str | None = Field(None, description="FITS extension (default 1)")


class TableColumns(AuxiliaryProvider):
    """Per-star numeric inputs from named columns of a FITS, CSV, ECSV, VOTable or Parquet table."""

    name = "table_columns"
    Options = TableColumnsOptions
    citation = ""
    data_model_url = "https://docs.astropy.org/en/stable/io/unified.html"
    status = "stable"

    def columns(self) -> list[str]:
        """Input names, in the order of the ``columns`` option."""
        return list(self.options.columns)

    def load(self, paths: Sequence[Path]) -> AuxTable:
        """Read the mapped columns from every file; null or non-finite values are marked missing."""
        parts = []
        for path in paths:
            table = read_table(path, self.options.hdu)
            sid, null_id = id_column(table, self.options.id_column, path)
            cols = [float_column(table, column, path) for column in self.options.columns.values()]
            keep = ~null_id
            values = np.stack([c[0] for c in cols], axis=1)[keep]
            parts.append((str(path), sid[keep], values, np.stack([c[1] for c in cols], axis=1)[keep]))
        return AuxTable.concat(self.columns(), parts)

    def simulate(self, population: Population, ids: np.ndarray) -> dict[str, np.ndarray]:
        """``{id_column: ids}`` plus every mapped table column, its values found in ``population`` by name.

        Names are matched case-insensitively (``_``, ``-``, ``.``, blanks ignored): the table column's name,
        else the input name, among the population's magnitudes (with aliases such as ``Ks``, ``k_s``,
        ``kmag``, ``j_m``), labels and fields ``ra``, ``dec``, ``parallax``, ``distance``, ``vrad``, ``mass``,
        ``radius``. The alias table is in :mod:`starlabel_tables.columns_simulate`.

        Raises
        ------
        SimulationError
            A column the population cannot provide (the message lists what it offers).
        """
        from starlabel_tables.columns_simulate import simulate_columns

        return simulate_columns(population, ids, self.options.id_column, self.options.columns, self.name)
