"""The sentence store v2 writer and reader, locally and on S3 (no Ray involved)."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from uniaudio.core import storage
from uniaudio.core.shard_file import ShardLimits
from uniaudio.sentences.sentence import Sentence, SentenceSegment
from uniaudio.sentences.store import SentenceStoreWriter, iter_sentences, iter_shard, read_index, shard_uris


def _sentence(i: int, features: bool = True) -> Sentence:
    rng = np.random.default_rng(i)
    reason = rng.integers(0, 4096, (8, 4 + i), dtype=np.uint16)
    recon = rng.integers(0, 8192, (8, 10 + i), dtype=np.uint16)
    feats = {"hubert": rng.standard_normal((20 + 2 * i, 3)).astype(np.float16)} if features else {}
    return Sentence(f"asr/src/utt{i}", "asr", None, [
        SentenceSegment("text", "prompt", False, text="Transcribe.\n\n", ids=(5, 6, 7)),
        SentenceSegment("audio", "audio", False, source_key=f"src/utt{i}", reason=reason, recon=recon,
                        features=feats),
        SentenceSegment("text", "transcription", True, source_key=f"src/utt{i}", text=f"word {i}", ids=(8, 9 + i)),
    ])


def _fresh(tmp_path, request, where):
    return str(tmp_path / "store") if where == "local" else f"{request.getfixturevalue('s3_bucket')}/store"


@pytest.mark.parametrize("where", ["local", "s3"])
def test_round_trip_shards_index_and_journal(where, tmp_path, request):
    uri = _fresh(tmp_path, request, where)
    written = [_sentence(i) for i in range(5)]
    with SentenceStoreWriter(uri, {"kind": "asr"}, ShardLimits(max_samples=2)) as writer:
        for s in written:
            writer.write(s)
            if writer.full():
                writer.commit({"units": [s.key]})
        index = writer.close(kind="asr")
    assert index == read_index(uri)
    assert index["version"] == 2 and index["totals"]["samples"] == 5 and index["totals"]["shards"] == 3
    assert index["tasks"] == {"asr": {"samples": 5, "tokens": sum(s.num_tokens for s in written)}}
    for shard in index["shards"]:
        assert storage.size(storage.join(uri, shard["name"])) == shard["bytes"]
    assert len(storage.glob(storage.join(uri, "_journal"), "shard-*.json")) == 3
    back = list(iter_sentences(uri))
    assert [s.header() for s in back] == [s.header() for s in written]
    for a, b in zip(back, written, strict=True):
        assert (a.segments[1].reason == b.segments[1].reason).all() and a.segments[1].reason.dtype == np.uint16
        assert (a.segments[1].features["hubert"] == b.segments[1].features["hubert"]).all()
    assert [s.key for s in iter_shard(shard_uris(uri)[1])] == ["asr/src/utt2", "asr/src/utt3"]


def test_members_are_adjacent_json_first(tmp_path):
    s = _sentence(0)
    with SentenceStoreWriter(str(tmp_path)) as writer:
        writer.write(s)
    with tarfile.open(tmp_path / "shard-000000.tar") as tar:
        names = tar.getnames()
        header = json.loads(tar.extractfile("asr/src/utt0.json").read())
    assert names == ["asr/src/utt0.json", "asr/src/utt0.seg1.reason.npy", "asr/src/utt0.seg1.recon.npy",
                     "asr/src/utt0.seg1.hubert.npy"]
    assert set(header) == {"key", "task", "strategy", "segments", "num_tokens", "source_keys"}
    assert header["num_tokens"] == (3 + 2) + (4 + 2 + 10 + 2) + (2 + 2 + 2) == s.num_tokens
    assert header["source_keys"] == ["src/utt0"]
    assert header["segments"][2] == {"modality": "text", "role": "transcription", "loss": True,
                                     "source_key": "src/utt0", "text": "word 0", "ids": [8, 9]}


def test_json_member_is_the_header_as_json_dumps_writes_it():
    s = _sentence(1)
    s.meta = {"speaker": "Jürgen", "n": 2.5}
    s.segments[1].provenance = {"mix": ["src/b", "src/utt1"], "gain_db": -3.0}
    s.segments[1].attrs = {"snr_db": 5}
    s.segments[2].text = "Grüße — 東京 🎵 \"quoted\"\n"
    s.segments[0].provenance, s.segments[0].attrs = {"voice": "en-us", "rate": 1.25}, {"pitch": -2}
    name, data = s.members()[0]
    assert name == "asr/src/utt1.json"
    assert data == json.dumps(s.header(), ensure_ascii=False).encode("utf-8")
    assert s.members()[0][1] == data  # text segments' JSON is kept: the same bytes again
    plain = Sentence("tts/x", "tts", "speech-text", [s.segments[2], s.segments[1]])
    assert plain.members()[0][1] == json.dumps(plain.header(), ensure_ascii=False).encode("utf-8")
    assert s.source_keys == ["src/utt1", "src/b"]


def test_interrupted_writer_resumes_without_duplicates(tmp_path):
    uri = str(tmp_path)
    with pytest.raises(RuntimeError), SentenceStoreWriter(uri, {"a": 1}, ShardLimits(max_samples=2)) as writer:
        for i in range(3):
            writer.write(_sentence(i))
            if writer.full():
                writer.commit({"units": ["u0"]})
        raise RuntimeError("killed")
    assert not (tmp_path / "index.json").exists()
    with pytest.raises(FileNotFoundError, match="did not finish"):
        read_index(uri)
    with pytest.raises(ValueError, match="other inputs/options"):
        SentenceStoreWriter(uri, {"a": 2})
    writer = SentenceStoreWriter(uri, {"a": 1}, ShardLimits(max_samples=2))
    assert len(writer.committed_keys) == 2 and writer.notes[0]["units"] == ["u0"]
    assert "asr/src/utt0" in writer.committed_keys and "asr/src/utt1" in writer.committed_keys
    with pytest.raises(ValueError, match="already in"):
        writer.write(_sentence(1))
    writer.write(_sentence(2))
    writer.close()
    assert [s.key for s in iter_sentences(uri)] == [f"asr/src/utt{i}" for i in range(3)]


def test_refuses_existing_v1_and_other_stores(tmp_path):
    with SentenceStoreWriter(str(tmp_path)) as writer:
        writer.write(_sentence(0))
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        SentenceStoreWriter(str(tmp_path))
    SentenceStoreWriter(str(tmp_path), overwrite=True).close()
    assert read_index(str(tmp_path))["shards"] == []
    (tmp_path / "index.json").write_text(json.dumps({"format": "uniaudio-sentence-store", "version": 1}))
    with pytest.raises(ValueError, match="version-1 sentence store.*rebuild it"):
        read_index(str(tmp_path))
    (tmp_path / "index.json").write_text(json.dumps({"format": "uniaudio-token-store"}))
    with pytest.raises(FileExistsError, match="'uniaudio-token-store' store, not a sentence store"):
        SentenceStoreWriter(str(tmp_path), overwrite=True)


def test_bad_sentences_are_refused():
    with pytest.raises(ValueError, match="invalid sample key"):
        Sentence("asr/doc.1", "asr", None, [SentenceSegment("text", "text", True, text="x", ids=(1,))])
    with pytest.raises(ValueError, match="uint16"):
        SentenceSegment("audio", "audio", True, reason=np.zeros((8, 2), np.int32), recon=np.zeros((8, 5), np.uint16))
    with pytest.raises(ValueError, match="role"):
        SentenceSegment("text", "answer", True, text="x", ids=(1,))
