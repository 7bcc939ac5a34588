"""The allocator setting under the landing reader: tuning, not meaning (no row depends on it)."""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator

# glibc's mallopt parameters (malloc.h) and their documented defaults.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_GLIBC_DEFAULT_THRESHOLD = 128 * 1024


@contextlib.contextmanager
def buffers_reused(batch_bytes: int) -> Iterator[None]:
    """While a dataset is read, freed file buffers stay in the process heap for the next batch's files;
    afterwards the heap's free memory is given back to the system.

    glibc maps each buffer of megabytes afresh and unmaps it when it is freed, so each batch faulted its
    memory in again; raising the thresholds to a couple of batches lets the next batch reuse the last one's
    (measured in benchmarks/FINDINGS.md: the scale-100 read, 0.7 s of faults against 0.2 s). They go back
    to glibc's defaults afterwards, so the rest of the run keeps no freed memory. Elsewhere than glibc this
    does nothing.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        yield
        return
    mallopt(_M_MMAP_THRESHOLD, 2 * batch_bytes)
    mallopt(_M_TRIM_THRESHOLD, 4 * batch_bytes)
    try:
        yield
    finally:
        mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)
        mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)
        malloc_trim(0)
