"""keep_freed_memory: glibc reuses freed big blocks instead of mapping fresh, page-faulted memory each time."""

from __future__ import annotations

import subprocess
import sys

import pytest

from starlabel.allocator import MAX_MMAP_THRESHOLD, keep_freed_memory

GROWING_ARRAYS = """
import resource, sys, numpy as np
if sys.argv[1] == "keep":
    from starlabel.allocator import keep_freed_memory
    assert keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for mb in range(1, 31):  # each array a little larger than the last, as glibc's adaptive threshold grows
    x = np.ones(mb << 18, np.float32)
    del x
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", GROWING_ARRAYS, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_freed_blocks_are_reused_instead_of_faulted_in_again() -> None:
    default, kept = _page_faults("default"), _page_faults("keep")
    assert kept * 1.5 < default, (kept, default)


def test_threshold_is_checked() -> None:
    for bad in (0, -1, MAX_MMAP_THRESHOLD + 1):
        with pytest.raises(ValueError, match=f"between 1 and {MAX_MMAP_THRESHOLD} bytes, got {bad}"):
            keep_freed_memory(bad)
