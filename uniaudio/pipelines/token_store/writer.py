"""Writing a token store: shards capped by samples and bytes, each committed atomically.

A shard is built in a local staging file (beside the destination for local stores, so the final
rename is atomic; in the temp directory for S3, then uploaded as one object). Only after the shard is
visible under its final name is its journal entry written, and ``index.json`` is written last by
:meth:`TokenStoreWriter.close`. A crash therefore leaves at most a hidden temp file (local) or
nothing (S3), never a partial ``shard-NNNNNN.tar``.

Re-opening a store that has a journal resumes it: committed keys are known (:attr:`committed_keys`),
numbering continues after the last committed shard, and shards without a journal entry (a crash
between upload and journal write) are deleted and rewritten.

Memory: the committed keys are held as a :class:`~uniaudio.core.key_set.KeySet` (16 bytes a key) and
the in-memory journal keeps no key lists, so the writer holds ~16 bytes per key of the store plus the
open shard's keys (a Python set of str would be ~150 bytes a key).

Shards may also be written by others, e.g. the Ray actors of :mod:`uniaudio.pipelines.shard_writer_stage`
(``shard-<writer>-NNNNNN.tar``): the writer that owns the store journals them with :meth:`TokenStoreWriter.record`
once they are committed, and :func:`rewrite_without` drops keys from such a shard before it is recorded
(a key another shard already holds).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from uniaudio.core import storage
from uniaudio.core.shard_file import ShardFile, ShardLimits
from uniaudio.core.shard_journal import JournalEntry, read_committed, write_journal_entry
from uniaudio.core.ustar import shard_index, shard_name
from uniaudio.pipelines.token_store.format import INDEX_NAME
from uniaudio.pipelines.token_store.index import ShardEntry, StoreIndex
from uniaudio.pipelines.token_store.reader import iter_shard
from uniaudio.pipelines.token_store.sample import TokenSample

__all__ = ["CodecMismatchError", "DuplicateKeyError", "OpenShard", "TokenStoreWriter", "rewrite_without"]

log = logging.getLogger(__name__)


class CodecMismatchError(ValueError):
    """Resuming a store with tokens of another codec (mixing them would make the store meaningless)."""


class DuplicateKeyError(ValueError):
    """A key was written twice to one store."""


class OpenShard:
    """The token store's shard being written, with its tallies for the index."""

    def __init__(self, uri: str, name: str) -> None:
        self.name = name
        self.file = ShardFile(uri)
        self.keys: list[str] = []
        self.duration_s = 0.0
        self.reason_tokens = 0
        self.recon_tokens = 0
        self.sources: Counter[str] = Counter()

    def add(self, sample: TokenSample) -> None:
        self.file.add(sample.members())
        self.keys.append(sample.key)
        self.duration_s += sample.duration_s
        self.reason_tokens += int(sample.reason.size)
        self.recon_tokens += int(sample.recon.size)
        self.sources[str(sample.meta.get("source"))] += 1

    def finish(self) -> ShardEntry:
        size, sha256 = self.file.commit()
        return ShardEntry(
            name=self.name,
            samples=len(self.keys),
            bytes=size,
            sha256=sha256,
            duration_s=round(self.duration_s, 3),
            reason_tokens=self.reason_tokens,
            recon_tokens=self.recon_tokens,
            sources=dict(self.sources),
        )

    def abort(self) -> None:
        self.file.abort()


class TokenStoreWriter:
    """Append samples to a store at ``uri``; use as a context manager or call :meth:`close`.

    ``codec`` ({name, config, fingerprint}) identifies the tokenizer; resuming a store written with
    another fingerprint raises. ``on_commit(entry, notes)`` is called after each shard is committed
    (callers use it to record progress that must not run ahead of the shards, e.g. done-markers).
    """

    def __init__(
        self,
        uri: str,
        codec: dict[str, Any],
        limits: ShardLimits | None = None,
        on_commit: Callable[[ShardEntry, dict[str, Any]], None] | None = None,
    ) -> None:
        self.uri = uri
        self.codec = dict(codec)
        self.limits = limits or ShardLimits()
        self.on_commit = on_commit
        self.committed_keys, self._journal = read_committed(uri, ShardEntry)  # entries without keys
        self._check_codec()
        self._open_keys: set[str] = set()  # keys of the open shard
        self._next_index = 1 + max((shard_index(e.shard.name) or 0 for e in self._journal), default=-1)
        self._remove_uncommitted_shards()
        if self._journal and storage.exists(storage.join(uri, INDEX_NAME)):
            storage.remove(storage.join(uri, INDEX_NAME))  # appending: the index is rewritten on close
        self._shard: OpenShard | None = None
        self._closed = False

    @property
    def journal(self) -> list[JournalEntry]:
        """Committed shards so far, including those of earlier (resumed) runs (without their keys: those
        are in :attr:`committed_keys`)."""
        return list(self._journal)

    def _check_codec(self) -> None:
        old = {e.notes.get("codec_fingerprint") for e in self._journal} - {None}
        new = self.codec.get("fingerprint")
        if old and new not in old:
            raise CodecMismatchError(
                f"{self.uri} holds tokens from codec fingerprint {sorted(old)}, not {new!r}; "
                "write to a new store or rebuild with --force"
            )

    def _remove_uncommitted_shards(self) -> None:
        """Delete what an interrupted run left: unjournaled shards and (local) hidden staging files."""
        committed = {e.shard.name for e in self._journal}
        for uri in storage.glob(self.uri, "shard-*.tar"):
            name = uri.rsplit("/", 1)[-1]
            if name not in committed:
                log.warning("removing %s: it has no journal entry (left by an interrupted run)", uri)
                storage.remove(uri)
        if not storage.is_remote(self.uri):
            for uri in storage.glob(self.uri, ".shard-*.tmp*"):
                storage.remove(uri)

    def write(self, sample: TokenSample) -> None:
        """Add one sample; raises :class:`DuplicateKeyError` if its key is already in the store."""
        if self._closed:
            raise RuntimeError("writer is closed")
        if sample.key in self._open_keys or sample.key in self.committed_keys:
            raise DuplicateKeyError(f"key {sample.key!r} is already in {self.uri}")
        if self._shard is None:
            name = shard_name(self._next_index)
            self._shard = OpenShard(storage.join(self.uri, name), name)
            self._next_index += 1
        self._shard.add(sample)
        self._open_keys.add(sample.key)
        if len(self._shard.keys) >= self.limits.max_samples or self._shard.file.size >= self.limits.max_bytes:
            self.flush()

    def flush(self) -> ShardEntry | None:
        """Commit the open shard now (even if not full). Returns its entry, or None if none was open."""
        if self._shard is None:
            return None
        shard, self._shard = self._shard, None
        entry = shard.finish()
        self._journal_shard(entry, shard.keys, {})
        self._open_keys = set()
        return entry

    def duplicates(self, keys: list[str]) -> set[str]:
        """Those of ``keys`` the store already holds (committed or written by this writer)."""
        return {k for k in keys if k in self._open_keys or k in self.committed_keys}

    def record(self, entry: ShardEntry, keys: list[str], notes: dict[str, Any] | None = None) -> None:
        """Journal a shard another writer committed under this store, as if written here.

        The shard must hold tokens of this writer's codec (:class:`CodecMismatchError`) and no key the
        store already holds (:class:`DuplicateKeyError`; drop them first with :func:`rewrite_without`).
        """
        if self._closed:
            raise RuntimeError("writer is closed")
        fingerprint = (notes or {}).get("codec_fingerprint")
        if fingerprint != self.codec.get("fingerprint"):
            raise CodecMismatchError(f"{entry.name}: tokens of codec fingerprint {fingerprint!r}, "
                                     f"{self.uri} holds {self.codec.get('fingerprint')!r}")
        if dup := self.duplicates(keys):
            raise DuplicateKeyError(f"{entry.name}: keys already in {self.uri}: {sorted(dup)[:5]}")
        self._journal_shard(entry, keys, notes or {})

    def _journal_shard(self, entry: ShardEntry, keys: list[str], notes: dict[str, Any]) -> None:
        notes = {**notes, "codec_fingerprint": self.codec.get("fingerprint"), "codec": self.codec}
        write_journal_entry(self.uri, JournalEntry(shard=entry, keys=keys, notes=notes))
        self._journal.append(JournalEntry(shard=entry, keys=[], notes=notes))
        self.committed_keys.update(keys)
        if self.on_commit:
            self.on_commit(entry, notes)

    def close(self, extra: dict[str, Any] | None = None) -> StoreIndex:
        """Commit the last shard and write ``index.json`` (atomically, last)."""
        self.flush()
        self._closed = True
        index = StoreIndex(codec=self.codec, shards=[e.shard for e in self._journal], extra=extra or {})
        storage.atomic_write_bytes(storage.join(self.uri, INDEX_NAME), index.to_json())
        return index

    def abort(self) -> None:
        """Drop the open shard without committing it (committed shards stay; a re-open resumes)."""
        if self._shard is not None:
            self._shard.abort()
            self._shard = None
        self._closed = True

    def __enter__(self) -> TokenStoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def rewrite_without(store_uri: str, name: str, drop: set[str]) -> tuple[ShardEntry, list[str]] | None:
    """Rewrite the (not yet journaled) shard ``name`` of the store without the samples of ``drop``.

    The shard is replaced atomically under the same name; returns its new entry and keys, or ``None``
    (and the shard is deleted) when every sample was dropped. A crash midway leaves either shard whole,
    and an unjournaled shard is removed by the next writer, as any other.
    """
    uri = storage.join(store_uri, name)
    shard = OpenShard(uri, name)
    try:
        for sample in iter_shard(uri):
            if sample.key not in drop:
                shard.add(sample)
    except BaseException:
        shard.abort()
        raise
    if not shard.keys:
        shard.abort()
        storage.remove(uri)
        return None
    return shard.finish(), shard.keys
