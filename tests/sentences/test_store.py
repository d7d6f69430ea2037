"""The sentence store writer and reader, locally and on S3 (no Ray involved)."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from uniaudio.core import storage
from uniaudio.core.shard_file import ShardLimits
from uniaudio.sentences.store import Sentence, SentenceStoreWriter, iter_sentences, read_index


def _sentences(n: int) -> list[Sentence]:
    return [Sentence(f"text/c/doc{i}/00000", np.arange(i + 1, dtype=np.int32), {"task": "text_only"})
            for i in range(n)]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_round_trip_shards_and_index(where, tmp_path, request):
    uri = str(tmp_path / "store") if where == "local" else f"{request.getfixturevalue('s3_bucket')}/store"
    with SentenceStoreWriter(uri, ShardLimits(max_samples=2)) as writer:
        for sentence in _sentences(5):
            writer.write(sentence)
        writer.close(task="text_only", totals={"sentences": 5})
    index = read_index(uri)
    assert [(s["name"], s["samples"], s["tokens"]) for s in index["shards"]] == [
        ("shard-000000.tar", 2, 3 + 4), ("shard-000001.tar", 2, 5 + 6), ("shard-000002.tar", 1, 7)
    ]
    assert index["format"] == "uniaudio-sentence-store" and index["task"] == "text_only"
    for shard in index["shards"]:
        assert storage.size(storage.join(uri, shard["name"])) == shard["bytes"]
    back, written = list(iter_sentences(uri)), _sentences(5)
    assert [s.key for s in back] == [s.key for s in written]
    assert all(np.array_equal(a.text, b.text) and a.text.dtype == np.int32 for a, b in zip(back, written, strict=True))
    assert back[3].meta == {"key": "text/c/doc3/00000", "task": "text_only", "tokens": 6}


def test_members_are_adjacent_npy_then_json(tmp_path):
    with SentenceStoreWriter(str(tmp_path)) as writer:
        writer.write(_sentences(1)[0])
    with tarfile.open(tmp_path / "shard-000000.tar") as tar:
        names = tar.getnames()
        meta = json.loads(tar.extractfile("text/c/doc0/00000.json").read())
    assert names == ["text/c/doc0/00000.text.npy", "text/c/doc0/00000.json"]
    assert meta["tokens"] == 3


def test_failed_build_leaves_no_index_and_no_partial_shard(tmp_path):
    with pytest.raises(RuntimeError), SentenceStoreWriter(str(tmp_path)) as writer:
        writer.write(_sentences(1)[0])
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="no index.json"):
        read_index(str(tmp_path))


def test_refuses_existing_stores(tmp_path):
    with SentenceStoreWriter(str(tmp_path)) as writer:
        writer.write(_sentences(1)[0])
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        SentenceStoreWriter(str(tmp_path))
    SentenceStoreWriter(str(tmp_path), overwrite=True).close()
    assert read_index(str(tmp_path))["shards"] == []
    (tmp_path / "index.json").write_text(json.dumps({"format": "uniaudio-token-store"}))
    with pytest.raises(FileExistsError, match="'uniaudio-token-store' store, not a sentence store"):
        SentenceStoreWriter(str(tmp_path), overwrite=True)


def test_keys_with_dots_are_refused(tmp_path):
    with pytest.raises(ValueError, match="invalid sample key"), SentenceStoreWriter(str(tmp_path)) as writer:
        writer.write(Sentence("text/c/doc.1/00000", np.zeros(1, dtype=np.int32)))
