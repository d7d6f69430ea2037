"""A compact set of sample keys for exactly-once checks over stores of millions of keys.

A Python ``set`` of key strings costs ~150 bytes a key (the string and the table slot): 1.5 GB in a
driver resuming a 10M-sample store. :class:`KeySet` keeps each key's 128-bit BLAKE2b digest instead,
16 bytes a key in one sorted numpy array (160 MB at 10M keys), plus a bounded buffer of recent digests
merged into it when full. Two distinct keys share a digest with probability about ``n²/2¹²⁹``
(10⁻²⁶ at 10M keys), so membership is exact for any corpus this project will see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

__all__ = ["KeySet"]

_DIGEST = 16
_DTYPE = np.dtype(f"V{_DIGEST}")


def _digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=_DIGEST).digest()


class KeySet:
    """Add and test string keys; memory ~16 bytes a key plus at most ``buffer`` pending digests."""

    def __init__(self, keys: Iterable[str] = (), buffer: int = 65_536) -> None:
        if buffer < 1:
            raise ValueError(f"buffer must be at least 1, got {buffer}")
        self._buffer_size = buffer
        self._sorted = np.empty(0, dtype=_DTYPE)
        self._pending: set[bytes] = set()
        self.update(keys)

    def __len__(self) -> int:
        return len(self._sorted) + len(self._pending)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self._has(_digest(key))

    def _has(self, digest: bytes) -> bool:
        if digest in self._pending:
            return True
        if not len(self._sorted):
            return False
        probe = np.frombuffer(digest, dtype=_DTYPE)
        i = int(np.searchsorted(self._sorted, probe)[0])
        return i < len(self._sorted) and self._sorted[i] == probe[0]

    def add(self, key: str) -> None:
        digest = _digest(key)
        if not self._has(digest):
            self._pending.add(digest)
            if len(self._pending) >= self._buffer_size:
                self._merge()

    def update(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)

    def _merge(self) -> None:
        new = np.sort(np.frombuffer(b"".join(self._pending), dtype=_DTYPE))
        self._sorted = np.insert(self._sorted, np.searchsorted(self._sorted, new), new)
        self._pending = set()
