"""`uniaudio model` commands end to end on tiny checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM
from typer.testing import CliRunner

from uniaudio.cli.main import app
from uniaudio.model.checkpoint import load_checkpoint
from uniaudio.model.config import LLAMA3_ROPE_SCALING
from uniaudio.model.official import read_official_state

runner = CliRunner()


def _invoke(*args: str) -> str:
    result = runner.invoke(app, ["model", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_init_import_export_info(tmp_path: Path) -> None:
    cfg = LlamaConfig(vocab_size=2112, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                      max_position_embeddings=131072, tie_word_embeddings=True,
                      rope_parameters={**LLAMA3_ROPE_SCALING, "rope_theta": 500000.0})
    llama = LlamaForCausalLM(cfg)
    llama.save_pretrained(tmp_path / "llama")

    _invoke("init", "--config", "tiny", "--llama", str(tmp_path / "llama"), "--aux-decoder", str(tmp_path / "a"))
    model = load_checkpoint(str(tmp_path / "a"))
    assert torch.equal(model.text_embeddings.weight, llama.model.embed_tokens.weight)
    assert torch.equal(model.lm_head.weight, llama.model.embed_tokens.weight)  # tied source, untied copy
    assert model.aux_decoder is not None

    _invoke("init", "--config", "tiny", "--seed", "3", str(tmp_path / "b"))
    _invoke("init", "--config", "tiny", "--seed", "3", str(tmp_path / "c"))
    b, c = load_checkpoint(str(tmp_path / "b")), load_checkpoint(str(tmp_path / "c"))
    assert all(torch.equal(x, y) for x, y in zip(b.state_dict().values(), c.state_dict().values(), strict=True))

    _invoke("export-official", str(tmp_path / "a"), str(tmp_path / "official.checkpoint"))
    state = read_official_state(tmp_path / "official.checkpoint")
    assert torch.equal(state["backbone.transformer.wte.weight"], llama.model.embed_tokens.weight)
    _invoke("import-official", str(tmp_path / "official.checkpoint"), str(tmp_path / "d"), "--config", "tiny")
    d = load_checkpoint(str(tmp_path / "d"))
    model.drop_aux_decoder()
    assert all(torch.equal(x, y) for x, y in zip(model.state_dict().values(), d.state_dict().values(), strict=True))

    out = _invoke("info", str(tmp_path / "d"))
    assert "cross_modal" in out and "209,216" in out
    # text (2112 x 64) and audio (8 x 204 x 64) embeddings are separate groups
    assert "text_embeddings" in out and "135,168" in out and "audio_embeddings" in out and "104,448" in out


def test_bad_preset_is_a_usage_error() -> None:
    result = runner.invoke(app, ["model", "info", "--config", "7b"])
    assert result.exit_code == 2 and "unknown model config '7b'" in result.output
