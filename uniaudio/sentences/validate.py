"""``uniaudio sentences validate``: check a sentence store against its index, as ``shards validate`` does.

Checks: ``index.json`` is a v2 sentence-store index; every listed shard exists and no unlisted one does;
each shard's size, sha256, sentence and token counts match its entry; tars are complete with safe member
names; each sentence's members are adjacent, ``<key>.json`` first, with one reason/recon pair per audio
segment; keys are unique; audio arrays are uint16 (codebooks, T) with ids below the codebook sizes,
features float16; text ids are below the tokenizer's vocabulary; ``num_tokens`` equals the length
recomputed from the segments and is at most the build's ``--max-tokens``; ``source_keys`` matches.
Every problem is returned as a line naming the shard and key; an empty list means the store is sound.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable

import numpy as np

from uniaudio.core import storage
from uniaudio.core.ustar import StoreReadError, iter_members, split_member
from uniaudio.pipelines.token_store.format import StoreSpec
from uniaudio.sentences.sentence import Sentence, sentence_from_members, sequence_length
from uniaudio.sentences.store import decode_member, read_index

__all__ = ["validate_sentence_store"]


def _codebook_sizes(index: dict) -> tuple[int, int]:
    config = (index.get("codec") or {}).get("config")
    spec = StoreSpec()
    if isinstance(config, dict):
        return (int(config.get("reason_codebook_size", spec.reason_card)),
                int(config.get("recon_codebook_size", spec.recon_card)))
    return spec.reason_card, spec.recon_card


def _check_sentence(s: Sentence, header: dict, where: str, sizes: tuple[int, int], vocab: int | None,
                    max_tokens: int | None) -> list[str]:
    problems = []
    n = sequence_length(s.segments)
    if header.get("num_tokens") != n:
        problems.append(f"{where}: num_tokens is {header.get('num_tokens')}, the segments make {n}")
    if max_tokens is not None and n > max_tokens:
        problems.append(f"{where}: {n} tokens, over the build's --max-tokens {max_tokens}")
    if header.get("source_keys") != s.source_keys:
        problems.append(f"{where}: source_keys {header.get('source_keys')} do not match the segments'")
    for i, seg in enumerate(s.segments):
        if seg.modality == "text":
            if vocab is not None and seg.ids and max(seg.ids) >= vocab:
                problems.append(f"{where}: segment {i} has text id {max(seg.ids)} >= vocabulary size {vocab}")
            continue
        for name, arr, size in (("reason", seg.reason, sizes[0]), ("recon", seg.recon, sizes[1])):
            if arr.shape[0] != 8:
                problems.append(f"{where}: segment {i} {name} has {arr.shape[0]} codebooks, not 8")
            if arr.size and int(arr.max()) >= size:
                problems.append(f"{where}: segment {i} {name} id {int(arr.max())} >= codebook size {size}")
        for name, feats in seg.features.items():
            if feats.dtype != np.float16 or feats.ndim != 2:
                problems.append(f"{where}: segment {i} feature {name} is {feats.dtype} {feats.shape}, "
                                "not float16 (T, D)")
    return problems


def validate_sentence_store(uri: str, on_shard: Callable[[str], None] | None = None) -> list[str]:
    """Every problem found in the store at ``uri`` (see the module docstring)."""
    try:
        index = read_index(uri)
    except (FileNotFoundError, ValueError) as e:
        return [str(e)]
    problems: list[str] = []
    listed = [s["name"] for s in index.get("shards", [])]
    present = {u.rsplit("/", 1)[-1] for u in storage.glob(uri, "shard-*.tar")}
    problems += [f"{uri}: shard {name} is not listed in index.json" for name in sorted(present - set(listed))]
    sizes = _codebook_sizes(index)
    vocab = (index.get("tokenizer") or {}).get("vocab_size")
    max_tokens = (index.get("options") or {}).get("max_tokens")
    seen: set[str] = set()
    for entry in index.get("shards", []):
        name = entry["name"]
        if on_shard:
            on_shard(name)
        shard_uri = storage.join(uri, name)
        if name not in present:
            problems.append(f"{shard_uri}: listed in index.json but missing")
            continue
        data = storage.read_bytes(shard_uri)
        if len(data) != entry.get("bytes"):
            problems.append(f"{shard_uri}: {len(data)} bytes, index.json says {entry.get('bytes')}")
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            problems.append(f"{shard_uri}: sha256 differs from index.json")
        count = tokens = 0
        try:
            groups: list[tuple[str, list[tuple[str, bytes]]]] = []
            for member, payload in iter_members(io.BytesIO(data), shard_uri):
                key, ext = split_member(member)
                if not groups or groups[-1][0] != key:
                    groups.append((key, []))
                groups[-1][1].append((ext, payload))
            for key, members in groups:
                where = f"{shard_uri}:{key}"
                if key in seen:
                    problems.append(f"{where}: key appears twice (members not adjacent, or a duplicate)")
                    continue
                seen.add(key)
                if members[0][0] != "json":
                    problems.append(f"{where}: first member is {key}.{members[0][0]}, not {key}.json")
                    continue
                header = json.loads(members[0][1])
                arrays = {ext: decode_member(ext, payload, where) for ext, payload in members[1:]}
                try:
                    sentence = sentence_from_members(key, header, arrays, where)
                except ValueError as e:
                    problems.append(str(e))
                    continue
                problems += _check_sentence(sentence, header, where, sizes, vocab, max_tokens)
                count += 1
                tokens += sequence_length(sentence.segments)
        except (StoreReadError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{shard_uri}: {e}")
            continue
        if count != entry.get("samples") or tokens != entry.get("tokens"):
            problems.append(f"{shard_uri}: holds {count} sentences / {tokens} tokens, index.json says "
                            f"{entry.get('samples')} / {entry.get('tokens')}")
    return problems
