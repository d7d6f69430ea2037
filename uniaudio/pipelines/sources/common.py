"""Helpers shared by the corpus sources: paths under a root, cheap audio-file checks, big-file sharding."""

from __future__ import annotations

from typing import Any

from uniaudio.core import storage
from uniaudio.pipelines.records import Reject, RejectReason
from uniaudio.pipelines.sources.base import SourceError

__all__ = ["audio_file_reject", "parse_shard", "read_text", "relative_to", "shard_count", "shard_partitions"]


def relative_to(root: str, uri: str) -> str:
    """``uri`` relative to ``root`` with ``/`` separators (both as returned by :mod:`storage`)."""
    base = storage.strip_scheme(root).rstrip("/") + "/"
    path = storage.strip_scheme(uri)
    if not path.startswith(base):
        raise ValueError(f"{uri} is not under {root}")
    return path[len(base) :]


def audio_file_reject(source: str, key: str, uri: str, context: str) -> Reject | None:
    """A ``missing_file`` / ``zero_byte`` reject for ``uri`` (one stat / HEAD), or ``None`` if it is usable."""
    try:
        n = storage.size(uri)
    except FileNotFoundError:
        return Reject(key, source, RejectReason.MISSING_FILE, f"{context}: {uri} does not exist")
    if n == 0:
        return Reject(key, source, RejectReason.ZERO_BYTE, f"{context}: {uri} is empty")
    return None


def shard_count(option: Any, uri: str, bytes_per_shard: int) -> int:
    """Partitions for one big metadata file: the ``shards`` option, else one per ``bytes_per_shard``."""
    if option is not None:
        count = int(option)
        if count < 1:
            raise SourceError(f"shards must be >= 1, got {option!r}")
        return count
    return max(1, -(-storage.size(uri) // bytes_per_shard))


def shard_partitions(unit: str, count: int) -> list[str]:
    """``unit`` as ``count`` sorted partition ids ``<unit>#<i>-of-<count>`` (just ``unit`` when 1)."""
    if count == 1:
        return [unit]
    return [f"{unit}#{i:04d}-of-{count:04d}" for i in range(count)]


def parse_shard(partition: str) -> tuple[str, int, int]:
    """``(unit, index, count)`` of an id from :func:`shard_partitions`; item ``n`` belongs to ``n % count``."""
    unit, sep, shard = partition.rpartition("#")
    if not sep:
        return partition, 0, 1
    index, _, count = shard.partition("-of-")
    return unit, int(index), int(count)


def read_text(uri: str) -> str:
    """A small text file, BOM stripped (line endings are left to ``splitlines``)."""
    return storage.read_bytes(uri).decode("utf-8-sig")
