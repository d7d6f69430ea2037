"""``index.json`` and the per-shard journal entries it is assembled from.

The journal (``_journal/shard-NNNNNN.json``, :mod:`uniaudio.core.shard_journal`) is written atomically
after each shard is committed, and holds the shard's :class:`ShardEntry`, its keys and the caller's notes (e.g. which
input partitions the shard completes). A writer that crashed resumes from it; ``index.json`` is
rebuilt from it and written last, so its presence means the store is complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from uniaudio.core import shard_journal, storage
from uniaudio.core.shard_journal import JOURNAL_DIR, JournalEntry, record_from_dict
from uniaudio.pipelines.token_store.format import FORMAT_NAME, FORMAT_VERSION, INDEX_NAME

__all__ = ["ShardEntry", "StoreIndex", "iter_journal", "read_index", "read_journal", "read_journal_entry"]


@dataclass
class ShardEntry:
    """One shard: name, sample count, size and sha256 of the tar, audio seconds and token counts."""

    name: str
    samples: int
    bytes: int
    sha256: str
    duration_s: float
    reason_tokens: int
    recon_tokens: int
    sources: dict[str, int] = field(default_factory=dict)



@dataclass
class StoreIndex:
    """The whole store: format, codec identity, shards and totals."""

    codec: dict[str, Any]
    shards: list[ShardEntry]
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, Any]:
        return {
            "shards": len(self.shards),
            "samples": sum(s.samples for s in self.shards),
            "bytes": sum(s.bytes for s in self.shards),
            "duration_s": round(sum(s.duration_s for s in self.shards), 3),
            "reason_tokens": sum(s.reason_tokens for s in self.shards),
            "recon_tokens": sum(s.recon_tokens for s in self.shards),
        }

    def to_json(self) -> bytes:
        body = {
            "format": self.format,
            "version": self.version,
            "created_at": self.created_at,
            "codec": self.codec,
            "codec_fingerprint": self.codec.get("fingerprint"),
            "totals": self.totals,
            "shards": [asdict(s) for s in self.shards],
            **({"extra": self.extra} if self.extra else {}),
        }
        return json.dumps(body, indent=1, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, where: str = "index.json") -> StoreIndex:
        try:
            d = json.loads(data)
            if d.get("format") != FORMAT_NAME:
                raise ValueError(f"format is {d.get('format')!r}, expected {FORMAT_NAME!r}")
            if int(d.get("version", 0)) > FORMAT_VERSION:
                raise ValueError(f"version {d.get('version')} is newer than this uniaudio ({FORMAT_VERSION})")
            return cls(
                codec=d.get("codec") or {},
                shards=[record_from_dict(ShardEntry, s) for s in d["shards"]],
                format=d["format"],
                version=int(d["version"]),
                created_at=d.get("created_at", ""),
                extra=d.get("extra", {}),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: not a uniaudio token-store index: {e}") from e


def read_index(store_uri: str) -> StoreIndex:
    """The store's index; ``FileNotFoundError`` (naming the URI) if the store is absent or unfinished."""
    uri = storage.join(store_uri, INDEX_NAME)
    if not storage.exists(uri):
        raise FileNotFoundError(
            f"{uri} does not exist: not a token store, or its build has not finished "
            f"(an unfinished build keeps its progress in {storage.join(store_uri, JOURNAL_DIR)})"
        )
    return StoreIndex.from_json(storage.read_bytes(uri), where=uri)


def read_journal(store_uri: str) -> list[JournalEntry[ShardEntry]]:
    """Committed shards of a token store being (or having been) written, in shard order."""
    return shard_journal.read_journal(store_uri, ShardEntry)


def iter_journal(store_uri: str) -> Iterator[JournalEntry[ShardEntry]]:
    """:func:`read_journal` one entry at a time (see :func:`uniaudio.core.shard_journal.iter_journal`)."""
    return shard_journal.iter_journal(store_uri, ShardEntry)


def read_journal_entry(store_uri: str, shard_name: str) -> JournalEntry[ShardEntry]:
    """The journal entry of one committed shard, keys included."""
    return shard_journal.read_journal_entry(store_uri, shard_name, ShardEntry)
