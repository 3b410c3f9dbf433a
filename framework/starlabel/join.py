"""Cross-matching rows by source id (int64 or str), without Python loops over rows."""

from __future__ import annotations

import numpy as np


def match_ids(query: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Index into ``table`` of each id in ``query``, or -1 where it has no match.

    When an id occurs several times in ``table`` the first occurrence is used.

    Raises
    ------
    TypeError
        Integer ids matched against string ids (or the reverse): say which column to join on instead.
    """
    if len(table) == 0 or len(query) == 0:
        return np.full(len(query), -1, dtype=np.int64)
    q_str, t_str = query.dtype.kind in "UO", table.dtype.kind in "UO"
    if q_str != t_str:
        raise TypeError(
            f"cannot join {'string' if q_str else 'integer'} source ids to {'string' if t_str else 'integer'} ids; "
            f"choose id columns of the same kind (e.g. both integer survey ids)"
        )
    if q_str:
        query, table = query.astype(str), table.astype(str)
    unique, first = np.unique(table, return_index=True)
    pos = np.searchsorted(unique, query)
    pos = np.clip(pos, 0, len(unique) - 1)
    found = unique[pos] == query
    return np.where(found, first[pos], -1).astype(np.int64)


def duplicated_count(ids: np.ndarray) -> int:
    """How many distinct ids occur more than once."""
    if len(ids) == 0:
        return 0
    _, counts = np.unique(ids.astype(str) if ids.dtype.kind == "O" else ids, return_counts=True)
    return int((counts > 1).sum())


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
