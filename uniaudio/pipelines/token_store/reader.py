"""Reading a token store: a plain iterator, and a Ray Dataset through ``ray.data.read_webdataset``.

Members are decoded with ``np.load(allow_pickle=False)`` and ``json.loads`` only; member names are
checked before use (no absolute paths, no ``..``). The plain ``webdataset`` library and ``tar`` read
the same shards without any uniaudio code (see docs/formats.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from uniaudio.core import storage
from uniaudio.core.npy_codec import load_npy
from uniaudio.core.ustar import StoreReadError, iter_members, split_member
from uniaudio.pipelines.token_store.index import StoreIndex, read_index, read_journal
from uniaudio.pipelines.token_store.sample import TokenSample

__all__ = ["iter_shard", "iter_store", "read_store_ray", "shard_uris"]


def decode_member(ext: str, data: bytes, where: str) -> Any:
    try:
        if ext.endswith(".npy"):
            return load_npy(data)
        if ext == "json":
            return json.loads(data)
    except ValueError as e:
        raise StoreReadError(f"{where}: cannot decode ({e})") from e
    raise StoreReadError(f"{where}: unexpected member extension {ext!r}")


def _sample_from_members(key: str, members: dict[str, bytes], where: str) -> TokenSample:
    missing = [m for m in ("reason.npy", "recon.npy", "json") if m not in members]
    if missing:
        raise StoreReadError(f"{where}: sample {key!r} lacks {', '.join(missing)}")
    decoded = {ext: decode_member(ext, data, f"{where}:{key}.{ext}") for ext, data in members.items()}
    extras = {ext[: -len(".npy")]: v for ext, v in decoded.items() if ext not in ("reason.npy", "recon.npy", "json")}
    return TokenSample(key=key, reason=decoded["reason.npy"], recon=decoded["recon.npy"],
                       meta=decoded["json"], extras=extras)


def iter_shard(uri: str, keys: set[str] | None = None) -> Iterator[TokenSample]:
    """Samples of one shard in order; adjacent members sharing a key form one sample."""
    with storage.open_uri(uri, "rb") as f:
        current: str | None = None
        members: dict[str, bytes] = {}
        for name, data in iter_members(f, uri):
            key, ext = split_member(name)
            if key != current:
                if current is not None and (keys is None or current in keys):
                    yield _sample_from_members(current, members, uri)
                current, members = key, {}
            if ext in members:
                raise StoreReadError(f"{uri}: member {name!r} appears twice")
            members[ext] = data
        if current is not None and (keys is None or current in keys):
            yield _sample_from_members(current, members, uri)


def shard_uris(store_uri: str, index: StoreIndex | None = None, allow_partial: bool = False) -> list[str]:
    """URIs of the store's shards from its index (or, with ``allow_partial``, its journal)."""
    if allow_partial and not storage.exists(storage.join(store_uri, "index.json")):
        names = [e.shard.name for e in read_journal(store_uri)]
    else:
        names = [s.name for s in (index or read_index(store_uri)).shards]
    return [storage.join(store_uri, name) for name in names]


def iter_store(
    store_uri: str, keys: Iterable[str] | None = None, allow_partial: bool = False
) -> Iterator[TokenSample]:
    """Every sample of a store (or only ``keys``), shard by shard."""
    wanted = set(keys) if keys is not None else None
    for uri in shard_uris(store_uri, allow_partial=allow_partial):
        yield from iter_shard(uri, wanted)


def _ray_decoder(sample: dict[str, Any]) -> dict[str, Any]:
    """Decode one webdataset row for Ray: ``key``, ``reason``, ``recon``, ``json`` (str) and extras."""
    where = str(sample.get("__url__", "?"))
    out: dict[str, Any] = {"key": sample["__key__"]}
    for ext, data in sample.items():
        if ext.startswith("__"):
            continue
        if ext == "json":
            out["json"] = data.decode("utf-8")
        else:
            out[ext[: -len(".npy")]] = decode_member(ext, data, f"{where}:{sample['__key__']}")
    return out


def read_store_ray(store_uri: str, shuffle_files: bool = False, **read_kwargs: Any):
    """The store as a Ray Dataset with columns ``key``, ``reason``, ``recon``, ``json`` (+ extras).

    Shards are listed from ``index.json`` (so a half-written store is never read) and opened through
    pyarrow's filesystem (local or S3 settings from the environment).
    """
    import ray.data

    fs, _ = storage.pyarrow_filesystem(store_uri)
    paths = [storage.pyarrow_filesystem(u)[1] for u in shard_uris(store_uri)]
    ds = ray.data.read_webdataset(
        paths,
        filesystem=fs,
        decoder=_ray_decoder,
        shuffle="files" if shuffle_files else None,
        **read_kwargs,
    )
    # read_webdataset emits pandas blocks; concatenating pandas blocks whose token arrays differ in
    # length fails in Ray 2.60 (TensorArray._concat_same_type broadcasts (8, T1) into (8,)). Turning
    # each block into Arrow first, without merging blocks, gives variable-shaped tensor columns that
    # concatenate correctly.
    return ds.map_batches(_identity, batch_size=None, batch_format="pyarrow")


def _identity(batch):
    return batch
