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

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from uniaudio.pipelines import storage
from uniaudio.pipelines.token_store.format import (
    TAR_END,
    check_key,
    npy_bytes,
    shard_name,
    split_member,
    tar_header,
    tar_padding,
)
from uniaudio.pipelines.token_store.writer import ShardLimits

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
    and index are deleted first. Use as a context manager: on an exception the open shard is dropped and no index
    is written.
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
        self._staging: Any = None
        self._file: Any = None
        self._path: Any = None
        self._sha = hashlib.sha256()
        self._closed = False

    def write(self, sentence: Sentence) -> None:
        if self._closed:
            raise RuntimeError("writer is closed")
        check_key(sentence.key)
        if self._file is None:
            self._open()
        shard = self.shards[-1]
        for name, data in sentence.members():
            self._emit(tar_header(name, len(data)) + data + tar_padding(len(data)))
        shard.samples += 1
        shard.tokens += sentence.tokens
        if shard.samples >= self.limits.max_samples or shard.bytes >= self.limits.max_bytes:
            self._commit()

    def _open(self) -> None:
        name = shard_name(len(self.shards))
        self.shards.append(ShardInfo(name=name))
        self._staging = storage.local_staging_file(storage.join(self.uri, name), suffix=".tar")
        path = self._staging.__enter__()
        self._file = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in _commit/abort
        self._path = path
        self._sha = hashlib.sha256()

    def _emit(self, data: bytes) -> None:
        self._file.write(data)
        self._sha.update(data)
        self.shards[-1].bytes += len(data)

    def _commit(self) -> None:
        self._emit(TAR_END)
        self._file.close()
        self._file = None
        shard = self.shards[-1]
        shard.sha256 = self._sha.hexdigest()
        storage.atomic_upload(self._path, storage.join(self.uri, shard.name))
        self._staging.__exit__(None, None, None)

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
            self._file.close()
            self._file = None
            self.shards.pop()
            self._staging.__exit__(None, None, None)
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
    """Every sentence of a complete store, in shard order (reads each shard sequentially)."""
    for shard in read_index(uri)["shards"]:
        with storage.open_uri(storage.join(uri, shard["name"])) as f, tarfile.open(fileobj=f, mode="r|") as tar:
            pending: dict[str, dict[str, bytes]] = {}
            for member in tar:
                key, ext = split_member(member.name)
                data = tar.extractfile(member).read()
                parts = pending.setdefault(key, {})
                parts[ext] = data
                if TEXT_MEMBER in parts and "json" in parts:
                    del pending[key]
                    text = np.load(io.BytesIO(parts[TEXT_MEMBER]), allow_pickle=False)
                    yield Sentence(key=key, text=text, meta=json.loads(parts["json"]))
