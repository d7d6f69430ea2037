"""Finding one sample without reading the store: the journal says which shard holds each key."""

from __future__ import annotations

from uniaudio.core import storage
from uniaudio.pipelines.token_store.format import INDEX_NAME
from uniaudio.pipelines.token_store.index import read_index, read_journal
from uniaudio.pipelines.token_store.reader import iter_shard, shard_uris
from uniaudio.pipelines.token_store.sample import TokenSample

__all__ = ["find_sample", "is_store", "shard_of"]


def is_store(store_uri: str) -> bool:
    """True if ``store_uri`` holds a token store (finished, with ``index.json``, or being written)."""
    return storage.exists(storage.join(store_uri, INDEX_NAME)) or bool(read_journal(store_uri))


def shard_of(store_uri: str, key: str) -> str | None:
    """URI of the shard holding ``key`` per the journal (only shards the index lists, if it exists).

    Reads the journal entries (small JSON files), never a shard. ``None`` if the key is in none.
    """
    listed = None
    if storage.exists(storage.join(store_uri, INDEX_NAME)):
        listed = {s.name for s in read_index(store_uri).shards}
    for entry in read_journal(store_uri):
        if key in entry.keys and (listed is None or entry.shard.name in listed):
            return storage.join(store_uri, entry.shard.name)
    return None


def find_sample(store_uri: str, key: str) -> TokenSample | None:
    """The sample ``key``, reading only its shard; a store without a journal is scanned shard by shard."""
    if read_journal(store_uri):
        shard = shard_of(store_uri, key)
        return None if shard is None else next(iter_shard(shard, {key}), None)
    for uri in shard_uris(store_uri):
        for sample in iter_shard(uri, {key}):
            return sample
    return None
