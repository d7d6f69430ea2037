"""Checkpoint format: model.safetensors + config.json, local and on S3; strict loading errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from uniaudio.model.checkpoint import load_checkpoint, read_config, save_checkpoint
from uniaudio.model.config import AuxDecoderConfig, UniAudioConfig
from uniaudio.model.network import UniAudioModel


def test_round_trip_local(tmp_path: Path, tiny_model: UniAudioModel) -> None:
    save_checkpoint(tiny_model, str(tmp_path / "ckpt"))
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["format"] == "uniaudio-model" and meta["dtype"] == "float32"
    back = load_checkpoint(str(tmp_path / "ckpt"))
    assert back.config == tiny_model.config
    for (n, a), (_, b) in zip(tiny_model.state_dict().items(), back.state_dict().items(), strict=True):
        assert torch.equal(a, b), n


def test_round_trip_s3_with_aux_and_bf16(s3_bucket: str, tiny_config: UniAudioConfig) -> None:
    model = UniAudioModel(tiny_config.with_(aux_decoder=AuxDecoderConfig(hidden=8)))
    uri = f"{s3_bucket}/stage1/final"
    save_checkpoint(model, uri, dtype=torch.bfloat16)
    assert read_config(uri).aux_decoder == AuxDecoderConfig(hidden=8)
    back = load_checkpoint(uri)
    w = model.aux_decoder.heads["distill_wavlm"][0].weight
    assert torch.equal(back.aux_decoder.heads["distill_wavlm"][0].weight, w.to(torch.bfloat16).float())


def test_mismatched_weights_list_every_key(tmp_path: Path, tiny_model: UniAudioModel) -> None:
    ckpt = tmp_path / "ckpt"
    save_checkpoint(tiny_model, str(ckpt))
    state = load_file(str(ckpt / "model.safetensors"))
    del state["lm_head.weight"], state["generation.norm.weight"]
    state["audio_head.weight"] = torch.zeros(8, 32, 3)
    state["extra.bias"] = torch.zeros(2)
    save_file(state, str(ckpt / "model.safetensors"))
    with pytest.raises(ValueError) as e:
        load_checkpoint(str(ckpt))
    msg = str(e.value)
    assert "model.safetensors" in msg
    assert "missing keys (2): ['generation.norm.weight', 'lm_head.weight']" in msg
    assert "unexpected keys (1): ['extra.bias']" in msg
    assert "audio_head.weight: file (8, 32, 3) vs model (8, 32, 204)" in msg


def test_bad_config_is_named(tmp_path: Path, tiny_model: UniAudioModel) -> None:
    save_checkpoint(tiny_model, str(tmp_path / "ckpt"))
    path = tmp_path / "ckpt" / "config.json"
    meta = json.loads(path.read_text())
    meta["config"]["cross_modal"]["n_heads"] = 5
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"config.json: invalid model config: .*d_model=64 must be divisible"):
        load_checkpoint(str(tmp_path / "ckpt"))
    with pytest.raises(FileNotFoundError, match="no model config"):
        load_checkpoint(str(tmp_path / "missing"))
