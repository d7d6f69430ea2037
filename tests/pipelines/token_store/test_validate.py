"""`validate_store` catches each kind of damage, with a message naming the shard and key."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np

from uniaudio.pipelines.token_store import validate_store
from uniaudio.testing.archives import write_tar

from .store_helpers import reindex


def _members(shard: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(shard) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def _rewrite(shard: Path, members: list[tuple[str, bytes]]) -> None:
    write_tar(shard, members)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _messages(store: Path) -> list[str]:
    return [str(p) for p in validate_store(str(store))]


def test_sound_store_has_no_problems(local_store):
    store, _ = local_store
    assert _messages(store) == []


def test_truncated_tar(local_store):
    store, _ = local_store
    shard = store / "shard-000001.tar"
    shard.write_bytes(shard.read_bytes()[:1700])
    reindex(store)  # even with matching hashes, the tar itself is incomplete
    msgs = _messages(store)
    assert any("shard-000001.tar: unreadable" in m for m in msgs), msgs


def test_flipped_byte(local_store):
    store, _ = local_store
    shard = store / "shard-000000.tar"
    data = bytearray(shard.read_bytes())
    data[600] ^= 0x01  # inside the first sample's reasoning tokens
    shard.write_bytes(bytes(data))
    msgs = _messages(store)
    assert any("shard-000000.tar: sha256 is" in m for m in msgs), msgs


def test_missing_member(local_store):
    store, _ = local_store
    shard = store / "shard-000000.tar"
    _rewrite(shard, [m for m in _members(shard) if m[0] != "src/utt_002.recon.npy"])
    reindex(store)
    msgs = _messages(store)
    assert any("sample 'src/utt_002' is missing member src/utt_002.recon.npy" in m for m in msgs), msgs
    assert any("recon tokens, index says" in m for m in msgs), msgs


def test_duplicate_key(local_store):
    store, _ = local_store
    first = _members(store / "shard-000000.tar")[:3]  # src/utt_000
    shard = store / "shard-000002.tar"
    _rewrite(shard, _members(shard) + first)
    reindex(store)
    msgs = _messages(store)
    assert any("duplicate key 'src/utt_000' (also in shard-000000.tar)" in m for m in msgs), msgs


def test_wrong_dtype(local_store):
    store, _ = local_store
    shard = store / "shard-000000.tar"
    members = _members(shard)
    members = [
        (n, _npy(np.load(io.BytesIO(d)).astype(np.int32)) if n == "src/utt_001.reason.npy" else d)
        for n, d in members
    ]
    _rewrite(shard, members)
    reindex(store)
    msgs = _messages(store)
    assert any("src/utt_001.reason.npy has dtype int32, expected uint16" in m for m in msgs), msgs


def test_index_disagrees_with_tars(local_store):
    store, _ = local_store
    index = json.loads((store / "index.json").read_text())
    index["shards"][1]["samples"] = 6
    index["shards"][2]["duration_s"] += 5
    (store / "index.json").write_text(json.dumps(index))
    msgs = _messages(store)
    assert any("shard-000001.tar: holds 5 samples, index says 6" in m for m in msgs), msgs
    assert any("shard-000002.tar: holds" in m and "s of audio, index says" in m for m in msgs), msgs


def test_missing_and_unlisted_shards(local_store):
    store, _ = local_store
    (store / "shard-000001.tar").rename(store / "shard-000007.tar")
    msgs = _messages(store)
    assert "shard-000001.tar: listed in index.json but missing" in msgs
    assert "shard-000007.tar: shard exists but is not listed in index.json" in msgs


def test_non_adjacent_members_bad_ids_and_lengths(local_store):
    store, _ = local_store
    shard = store / "shard-000000.tar"
    members = _members(shard)
    members[3], members[1] = members[1], members[3]  # utt_000.recon ↔ utt_001.reason
    bad = np.full((8, 3), 9000, dtype=np.uint16)  # ids ≥ 4096 and 3 frames for a 1.74 s clip
    members = [(n, _npy(bad) if n == "src/utt_002.reason.npy" else d) for n, d in members]
    _rewrite(shard, members)
    reindex(store)
    msgs = _messages(store)
    assert any("members of 'src/utt_000' are not adjacent" in m for m in msgs), msgs
    assert any("src/utt_002.reason.npy holds token id 9000 outside [0, 4096)" in m for m in msgs), msgs
    assert any("src/utt_002.reason.npy has T=3 frames but duration_s=1.74" in m for m in msgs), msgs


def test_unsafe_member_name(local_store):
    store, _ = local_store
    shard = store / "shard-000002.tar"
    _rewrite(shard, _members(shard) + [("../evil.json", b"{}")])
    reindex(store)
    msgs = _messages(store)
    assert any("'../evil.json'" in m and "'..'" in m for m in msgs), msgs
