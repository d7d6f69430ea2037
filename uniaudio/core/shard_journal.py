"""The per-shard journal every store keeps while it is written (token stores, sentence stores).

Right after a shard is committed, ``<store>/_journal/shard-NNNNNN.json`` is written atomically with the
shard's record (a dataclass with a ``name``), the keys it holds and the writer's notes (e.g. the input
partitions or units it completes, fingerprints). A writer that crashed resumes from the journal, and the
store's ``index.json`` is assembled from it and written last.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Generic, TypeVar

from uniaudio.core import storage
from uniaudio.core.key_set import KeySet

__all__ = ["JOURNAL_DIR", "JournalEntry", "iter_journal", "read_committed", "read_journal", "read_journal_entry",
           "record_from_dict", "write_journal_entry"]

JOURNAL_DIR = "_journal"

S = TypeVar("S")


def record_from_dict(cls: type[S], d: dict[str, Any]) -> S:
    """``cls(**d)`` keeping only ``cls``'s fields (older or newer writers may add or drop some)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class JournalEntry(Generic[S]):
    """A committed shard's record, the keys in it, and the writer's notes."""

    shard: S
    keys: list[str]
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps({"shard": asdict(self.shard), "keys": self.keys, "notes": self.notes}).encode()


def write_journal_entry(store_uri: str, entry: JournalEntry) -> None:
    """Record ``entry`` under the store's journal (atomically; named after the shard)."""
    name = entry.shard.name.removesuffix(".tar")  # type: ignore[attr-defined]
    storage.atomic_write_bytes(storage.join(store_uri, JOURNAL_DIR, f"{name}.json"), entry.to_json())


def _entry(uri: str, shard_type: type[S]) -> JournalEntry[S]:
    d = json.loads(storage.read_bytes(uri))
    return JournalEntry(record_from_dict(shard_type, d["shard"]), list(d["keys"]), d.get("notes") or {})


def iter_journal(store_uri: str, shard_type: type[S]) -> Iterator[JournalEntry[S]]:
    """The journal one entry at a time (one LIST, then one read per entry), in journal-file name order:
    for a caller that keeps less than every key of the store in memory."""
    uris = storage.glob(storage.join(store_uri, JOURNAL_DIR), "shard-*.json")
    for uri in sorted(uris, key=lambda u: u.rsplit("/", 1)[-1]):
        yield _entry(uri, shard_type)


def read_journal(store_uri: str, shard_type: type[S]) -> list[JournalEntry[S]]:
    """Committed shards of a store being (or having been) written, in shard order."""
    return sorted(iter_journal(store_uri, shard_type), key=lambda e: e.shard.name)  # type: ignore[attr-defined]


def read_committed(store_uri: str, shard_type: type[S]) -> tuple[KeySet, list[JournalEntry[S]]]:
    """What a resuming writer needs: the committed keys as a :class:`KeySet` (16 bytes a key) and the
    entries in shard order *without* their keys; one entry's key list is in memory at a time."""
    keys, entries = KeySet(), []
    for entry in iter_journal(store_uri, shard_type):
        keys.update(entry.keys)
        entries.append(JournalEntry(entry.shard, [], entry.notes))
    return keys, sorted(entries, key=lambda e: e.shard.name)  # type: ignore[attr-defined]


def read_journal_entry(store_uri: str, shard_name: str, shard_type: type[S]) -> JournalEntry[S]:
    """The journal entry of one shard (named as :func:`write_journal_entry` names it)."""
    return _entry(storage.join(store_uri, JOURNAL_DIR, f"{shard_name.removesuffix('.tar')}.json"), shard_type)
