"""`run_build`: corpus → audio stage → tiny ReasoningCodec → token store; crash + resume; S3 output."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest

from uniaudio.core import storage
from uniaudio.core.lease import LEASE_NAME
from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.build import BuildConfig, run_build
from uniaudio.pipelines.token_store import TokenStoreWriter, iter_store, read_index, validate_store
from uniaudio.testing.corpora import build_corpus


@pytest.fixture(scope="module")
def emilia(tmp_path_factory) -> Path:
    return build_corpus("emilia", tmp_path_factory.mktemp("corpora"))


def _expected_keys(corpus: Path) -> list[str]:
    from uniaudio.pipelines.records import AudioRecord
    from uniaudio.pipelines.sources import get_source

    return sorted(r.key for r in get_source("emilia")(str(corpus)).iter_all() if isinstance(r, AudioRecord)
                  and storage.exists(r.audio_uri))


def _config(corpus: Path, out: str, **kw) -> BuildConfig:
    return BuildConfig(source="emilia", input_uri=str(corpus), output_uri=out,
                       limits=ShardLimits(max_samples=2), **kw)


def test_build_writes_a_valid_store_with_rejects(emilia, tmp_path):
    out = tmp_path / "tokens"
    out.mkdir()
    stale = {"run_id": "crashed", "host": "gone", "pid": 1, "started": 0, "heartbeat": time.time() - 3600}
    (out / LEASE_NAME).write_text(json.dumps(stale))  # a crashed writer's lease: taken over (stale), then released
    summary = run_build(_config(emilia, str(out)))
    assert not (out / LEASE_NAME).exists()
    assert validate_store(str(out)) == []
    samples = list(iter_store(str(out)))
    assert sorted(s.key for s in samples) == _expected_keys(emilia)
    for s in samples:
        d = s.meta["duration_s"]
        assert s.reason.shape[0] == 8 and abs(s.reason.shape[1] - 5 * d) <= 1
        assert s.recon.shape[0] == 8 and abs(s.recon.shape[1] - 12.5 * d) <= 1.5
        assert s.meta["codec"]["config"] == "tiny" and s.meta["origin"]["audio_uri"].startswith(str(emilia))
        assert s.meta["text"] and s.meta["speaker"]
    rejects = pads.dataset(str(out / "rejects"), format="parquet").to_table().to_pylist()
    assert {r["reason"] for r in rejects} >= {"orphan_member", "missing_file"}
    assert summary["partitions"]["done"] == summary["partitions"]["total"]
    assert summary["store"]["samples"] == len(samples)

    again = run_build(_config(emilia, str(out)))  # nothing left to do
    assert again["partitions"]["skipped"] == again["partitions"]["total"]
    assert sorted(s.key for s in iter_store(str(out))) == _expected_keys(emilia)


def test_crash_mid_run_then_rerun_yields_every_key_once(emilia, tmp_path, monkeypatch):
    out = tmp_path / "tokens"
    real_write = TokenStoreWriter.write
    calls = {"n": 0}

    def crashing_write(self, sample):
        calls["n"] += 1
        if calls["n"] == 4:  # shards of 2: one shard committed, the second half-written
            raise RuntimeError("simulated crash")
        return real_write(self, sample)

    monkeypatch.setattr(TokenStoreWriter, "write", crashing_write)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_build(_config(emilia, str(out)))
    assert not (out / "index.json").exists()
    committed = [p.name for p in out.glob("shard-*.tar")]
    assert committed == ["shard-000000.tar"]

    monkeypatch.setattr(TokenStoreWriter, "write", real_write)
    summary = run_build(_config(emilia, str(out)))
    keys = [s.key for s in iter_store(str(out))]
    assert sorted(keys) == _expected_keys(emilia) and len(keys) == len(set(keys))
    assert validate_store(str(out)) == []
    assert summary["partitions"]["done"] == summary["partitions"]["total"]


def test_force_rebuilds(emilia, tmp_path):
    out = tmp_path / "tokens"
    run_build(_config(emilia, str(out)))
    first = read_index(str(out))
    summary = run_build(_config(emilia, str(out), force=True))
    assert summary["partitions"]["skipped"] == 0
    assert [s.sha256 for s in read_index(str(out)).shards] == [s.sha256 for s in first.shards]  # deterministic


def test_build_to_s3_with_distillation_features(emilia, s3_bucket):
    from uniaudio.pipelines.tokenize_stage import TokenizeStageConfig

    out = f"{s3_bucket}/tokens/emilia"
    run_build(_config(emilia, out, tokenize=TokenizeStageConfig(codec="tiny", distill_features=True)))
    assert validate_store(out) == []
    samples = list(iter_store(out))
    assert sorted(s.key for s in samples) == _expected_keys(emilia)
    s = samples[0]
    assert set(s.extras) == {"distill_wavlm", "distill_music"}
    assert s.extras["distill_wavlm"].dtype == np.float16 and s.extras["distill_wavlm"].shape[1] == s.recon.shape[1]
    summary = json.loads(storage.read_bytes(f"{out}/build-summary.json"))
    assert summary["store"]["samples"] == len(samples)


def test_actor_pool_follows_the_cluster(tmp_path):
    from uniaudio.pipelines.build import _actor_pool
    from uniaudio.pipelines.tokenize_stage import TokenizeStageConfig

    cfg = BuildConfig(source="emilia", input_uri=str(tmp_path), output_uri=str(tmp_path / "o"))
    tok, n = _actor_pool(cfg, {"CPU": 64.0, "GPU": 8.0})
    assert (n, tok.gpus_per_actor) == (8, 1.0)
    half = BuildConfig(source="emilia", input_uri=str(tmp_path), output_uri=str(tmp_path / "o"),
                       tokenize=TokenizeStageConfig(gpus_per_actor=0.5))
    assert _actor_pool(half, {"CPU": 64.0, "GPU": 8.0})[1] == 16
    assert _actor_pool(cfg, {"CPU": 2.0})[1] == 1
    fixed = BuildConfig(source="emilia", input_uri=str(tmp_path), output_uri=str(tmp_path / "o"), workers=3)
    assert _actor_pool(fixed, {"CPU": 64.0, "GPU": 8.0})[1] == 3
