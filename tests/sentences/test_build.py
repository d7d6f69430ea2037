"""`sentences build` on Ray Data: determinism, kill + resume, S3 output, codec checks, validate, CLI."""

from __future__ import annotations

import json
import tarfile

import pytest
from typer.testing import CliRunner

from tests.sentences.conftest import _speech, write_store
from uniaudio.cli.main import app
from uniaudio.core import storage
from uniaudio.sentences.build import BuildRequest, BuildSummary, build_sentences
from uniaudio.sentences.store import iter_sentences, read_index
from uniaudio.sentences.validate import validate_sentence_store


def _shard_bytes(uri: str) -> list[bytes]:
    return [storage.read_bytes(storage.join(uri, s["name"])) for s in read_index(uri)["shards"]]


def test_same_seed_same_store_and_index_counts(token_stores, tmp_path, ray_session):
    stores = (token_stores["speech"], token_stores["sound"])
    a = build_sentences(BuildRequest("speech-text", str(tmp_path / "a"), tokens=stores, seed=4, shard_samples=2))
    build_sentences(BuildRequest("speech-text", str(tmp_path / "b"), tokens=stores, seed=4, shard_samples=2))
    assert _shard_bytes(str(tmp_path / "a")) == _shard_bytes(str(tmp_path / "b"))
    index = read_index(str(tmp_path / "a"))
    assert index["codec_fingerprint"] == "random-tokens-v1" and index["tokenizer"]["vocab_size"] == 2069
    assert index["tokenizer"]["fingerprint"] and index["strategies"]["speech-text"]["samples"] == a.sentences
    assert index["skipped"] == dict(a.skipped) and a.skipped["pool sound is not speech"] == 6
    assert index["totals"]["tokens"] == sum(s.num_tokens for s in iter_sentences(str(tmp_path / "a")))
    assert validate_sentence_store(str(tmp_path / "a")) == []


def test_killed_build_resumes_with_every_sentence_once(token_stores, tmp_path, ray_session):
    out = str(tmp_path / "out")
    request = BuildRequest("segment", out, tokens=(token_stores["speech"],), seed=1, shard_samples=3)
    reference = build_sentences(BuildRequest("segment", str(tmp_path / "ref"), tokens=request.tokens, seed=1))

    def kill(summary: BuildSummary) -> None:
        if summary.sentences == 10:
            raise KeyboardInterrupt  # what Ctrl-C / a killed driver leaves: committed shards + journal

    with pytest.raises(KeyboardInterrupt):
        build_sentences(request, on_progress=kill)
    assert not storage.exists(storage.join(out, "index.json"))
    assert len(storage.glob(storage.join(out, "_journal"), "*.json")) == 3  # shards of 3, 6 and 9 sentences
    resumed = build_sentences(request)
    keys = [s.key for s in iter_sentences(out)]
    assert len(keys) == len(set(keys)) == reference.sentences == resumed.sentences
    assert keys == [s.key for s in iter_sentences(str(tmp_path / "ref"))]
    assert resumed.units_resumed == 1 and resumed.units_done == resumed.units == 2  # unit 0 ended by sentence 9
    assert validate_sentence_store(out) == []


def test_s3_output_on_moto(token_stores, s3_bucket, ray_session):
    out = f"{s3_bucket}/sentences/asr"
    summary = build_sentences(BuildRequest("asr", out, tokens=(token_stores["speech"],), limit=5))
    assert summary.sentences == 5 and read_index(out)["totals"]["samples"] == 5
    assert [s.task for s in iter_sentences(out)] == ["asr"] * 5
    assert validate_sentence_store(out) == []


def test_mixed_codec_fingerprints_are_refused(token_stores, tmp_path):
    other = write_store(str(tmp_path / "other"), [_speech(0)],
                        codec={"name": "x", "config": "y", "fingerprint": "another-codec"})
    with pytest.raises(ValueError, match="different codecs"):
        build_sentences(BuildRequest("asr", str(tmp_path / "o"), tokens=(token_stores["speech"], other)))


def test_validate_catches_a_corrupted_store(token_stores, tmp_path, ray_session):
    out = tmp_path / "store"
    build_sentences(BuildRequest("tts", str(out), tokens=(token_stores["speech"],), shard_samples=4))
    assert validate_sentence_store(str(out)) == []
    # a header whose num_tokens lies, rewritten in a fresh tar (sizes/sha256 then differ too)
    shard = out / "shard-000001.tar"
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    import io
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for m, data in members:
            if m.name.endswith(".json") and "num_tokens" in json.loads(data):
                header = json.loads(data)
                header["num_tokens"] += 1
                data = json.dumps(header).encode()
                m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    problems = validate_sentence_store(str(out))
    assert any("sha256 differs" in p for p in problems)
    assert any("num_tokens is" in p for p in problems)
    # a truncated shard and an unlisted one
    last = out / "shard-000002.tar"
    last.write_bytes(last.read_bytes()[:700])
    (out / "shard-000099.tar").write_bytes(b"")
    problems = validate_sentence_store(str(out))
    assert any("truncated" in p for p in problems) and any("not listed" in p for p in problems)


def test_cli_build_inspect_validate_stats(token_stores, tmp_path, ray_session):
    runner = CliRunner()
    out = str(tmp_path / "cli")
    args = ["sentences", "build", "audio-caption-interleave", out, "--tokens", token_stores["sound"],
            "--tokens", token_stores["music"], "--pool", f"{token_stores['music']}=sound", "--max-tokens", "300"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "no caption" in result.output and "audio-caption-interleave" in result.output
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "pass --overwrite" in again.output
    key = next(iter_sentences(out)).key
    shown = runner.invoke(app, ["sentences", "inspect", out, key])
    assert shown.exit_code == 0 and "caption" in shown.output and "reason (8," in shown.output
    assert runner.invoke(app, ["sentences", "validate", out]).exit_code == 0
    plot = tmp_path / "len.png"
    stats = runner.invoke(app, ["sentences", "stats", out, "--plot", str(plot)])
    assert stats.exit_code == 0 and plot.stat().st_size > 0 and "audio-caption-interleave" in stats.output
    bad = runner.invoke(app, ["sentences", "build", "asr", str(tmp_path / "x"), "--tokens", token_stores["sound"],
                              "--pool", "s3://bucket/store:music"])
    assert bad.exit_code == 2 and "STORE_URI=POOL" in bad.output
    unknown = runner.invoke(app, ["sentences", "build", "karaoke", str(tmp_path / "x")])
    assert unknown.exit_code == 2 and "unknown KIND" in unknown.output
    dry = runner.invoke(app, ["sentences", "build", "asr", str(tmp_path / "d"), "--tokens", token_stores["speech"],
                              "--dry-run"])
    assert dry.exit_code == 0 and "2 unit(s)" in dry.output and not (tmp_path / "d").exists()
