"""``table_labels``: reference labels from named columns of any table file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from starlabel.components import ComponentOptions, LabelCuts, LabelSource
from starlabel.containers import LabelTable
from starlabel.tables import float_column, id_column, read_table


class TableLabelsOptions(ComponentOptions):
    """Options of ``table_labels``."""

    id_column: str = Field(description="column holding the source id (integer or string)")
    columns: dict[str, str] = Field(min_length=1, description="label name → table column")
    errors: dict[str, str] = Field(default_factory=dict, description="label name → column of its 1-sigma error")
    units: dict[str, str] = Field(default_factory=dict, description="label name → unit string")
    hdu: int | str | None = Field(None, description="FITS extension (default 1)")

    @model_validator(mode="after")
    def _known_labels(self) -> TableLabelsOptions:
        for field in ("errors", "units"):
            unknown = sorted(set(getattr(self, field)) - set(self.columns))
            if unknown:
                raise ValueError(
                    f"{field} names labels not in columns: {', '.join(unknown)}; labels: {', '.join(self.columns)}"
                )
        return self


class TableLabelsCuts(LabelCuts):
    """Selection cuts of ``table_labels``.

    ``ranges`` keeps rows whose table column lies in ``[low, high]`` (either end may be null); a row
    failing a range is dropped. ``max_error`` marks a label not ok when its error exceeds the value.
    """

    ranges: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)
    max_error: dict[str, float] = Field(default_factory=dict)


class TableLabels(LabelSource):
    """Reference labels, errors and ok flags from named columns of any table file."""

    name = "table_labels"
    Options = TableLabelsOptions
    Cuts = TableLabelsCuts
    citation = ""
    data_model_url = "https://docs.astropy.org/en/stable/io/unified.html"
    status = "stable"

    def label_names(self) -> list[str]:
        """Labels named in the ``columns`` option."""
        return list(self.options.columns)

    def load(self, path: Path, columns: Sequence[str], cuts: LabelCuts) -> LabelTable:
        """Read ``columns`` for the rows of ``path`` that pass ``cuts``.

        A label is ok when its value is finite, its error (if mapped) is finite and positive, and the
        error is within ``cuts.max_error``. Rows with a null id are dropped.
        """
        if not isinstance(cuts, TableLabelsCuts):
            raise TypeError(f"table_labels expects {TableLabelsCuts.__name__} cuts, got {type(cuts).__name__}")
        opts = self.options
        table = read_table(path, opts.hdu)
        ids, null_id = id_column(table, opts.id_column, path)
        keep = ~null_id
        for column, (low, high) in cuts.ranges.items():
            values, missing = float_column(table, column, path)
            inside = ~missing
            if low is not None:
                inside &= values >= low
            if high is not None:
                inside &= values <= high
            keep &= inside
        n = int(keep.sum())
        values = np.full((n, len(columns)), np.nan)
        errors = np.full((n, len(columns)), np.nan)
        ok = np.zeros((n, len(columns)), dtype=bool)
        for j, label in enumerate(columns):
            value, missing = float_column(table, opts.columns[label], path)
            values[:, j] = value[keep]
            ok[:, j] = ~missing[keep]
            if label in opts.errors:
                error, error_missing = float_column(table, opts.errors[label], path)
                errors[:, j] = error[keep]
                ok[:, j] &= ~error_missing[keep] & (error[keep] > 0)
                if label in cuts.max_error:
                    ok[:, j] &= error[keep] <= cuts.max_error[label]
        units = {label: opts.units[label] for label in columns if label in opts.units}
        return LabelTable(ids[keep], list(columns), values, errors, ok, units)
