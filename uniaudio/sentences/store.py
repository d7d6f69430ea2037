"""The sentence store v2: training sentences as WebDataset tar shards, with the token store's conventions.

A store is a directory or ``s3://`` prefix holding ``shard-000000.tar``, ... a ``_journal/`` of committed
shards and an ``index.json`` written last (its presence means the store is complete). One sentence is
adjacent members, ``<key>.json`` first, then for each audio segment *i* ``<key>.seg<i>.reason.npy``,
``<key>.seg<i>.recon.npy`` (uint16 (8, T)) and ``<key>.seg<i>.<field>.npy`` (float16 distillation
features). The JSON and the index are described in docs/formats.md ("Sentence store").

Writing (:class:`SentenceStoreWriter`) is resumable like the token store's: each shard is staged and
committed whole, then its journal entry (``_journal/shard-NNNNNN.json``: shard entry, keys, and the
caller's notes, e.g. the work units it completes and the records it skipped) is written atomically;
re-opening a store with a journal continues after the last committed shard and deletes shards without a
journal entry. ``index.json`` is rebuilt from the journal on :meth:`SentenceStoreWriter.close`.

Reading: :func:`read_index`, :func:`shard_uris`, :func:`iter_shard` (one shard, for workers) and
:func:`iter_sentences` (the whole store). Version-1 stores (text only, before sentence store v2) are
refused with a message to rebuild them. Nothing is unpickled: ``.npy`` members are read with
``allow_pickle=False`` semantics.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from uniaudio.core import shard_journal, storage
from uniaudio.core.npy_codec import load_npy
from uniaudio.core.shard_file import ShardFile, ShardLimits
from uniaudio.core.shard_journal import JOURNAL_DIR, JournalEntry, write_journal_entry
from uniaudio.core.ustar import StoreReadError, iter_members, shard_index, shard_name, split_member
from uniaudio.sentences.sentence import Sentence, sentence_from_members

__all__ = [
    "FORMAT_NAME", "FORMAT_VERSION", "INDEX_NAME", "SentenceStoreWriter",
    "ShardInfo", "decode_member", "iter_sentences", "iter_shard", "read_index", "read_journal", "shard_uris",
]

log = logging.getLogger(__name__)

FORMAT_NAME = "uniaudio-sentence-store"
FORMAT_VERSION = 2
INDEX_NAME = "index.json"


@dataclass
class ShardInfo:
    """One shard's entry in ``index.json``: name, sentences, tokens, size and sha256 of the tar, and
    samples/tokens per task (``tasks``) and per strategy (``strategies``)."""

    name: str
    samples: int = 0
    tokens: int = 0
    bytes: int = 0
    sha256: str = ""
    tasks: dict[str, list[int]] = field(default_factory=dict)
    strategies: dict[str, list[int]] = field(default_factory=dict)


def read_journal(uri: str) -> list[JournalEntry[ShardInfo]]:
    """Committed shards of a sentence store being (or having been) written, in shard order."""
    return shard_journal.read_journal(uri, ShardInfo)


def _bump(table: dict[str, list[int]], name: str | None, tokens: int) -> None:
    if name:
        entry = table.setdefault(name, [0, 0])
        entry[0] += 1
        entry[1] += tokens


class SentenceStoreWriter:
    """Append sentences to the store at ``uri``, resuming a journaled unfinished build.

    ``fingerprint`` (a dict, e.g. tokenizer and codec fingerprints and the build options) must match the
    journal's when resuming, else ``ValueError``; a store that is complete (has ``index.json``) is
    refused unless ``overwrite``, which deletes it first (also any other kind of store at ``uri`` is
    refused). :attr:`committed_keys` and :attr:`notes` (the journal notes of committed shards, in order)
    tell the caller what is already done. Use as a context manager: on an exception the open shard is
    dropped, committed shards stay for a resume.
    """

    def __init__(self, uri: str, fingerprint: dict[str, Any] | None = None, limits: ShardLimits | None = None,
                 overwrite: bool = False) -> None:
        self.uri = uri
        self.limits = limits or ShardLimits()
        self.fingerprint = fingerprint or {}
        index_uri = storage.join(uri, INDEX_NAME)
        if storage.exists(index_uri):
            kind = json.loads(storage.read_bytes(index_uri)).get("format")
            if kind != FORMAT_NAME:
                raise FileExistsError(f"{uri} holds a {kind!r} store, not a sentence store; pick another output")
            if not overwrite:
                raise FileExistsError(f"{uri} already holds a sentence store (index.json); pass --overwrite")
        if overwrite:
            for stale in [index_uri, *storage.glob(storage.join(uri, JOURNAL_DIR), "shard-*.json")]:
                if storage.exists(stale):
                    storage.remove(stale)
        self.committed_keys, self._journal = shard_journal.read_committed(uri, ShardInfo)  # entries without keys
        old = {json.dumps(e.notes.get("fingerprint"), sort_keys=True) for e in self._journal}
        if old and old != {json.dumps(self.fingerprint, sort_keys=True)}:
            raise ValueError(f"{uri} holds an unfinished build with other inputs/options/tokenizer "
                             f"({sorted(old)[0]}); rerun it with the same arguments, or pass --overwrite")
        self._next = 1 + max((shard_index(e.shard.name) or 0 for e in self._journal), default=-1)
        committed = {e.shard.name for e in self._journal}
        for stale in storage.glob(uri, "shard-*.tar"):
            if stale.rsplit("/", 1)[-1] not in committed:
                log.warning("removing %s: no journal entry (left by an interrupted build)", stale)
                storage.remove(stale)
        if not storage.is_remote(uri):
            for stale in storage.glob(uri, ".shard-*.tmp*"):
                storage.remove(stale)
        self._file: ShardFile | None = None
        self._info: ShardInfo | None = None
        self._keys: list[str] = []
        self._open_keys: set[str] = set()
        self._closed = False

    @property
    def notes(self) -> list[dict[str, Any]]:
        """The notes of every committed shard, in shard order."""
        return [e.notes for e in self._journal]

    @property
    def shards(self) -> list[ShardInfo]:
        return [e.shard for e in self._journal]

    def write(self, sentence: Sentence) -> None:
        """Add one sentence; ``ValueError`` if its key is already in the store."""
        self.write_members(sentence.key, sentence.task, sentence.strategy, sentence.num_tokens, sentence.members())

    def write_members(self, key: str, task: str, strategy: str | None, num_tokens: int,
                      members: list[tuple[str, bytes]]) -> None:
        """Add one sentence already encoded (:meth:`Sentence.members`), with its counts for the index."""
        if self._closed:
            raise RuntimeError("writer is closed")
        if key in self._open_keys or key in self.committed_keys:
            raise ValueError(f"sentence key {key!r} is already in {self.uri}")
        if self._file is None:
            name = shard_name(self._next)
            self._next += 1
            self._info, self._file, self._keys = ShardInfo(name=name), ShardFile(storage.join(self.uri, name)), []
        self._file.add(members)
        self._keys.append(key)
        self._open_keys.add(key)
        self._info.samples += 1
        self._info.tokens += num_tokens
        _bump(self._info.tasks, task, num_tokens)
        _bump(self._info.strategies, strategy, num_tokens)

    def full(self) -> bool:
        """Whether the open shard has reached its limits (the caller then calls :meth:`commit`)."""
        return self._file is not None and (
            len(self._keys) >= self.limits.max_samples or self._file.size >= self.limits.max_bytes)

    def commit(self, notes: dict[str, Any] | None = None) -> ShardInfo | None:
        """Commit the open shard with ``notes`` in its journal entry (None if no shard is open)."""
        if self._file is None:
            return None
        self._info.bytes, self._info.sha256 = self._file.commit()
        entry = JournalEntry(self._info, self._keys, {**(notes or {}), "fingerprint": self.fingerprint})
        write_journal_entry(self.uri, entry)
        self._journal.append(JournalEntry(entry.shard, [], entry.notes))
        self.committed_keys.update(self._keys)
        self._file, self._info, self._keys, self._open_keys = None, None, [], set()
        return entry.shard

    def close(self, notes: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Commit the open shard, then write ``index.json`` with ``fields`` merged in; returns the index."""
        self.commit(notes)
        self._closed = True
        shards = self.shards
        tasks: dict[str, Counter] = {}
        strategies: dict[str, Counter] = {}
        for s in shards:
            for table, per in ((tasks, s.tasks), (strategies, s.strategies)):
                for name, (n, t) in per.items():
                    table.setdefault(name, Counter()).update(samples=n, tokens=t)
        index = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **fields,
            "tasks": {k: dict(v) for k, v in sorted(tasks.items())},
            "strategies": {k: dict(v) for k, v in sorted(strategies.items())},
            "totals": {"shards": len(shards), "samples": sum(s.samples for s in shards),
                       "tokens": sum(s.tokens for s in shards), "bytes": sum(s.bytes for s in shards)},
            "shards": [asdict(s) for s in shards],
        }
        storage.atomic_write_bytes(storage.join(self.uri, INDEX_NAME),
                                   json.dumps(index, indent=1, ensure_ascii=False).encode("utf-8"))
        return index

    def abort(self) -> None:
        """Drop the open shard (committed shards and their journal stay, so a rerun resumes)."""
        if self._file is not None:
            self._file.abort()
            self._file, self._info, self._keys, self._open_keys = None, None, [], set()
        self._closed = True

    def __enter__(self) -> SentenceStoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()


def read_index(uri: str) -> dict[str, Any]:
    """The store's ``index.json``.

    ``FileNotFoundError`` if the store is missing or unfinished; ``ValueError`` for another format or a
    version-1 store (rebuild it with ``uniaudio sentences build``) or a newer version.
    """
    index_uri = storage.join(uri, INDEX_NAME)
    if not storage.exists(index_uri):
        raise FileNotFoundError(f"{uri}: no {INDEX_NAME} (not a sentence store, or its build did not finish; "
                                "rerun the build to resume it)")
    index = json.loads(storage.read_bytes(index_uri))
    if index.get("format") != FORMAT_NAME:
        raise ValueError(f"{uri}: {INDEX_NAME} is not a {FORMAT_NAME} index (format {index.get('format')!r})")
    version = int(index.get("version", 0))
    if version < FORMAT_VERSION:
        raise ValueError(f"{uri}: a version-{version} sentence store (text only, before sentence store v2); "
                         "rebuild it with `uniaudio sentences build text-only OUT --text IN`")
    if version > FORMAT_VERSION:
        raise ValueError(f"{uri}: sentence store version {version} is newer than this uniaudio ({FORMAT_VERSION})")
    return index


def shard_uris(uri: str, index: dict[str, Any] | None = None) -> list[str]:
    """URIs of a complete store's shards, in order."""
    return [storage.join(uri, s["name"]) for s in (index or read_index(uri))["shards"]]


def decode_member(ext: str, data: bytes, where: str) -> Any:
    """A member's JSON or ``.npy`` content (no pickle); :class:`StoreReadError` naming ``where``."""
    try:
        return json.loads(data) if ext == "json" else load_npy(data)
    except ValueError as e:
        raise StoreReadError(f"{where}: cannot decode ({e})") from e


def iter_shard(shard_uri: str, keys: Iterable[str] | None = None) -> Iterator[Sentence]:
    """The sentences of one shard, in order (only ``keys`` if given). Members of a sentence must be
    adjacent, ``<key>.json`` first; anything else raises :class:`StoreReadError` naming the shard."""
    wanted = set(keys) if keys is not None else None
    with storage.open_uri(shard_uri) as f:
        key: str | None = None
        header: dict[str, Any] | None = None
        arrays: dict[str, Any] = {}
        seen: set[str] = set()

        def finish() -> Iterator[Sentence]:
            if key is not None and (wanted is None or key in wanted):
                try:
                    yield sentence_from_members(key, header, arrays, shard_uri)
                except ValueError as e:
                    raise StoreReadError(str(e)) from e

        for name, data in iter_members(f, shard_uri):
            k, ext = split_member(name)
            if k != key:
                yield from finish()
                if ext != "json":
                    raise StoreReadError(f"{shard_uri}: member {name!r} is not preceded by {k}.json")
                if k in seen:
                    raise StoreReadError(f"{shard_uri}: key {k!r} appears twice (members not adjacent)")
                seen.add(k)
                key, arrays = k, {}
                header = decode_member(ext, data, f"{shard_uri}:{name}")
                continue
            if ext in arrays or ext == "json":
                raise StoreReadError(f"{shard_uri}: member {name!r} appears twice")
            if wanted is None or k in wanted:
                arrays[ext] = decode_member(ext, data, f"{shard_uri}:{name}")
        yield from finish()


def iter_sentences(uri: str, keys: Iterable[str] | None = None) -> Iterator[Sentence]:
    """Every sentence of a complete store (or only ``keys``), shard by shard."""
    wanted = set(keys) if keys is not None else None
    for shard in shard_uris(uri):
        yield from iter_shard(shard, wanted)
