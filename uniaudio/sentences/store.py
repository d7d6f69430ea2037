"""The sentence store: training sentences as WebDataset tar shards, with the token store's conventions.

A store is a directory or prefix holding ``shard-000000.tar``, ``shard-000001.tar``, ... and an
``index.json`` written last (its presence means the store is complete). Each sentence is two adjacent
members, in this order::

    <key>.text.npy   int32 (N,)   text token ids (LLaMA-3.2), without <|begin_of_text|>/<|end_of_text|>
    <key>.json       metadata: key, task, source, document, chunk, chunks, tokens (N + 2)

Keys are ``/``-joined ``[A-Za-z0-9_-]`` components (no dots; WebDataset splits member names at the first
dot). The sequence format (:mod:`uniaudio.model.sequence`) wraps each text segment in begin/end of text,
so a sentence occupies ``N + 2`` steps; ``tokens`` counts those. Members are plain ``.npy`` (read with
``np.load(allow_pickle=False)``) and JSON; nothing needs pickle.

``index.json``: ``{"format": "uniaudio-sentence-store", "version": 1, "task", "created",
"shards": [{"name", "samples", "tokens", "bytes", "sha256"}], "totals": {...}, ...builder fields}``.

Shards are built in a local staging file and moved into place whole (rename locally, one upload to
S3), so a reader never sees a partial shard under its final name. There is no resume: an interrupted
build leaves no ``index.json`` and is rebuilt with ``overwrite``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from uniaudio.core import storage
from uniaudio.core.keys import check_key
from uniaudio.core.npy_codec import load_npy, npy_bytes
from uniaudio.core.shard_file import ShardFile, ShardLimits
from uniaudio.core.ustar import StoreReadError, iter_members, shard_name, split_member

__all__ = ["FORMAT_NAME", "INDEX_NAME", "Sentence", "SentenceStoreWriter", "iter_sentences", "read_index"]

FORMAT_NAME = "uniaudio-sentence-store"
FORMAT_VERSION = 1
INDEX_NAME = "index.json"
TEXT_MEMBER = "text.npy"


@dataclass(frozen=True)
class Sentence:
    """One training sentence: its key, text ids (int32, no begin/end of text) and metadata."""

    key: str
    text: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        """Steps the sentence takes in a training sequence (ids + begin/end of text)."""
        return int(self.text.size) + 2

    def members(self) -> list[tuple[str, bytes]]:
        meta = {"key": self.key, **self.meta, "tokens": self.tokens}
        text = np.ascontiguousarray(self.text, dtype=np.int32)
        return [
            (f"{self.key}.{TEXT_MEMBER}", npy_bytes(text)),
            (f"{self.key}.json", json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")),
        ]


@dataclass
class ShardInfo:
    """One shard's entry in ``index.json``: name, sentences, tokens (steps), size and sha256 of the tar."""

    name: str
    samples: int = 0
    tokens: int = 0
    bytes: int = 0
    sha256: str = ""


class SentenceStoreWriter:
    """Append sentences to a new store at ``uri``; :meth:`close` commits the last shard and the index.

    Refuses a store that already has an ``index.json`` unless ``overwrite``, and any other kind of store
    always. Shards left by an unfinished build (no index) and, with ``overwrite``, the old store's shards
    and index are deleted first. Use as a context manager: on an exception the open shard is dropped and
    no index is written. Shards are written by the token store's :class:`ShardFile` (staged, hashed,
    committed whole).
    """

    def __init__(self, uri: str, limits: ShardLimits | None = None, overwrite: bool = False) -> None:
        self.uri = uri
        self.limits = limits or ShardLimits()
        index_uri = storage.join(uri, INDEX_NAME)
        if storage.exists(index_uri):
            kind = json.loads(storage.read_bytes(index_uri)).get("format")
            if kind != FORMAT_NAME:
                raise FileExistsError(f"{uri} holds a {kind!r} store, not a sentence store; pick another output")
            if not overwrite:
                raise FileExistsError(f"{uri} already holds a sentence store (index.json); pass --overwrite")
            storage.remove(index_uri)
        for stale in storage.glob(uri, "shard-*.tar"):
            storage.remove(stale)
        self.shards: list[ShardInfo] = []
        self._file: ShardFile | None = None
        self._closed = False

    def write(self, sentence: Sentence) -> None:
        if self._closed:
            raise RuntimeError("writer is closed")
        check_key(sentence.key)
        if self._file is None:
            name = shard_name(len(self.shards))
            self.shards.append(ShardInfo(name=name))
            self._file = ShardFile(storage.join(self.uri, name))
        shard = self.shards[-1]
        self._file.add(sentence.members())
        shard.samples += 1
        shard.tokens += sentence.tokens
        if shard.samples >= self.limits.max_samples or self._file.size >= self.limits.max_bytes:
            self._commit()

    def _commit(self) -> None:
        shard = self.shards[-1]
        shard.bytes, shard.sha256 = self._file.commit()
        self._file = None

    def close(self, **fields: Any) -> dict[str, Any]:
        """Commit the open shard, then write ``index.json`` with ``fields`` (task, totals, ...) merged in."""
        if self._file is not None:
            self._commit()
        self._closed = True
        index = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **fields,
            "shards": [asdict(s) for s in self.shards],
        }
        storage.atomic_write_bytes(storage.join(self.uri, INDEX_NAME), json.dumps(index, indent=1).encode())
        return index

    def abort(self) -> None:
        if self._file is not None:
            self._file.abort()
            self._file = None
            self.shards.pop()
        self._closed = True

    def __enter__(self) -> SentenceStoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()


def read_index(uri: str) -> dict[str, Any]:
    """The store's ``index.json``; ``FileNotFoundError`` if the store is missing or incomplete."""
    index_uri = storage.join(uri, INDEX_NAME)
    if not storage.exists(index_uri):
        raise FileNotFoundError(f"{uri}: no {INDEX_NAME} (not a sentence store, or its build did not finish)")
    index = json.loads(storage.read_bytes(index_uri))
    if index.get("format") != FORMAT_NAME:
        raise ValueError(f"{uri}: {INDEX_NAME} is not a {FORMAT_NAME} index (format {index.get('format')!r})")
    return index


def iter_sentences(uri: str) -> Iterator[Sentence]:
    """Every sentence of a complete store, in shard order (each shard read once, sequentially)."""
    for shard in read_index(uri)["shards"]:
        shard_uri = storage.join(uri, shard["name"])
        with storage.open_uri(shard_uri) as f:
            first: tuple[str, bytes] | None = None
            for member in iter_members(f, shard_uri):
                if first is None:
                    first = member
                    continue
                (name, text), (json_name, meta), first = first, member, None
                key, ext = split_member(name)
                if ext != TEXT_MEMBER or json_name != f"{key}.json":
                    raise StoreReadError(f"{shard_uri}: expected {key}.{TEXT_MEMBER} then {key}.json, got "
                                         f"{name}, {json_name}")
                yield Sentence(key=key, text=load_npy(text), meta=json.loads(meta))
            if first is not None:
                raise StoreReadError(f"{shard_uri}: {first[0]} is not followed by its .json member")
