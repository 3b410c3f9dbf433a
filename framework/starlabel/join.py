"""Cross-matching rows by source id (int64 or str), without Python loops over rows."""

from __future__ import annotations

import numpy as np


class IdIndex:
    """Sorted unique ids of a table, built once and looked up many times (first occurrence wins).

    Raises
    ------
    TypeError
        On lookup, integer ids against string ids (or the reverse): say which column to join on instead.
    """

    def __init__(self, table: np.ndarray) -> None:
        self.is_str = table.dtype.kind in "UO"
        self.size = len(table)
        self.unique, self.first = np.unique(table.astype(str) if self.is_str else table, return_index=True)

    def lookup(self, query: np.ndarray) -> np.ndarray:
        """Row of each id of ``query`` in the table, or -1."""
        if self.size == 0 or len(query) == 0:
            return np.full(len(query), -1, dtype=np.int64)
        q_str = query.dtype.kind in "UO"
        if q_str != self.is_str:
            raise TypeError(
                f"cannot join {'string' if q_str else 'integer'} source ids to "
                f"{'string' if self.is_str else 'integer'} ids; "
                f"choose id columns of the same kind (e.g. both integer survey ids)"
            )
        if q_str:
            query = query.astype(str)
        pos = np.clip(np.searchsorted(self.unique, query), 0, len(self.unique) - 1)
        return np.where(self.unique[pos] == query, self.first[pos], -1).astype(np.int64)


def keep_best(ids: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mask keeping, for each id, the row with the highest ``score`` (NaN lowest; ties: the first row)."""
    n = len(ids)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    key = np.where(np.isfinite(score), score, -np.inf)
    ids_sortable = ids.astype(str) if ids.dtype.kind == "O" else ids
    order = np.lexsort((np.arange(n), -key, ids_sortable))  # by id, then best score, then row
    sorted_ids = ids_sortable[order]
    first = np.ones(n, dtype=bool)
    first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    keep[order[first]] = True
    return keep
