"""The Ray tokenize stage with the real tiny codec: token columns, rejects, error budget, Ray vs loop."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

from tests.tokenize.signals import tone
from uniaudio.pipelines.tokenize_stage import (
    TokenizeErrorBudgetExceeded,
    TokenizeStage,
    TokenizeStageConfig,
    apply_tokenize_stage,
    stage_codec_meta,
    unpack_tokens,
)
from uniaudio.tokenize.reasoning_codec import CheckpointSet, CodecTokenizer, tiny_set_dir


def _rows(waves, rates=None):
    rates = rates or [24_000] * len(waves)
    return [{"key": f"src/clip_{i}", "source": "src", "reason": None, "detail": None, "fanout": 1,
             "audio_sample_rate": rate, "audio": wave} for i, (wave, rate) in enumerate(zip(waves, rates, strict=True))]


def _table(rows):
    schema = pa.schema([("key", pa.string()), ("source", pa.string()), ("reason", pa.string()),
                        ("detail", pa.string()), ("fanout", pa.int32()), ("audio_sample_rate", pa.int32()),
                        ("audio", pa.large_list(pa.float32()))])
    return pa.Table.from_pylist([{**r, "audio": None if r["audio"] is None else r["audio"].tolist()}
                                 for r in rows], schema=schema)


@pytest.fixture(scope="module")
def tiny_set() -> CheckpointSet:
    """The tiny set ``--codec tiny`` resolves to in this process and in the session's Ray workers (the
    default cache: pointing ``$UNIAUDIO_CACHE`` elsewhere for the rest of the session would give the
    driver another set, with another fingerprint, than the workers started before)."""
    return CheckpointSet.from_dir(tiny_set_dir())


@pytest.fixture(scope="module")
def config(tiny_set):
    return TokenizeStageConfig(codec="tiny", codec_dir=str(tiny_set.codec.parent), window_mode="segment",
                               device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def tokenizer(tiny_set):
    return CodecTokenizer.load(tiny_set, window_mode="segment")


def test_tokens_rejects_and_passthrough_in_input_order(config, tokenizer):
    bad = tone(1.0, seed=9)
    bad[5] = np.inf
    waves = [tone(1.2), bad, tone(0.8, seed=1), tone(1.0, seed=2)]
    rows = _rows(waves + [np.zeros(0, np.float32)], rates=[24_000, 24_000, 24_000, 16_000, 24_000])
    rows.append({**_rows([tone(0.5)])[0], "key": "src/upstream", "reason": "silent", "detail": "x", "audio": None})
    stage = TokenizeStage(replace(config, distill_features=True), tokenizer=tokenizer)
    whole = _table(rows)
    table = stage(pa.concat_tables([whole.slice(0, 2), whole.slice(2)]))  # chunked + sliced audio column
    assert table.column_names[:6] == ["key", "source", "reason", "detail", "fanout", "audio_sample_rate"]
    assert "audio" not in table.column_names
    out = table.to_pylist()
    assert [r["key"] for r in out] == [r["key"] for r in rows]
    expected = tokenizer.encode([waves[0], waves[2]], distill=True)
    for row, enc in zip([out[0], out[2]], expected, strict=True):
        reason, recon, extras = unpack_tokens(row)
        np.testing.assert_array_equal(reason, enc.reason)
        np.testing.assert_array_equal(recon, enc.recon)
        np.testing.assert_array_equal(extras["distill_wavlm"], enc.distill["wavlm"])
        assert extras["distill_music"].shape == enc.distill["music"].shape
        assert row["reason"] is None and json.loads(row["codec"]) == stage_codec_meta(config)
    assert out[1]["reason"] == "codec_error" and "src/clip_1: ValueError" in out[1]["detail"]
    assert out[3]["reason"] == "codec_error" and "16000 Hz" in out[3]["detail"]
    assert out[4]["reason"] == "codec_error" and "no audio" in out[4]["detail"]
    assert out[5]["reason"] == "silent" and out[5]["recon_tokens"] is None  # passed through untouched
    assert (stage.seen, stage.failed) == (3, 1)


def test_error_budget_stops_a_failing_run(config, tokenizer):
    stage = TokenizeStage(replace(config, error_budget=0.2, error_budget_min=2, max_retries=0), tokenizer=tokenizer)
    nan = np.full(2400, np.nan, np.float32)
    stage.process_batch(_rows([tone(0.5), nan]))  # 1 failure: under the minimum count
    with pytest.raises(TokenizeErrorBudgetExceeded, match="2 of 4 clips failed"):
        stage.process_batch(_rows([tone(0.5), nan]))


def test_config_is_validated():
    with pytest.raises(ValueError, match="codec must be"):
        TokenizeStageConfig(codec="big")
    with pytest.raises(ValueError, match="unknown checkpoint path overrides"):
        TokenizeStageConfig(paths={"vocoder": "x"})


def test_ray_actor_pool_matches_a_bare_loop(ray_session, config, tokenizer):
    import ray.data

    rows = _rows([tone(0.6 + 0.3 * i, seed=i) for i in range(6)])
    ds = apply_tokenize_stage(ray.data.from_arrow(_table(rows)), replace(config, distill_features=True), 1)
    got = {r["key"]: r for r in ds.take_all()}
    expected = tokenizer.encode([r["audio"] for r in rows], distill=True)
    for row, enc in zip(rows, expected, strict=True):
        reason, recon, extras = unpack_tokens(got[row["key"]])
        np.testing.assert_array_equal(reason, enc.reason)
        np.testing.assert_array_equal(recon, enc.recon)
        # the actor runs 1 thread, this process 2: float sums may differ in the last bits, tokens may not
        np.testing.assert_allclose(extras["distill_music"], enc.distill["music"], atol=1e-3)


def test_transient_failures_are_retried(config, tokenizer, monkeypatch):
    real_encode = tokenizer.encode
    calls = []

    def fails_once(waves, distill=False):
        calls.append(len(waves))
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory (simulated transient device error)")
        return real_encode(waves, distill=distill)

    monkeypatch.setattr(tokenizer, "encode", fails_once)
    stage = TokenizeStage(replace(config, max_retries=1), tokenizer=tokenizer)
    out = stage.process_batch(_rows([tone(0.5), tone(0.7, seed=1)]))
    assert calls == [2, 2]  # the whole batch again, no per-clip fallback needed
    assert all(row["reason"] is None and row["recon_tokens"] is not None for row in out)
