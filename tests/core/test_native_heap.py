"""native_heap: free C-heap pages go back to the OS, and a driver's stream trims on a schedule."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

import pytest

from uniaudio.core import native_heap
from uniaudio.core.native_heap import trim_free_heap, trimming


def _rss_anon_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's (macOS, musl: trimming is off)")
def test_freed_chunks_between_live_ones_stay_resident_until_trimmed():
    """What the drivers meet: chunks freed between live ones stay resident; the trim gives them back."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    chunk, count = 2000, 30_000  # ~57 MiB of small (heap, not mmap) chunks
    pointers = [libc.malloc(chunk) for _ in range(count)]
    for pointer in pointers:
        ctypes.memset(pointer, 1, chunk)  # make them resident
    kept = pointers[::64]  # one live chunk every ~125 KB, and the last one: the heap's top stays in use
    kept.append(pointers[-1])
    before_free = _rss_anon_mib()
    for pointer in set(pointers) - set(kept):
        libc.free(pointer)
    after_free = _rss_anon_mib()
    assert trim_free_heap()
    after_trim = _rss_anon_mib()
    for pointer in kept:
        libc.free(pointer)
    assert before_free - after_free < 10, (before_free, after_free)  # free() alone kept the pages
    assert after_free - after_trim > 30, (after_free, after_trim)


def test_trimming_yields_every_item_and_trims_once_per_interval_and_at_the_end(monkeypatch):
    trims: list[float] = []
    now = [0.0]
    monkeypatch.setattr(native_heap, "trim_free_heap", lambda: trims.append(now[0]) or True)

    def items():
        for i in range(10):
            now[0] = i * 2.0  # an item every 2 s
            yield i

    assert list(trimming(items(), every_s=5.0, clock=lambda: now[0])) == list(range(10))
    assert trims == [6.0, 12.0, 18.0, 18.0]  # before items 3, 6 and 9, then at the end of the stream
