"""The loader's shuffle buffer takes the same rows as deleting them from a list, without copying the buffer."""

from __future__ import annotations

import numpy as np

from starlabel.data import _Pool


def test_pool_takes_rows_as_list_deletion_would() -> None:
    rng = np.random.default_rng(3)
    first = {"row": np.arange(37), "flux": np.arange(37 * 2, dtype=np.float32).reshape(37, 2)}
    pool = _Pool(first)
    naive = list(range(37))
    taken, expected = [], []
    for step in range(20):
        if step == 12:  # a chunk arrives: the waiting rows, then the new ones
            more = {"row": np.arange(100, 110), "flux": np.full((10, 2), -1, np.float32)}
            pool = pool.extended(more)
            naive += list(range(100, 110))
        size = 1 + step % 3
        pick = rng.choice(pool.alive, size=size, replace=False)
        rows = pool.take(pick)
        taken += rows["row"].tolist()
        expected += [naive[i] for i in pick]
        for i in sorted(pick.tolist(), reverse=True):
            del naive[i]
        assert pool.alive == len(naive)
    assert taken == expected
    left = pool.compacted()
    assert left["row"].tolist() == naive
    assert left["flux"][left["row"] < 100, 0].tolist() == [2.0 * r for r in naive if r < 100]
