"""Memory allocator settings for long streaming runs (``starlabel predict``).

glibc's ``malloc`` gives every block larger than its *mmap threshold* (128 kB at start, growing with use)
its own fresh mapping and returns it to the kernel when freed, so each chunk's arrays of several MB are
page-faulted in again, zero-filled by the kernel, every time: on 10^6 spectra that is seconds of system
time per core. :func:`keep_freed_memory` raises the threshold so that such blocks come from the heap and
are reused chunk after chunk (the process's memory stays that of its largest working set, which is
bounded in a streaming run).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter numbers (glibc ``malloc.h``)."""
MAX_MMAP_THRESHOLD = 32 << 20
"""The largest mmap threshold glibc accepts on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``)."""


def keep_freed_memory(threshold: int = MAX_MMAP_THRESHOLD) -> bool:
    """Serve blocks up to ``threshold`` bytes from the heap and keep freed memory for reuse (glibc only).

    Parameters
    ----------
    threshold : int
        Blocks up to this size are no longer mapped and unmapped one by one; at most
        :data:`MAX_MMAP_THRESHOLD`. Free memory at the top of the heap is kept up to twice this.

    Returns
    -------
    bool
        True where glibc took both settings; False elsewhere (other C libraries, macOS, Windows), where
        nothing changes.

    Raises
    ------
    ValueError
        ``threshold`` is not in ``1 .. MAX_MMAP_THRESHOLD``.
    """
    if not 0 < threshold <= MAX_MMAP_THRESHOLD:
        raise ValueError(f"threshold must be between 1 and {MAX_MMAP_THRESHOLD} bytes, got {threshold}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(mallopt(M_TRIM_THRESHOLD, 2 * threshold))
