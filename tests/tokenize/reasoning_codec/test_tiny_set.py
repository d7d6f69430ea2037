"""The tiny checkpoint set: official on-disk formats, atomic cache, clear errors for missing files."""

from __future__ import annotations

import json

import pytest
import torch

from uniaudio.tokenize.reasoning_codec import CheckpointSet, CodecTokenizer, resolve_checkpoint_set
from uniaudio.tokenize.reasoning_codec.frozen_encoders import music_state_dict
from uniaudio.tokenize.reasoning_codec.tiny_set import tiny_set_dir, write_tiny_set


def test_set_uses_the_released_file_formats(tiny_set):
    root = tiny_set.codec.parent
    assert json.loads((root / "whisper-medium" / "config.json").read_text())["model_type"] == "whisper"
    assert json.loads((root / "wavlm" / "config.json").read_text())["model_type"] == "wavlm"
    blob = torch.load(tiny_set.codec, weights_only=True)
    assert set(blob) == {"model"}
    heads = {k.split(".")[0] for k in blob["model"]}
    assert {"audio_thinking", "vq_acoustic", "time_film_phone", "cfm_wrapper", "cond_feature_emb"} <= heads
    assert "codec_model" in torch.load(tiny_set.sq_weights, weights_only=True)
    assert json.loads(tiny_set.flow_config.read_text())["norm_type"] == "ada_norm_single"


def test_cached_tiny_set_is_built_once_and_reused(tiny_set, codec_cache):
    first = tiny_set.codec.parent
    assert first.parent == codec_cache / "codec"
    stamp = tiny_set.codec.stat().st_mtime_ns
    assert tiny_set_dir() == first and tiny_set.codec.stat().st_mtime_ns == stamp
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temp dirs left behind
    assert resolve_checkpoint_set("tiny").codec == tiny_set.codec


def test_tiny_sets_are_reproducible_from_the_seed(tiny_set, tmp_path):
    again = write_tiny_set(tmp_path / "again", seed=0)
    ours = torch.load(tiny_set.codec, weights_only=True)["model"]
    theirs = torch.load(again.codec, weights_only=True)["model"]
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_music_weights_nested_in_a_fairseq_model_load(tiny_set, tmp_path):
    state = torch.load(tiny_set.music_ssl, weights_only=True)["model"]
    nested = {f"model.model.{k}": v for k, v in state.items()} | {"model.model.cls_token": torch.zeros(4)}
    torch.save({"model": nested}, tmp_path / "music_ssl.pt")
    loaded = music_state_dict(tmp_path / "music_ssl.pt")
    assert set(loaded) == set(state)


def test_missing_files_are_all_named(tiny_set, tmp_path):
    paths = CheckpointSet.from_dir(tmp_path, whisper=tiny_set.whisper)
    with pytest.raises(FileNotFoundError) as info:
        CodecTokenizer.load(paths, config_name="official")
    msg = str(info.value)
    assert "ReasoningCodec.checkpoint" in msg and "wavlm" in msg and "music_ssl.pt" in msg
    assert "whisper" not in msg
    with pytest.raises(ValueError, match="--codec-dir"):
        resolve_checkpoint_set("official")
