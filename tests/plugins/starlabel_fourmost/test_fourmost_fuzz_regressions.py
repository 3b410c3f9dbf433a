"""Regressions found by the reader fuzzer (tests/contracts/test_fuzz_readers.py) in ``fourmost_lr_l1``."""

from __future__ import annotations

import time
from pathlib import Path

from starlabel.testing import edit_fits_card
from starlabel_fourmost.l1 import FourmostLrL1


def test_absurd_tfields_does_not_hang_identify(fourmost_files: dict[str, Path], tmp_path: Path) -> None:
    """Was a hang (minutes): identify listed the names of TFIELDS = 2**31 - 1 columns."""
    path = tmp_path / fourmost_files["lrs:C"].name
    path.write_bytes(edit_fits_card(fourmost_files["lrs:C"].read_bytes(), 1, "TFIELDS", "2147483647"))
    started = time.perf_counter()
    assert FourmostLrL1.identify(path) is False
    assert time.perf_counter() - started < 5
