"""Give the C heap's free pages back to the OS, so a long-running driver's RSS tracks its live memory.

Ray's C++ threads (object transfer, gRPC, task events) allocate a little for every block a Ray Data
execution moves and free it again, on glibc's per-thread arenas. glibc keeps what they free as
scattered free chunks and hands pages back only from the top of an arena, so a driver streaming
hundreds of thousands of blocks grows in resident memory where the heap it uses does not (measured
in bench/RESULTS.md: over 3,000 records of a build, in-use bytes flat, free bytes +3.8 MiB). ``malloc_trim(0)``
returns every whole free page of every arena (``MADV_DONTNEED``); it costs a walk of the free lists
(milliseconds), so :func:`trimming` calls it at most every few seconds.

Where the C library has no ``malloc_trim`` (macOS, musl) the calls do nothing and say so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import TypeVar

T = TypeVar("T")

#: seconds between two trims while a driver streams blocks
TRIM_EVERY_S = 5.0


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def trim_free_heap() -> bool:
    """Hand the C heap's free pages back to the OS; False where the C library cannot (not glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def trimming(items: Iterable[T], every_s: float = TRIM_EVERY_S,
             clock: Callable[[], float] = time.monotonic) -> Iterator[T]:
    """``items`` unchanged, with :func:`trim_free_heap` run before an item once ``every_s`` have passed
    since the last trim (and once at the end): for a driver's loop over a long Ray Data stream."""
    last = clock()
    for item in items:
        if clock() - last >= every_s:
            trim_free_heap()
            last = clock()
        yield item
    trim_free_heap()
