"""What sentence builders read: token-store samples with their pool (speech, sound, music) and input shard.

:func:`pool_of` maps a record's ``source`` to its pool (MLS/LibriSpeech/Emilia/... → speech,
AudioSet/WavCaps/AudioCaps/... → sound, MusicCaps/MSD → music); ``--pool URI=POOL`` overrides it for every
sample of one input store (:func:`parse_pool_option` splits at the **last** ``=``, since URIs contain
colons and may contain ``=``). :func:`list_input_shards` lists the shards of the input stores (checking
they are complete and share one codec fingerprint); :func:`read_input_shard` reads one of them as
:class:`SourceSample`\\ s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from uniaudio.pipelines.token_store import read_index
from uniaudio.pipelines.token_store.reader import iter_shard, shard_uris

__all__ = ["POOLS", "InputShard", "SourceSample", "codec_of_inputs", "list_input_shards", "parse_pool_option",
           "pool_of", "read_input_shard"]

POOLS = ("speech", "sound", "music")

_SOURCE_POOLS = {
    "speech": ("librispeech", "mls", "emilia", "librilight", "libri-light", "wenetspeech", "capspeech",
               "libritts", "gigaspeech", "commonvoice", "voxpopuli"),
    "sound": ("audioset", "wavcaps", "audiocaps", "laion-audio", "laion_audio", "clotho", "freesound", "esc50"),
    "music": ("musiccaps", "msd", "fma", "jamendo", "mtg-jamendo", "song-describer"),
}


def pool_of(source: str | None) -> str | None:
    """The pool of a record's source name (``mls_english`` → speech), or None when unknown."""
    name = (source or "").lower()
    for pool, names in _SOURCE_POOLS.items():
        if any(name == n or name.startswith(n + "_") or name.startswith(n + "-") or name.startswith(n + "/")
               for n in names):
            return pool
    return None


def parse_pool_option(value: str) -> tuple[str, str]:
    """``"s3://bucket/store=music"`` → ``("s3://bucket/store", "music")``; ``ValueError`` with the fix."""
    uri, sep, pool = value.rpartition("=")
    if not sep or not uri or pool not in POOLS:
        raise ValueError(f"--pool {value!r}: expected STORE_URI=POOL with POOL one of {', '.join(POOLS)}")
    return uri, pool


@dataclass
class SourceSample:
    """One token-store sample as builders see it (see /work/notes/sentences-api.md and docs/formats.md)."""

    key: str
    reason: np.ndarray
    recon: np.ndarray
    meta: dict[str, Any]
    features: dict[str, np.ndarray] = field(default_factory=dict)
    store: str = ""
    pool: str | None = None

    def alignment(self) -> list[tuple[str, float, float]] | None:
        """Time-aligned words ``[(word, start_s, end_s), ...]`` when the source has them, else None."""
        found = self.meta.get("alignment") or (self.meta.get("source_meta") or {}).get("alignment")
        if not found:
            return None
        return [(str(w), float(s), float(e)) for w, s, e in found]


@dataclass(frozen=True)
class InputShard:
    """One shard of an input token store: its URI, its store, and the pool override for that store."""

    uri: str
    store: str
    store_index: int
    shard_index: int
    pool: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def codec_of_inputs(stores: list[str]) -> dict[str, Any]:
    """The codec entry shared by ``stores``; ``ValueError`` naming the stores when fingerprints differ."""
    codecs = {uri: read_index(uri).codec for uri in stores}
    prints = {uri: c.get("fingerprint") for uri, c in codecs.items()}
    if len(set(prints.values())) > 1:
        listing = "; ".join(f"{u}: {p}" for u, p in prints.items())
        raise ValueError(f"the input token stores were made by different codecs ({listing}); "
                         "build sentences from stores of one codec")
    return next(iter(codecs.values())) if codecs else {}


def list_input_shards(stores: list[str], pools: dict[str, str] | None = None) -> list[InputShard]:
    """Every shard of every store, in argument order (each store must be complete: have its index)."""
    pools = pools or {}
    unknown = set(pools) - set(stores)
    if unknown:
        raise ValueError(f"--pool names store(s) that are not --tokens inputs: {', '.join(sorted(unknown))}")
    out = []
    for i, store in enumerate(stores):
        for j, uri in enumerate(shard_uris(store)):
            out.append(InputShard(uri=uri, store=store, store_index=i, shard_index=j, pool=pools.get(store)))
    return out


def read_input_shard(shard: InputShard | dict[str, Any]) -> list[SourceSample]:
    """The samples of one input shard, in order, with their pool (the store override, else the source's).

    Distillation features are stored (D, T_s) in token stores and become (T_s, D) here, the layout of sentence
    stores and of the model's ``AudioSegment.features``."""
    s = shard if isinstance(shard, InputShard) else InputShard(**shard)
    return [SourceSample(key=t.key, reason=t.reason, recon=t.recon, meta=t.meta,
                         features={name: np.ascontiguousarray(v.T) for name, v in t.extras.items()},
                         store=s.store, pool=s.pool or pool_of(t.meta.get("source")))
            for t in iter_shard(s.uri)]
