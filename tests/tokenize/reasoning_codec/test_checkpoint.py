"""Strict loading of the released codec layout (reference-code.md §9), at full size for the codec's layers.

The expected names and shapes are written out here from the released code, independently of the model
classes, so a renamed or re-shaped parameter in the model fails this test.
"""

from __future__ import annotations

import pytest
import torch

from uniaudio.tokenize.reasoning_codec import OFFICIAL, CheckpointMismatchError
from uniaudio.tokenize.reasoning_codec.checkpoint import load_released_state_dict, read_codec_checkpoint
from uniaudio.tokenize.reasoning_codec.codec import ReasoningCodec


def _rvq(prefix: str, layers: int, size: int, cdim: int, dim: int = 768) -> dict[str, list[int]]:
    out = {f"{prefix}.project_in.weight": [cdim, dim], f"{prefix}.project_in.bias": [cdim],
           f"{prefix}.project_out.weight": [dim, cdim], f"{prefix}.project_out.bias": [dim]}
    for i in range(layers):
        cb = f"{prefix}.layers.{i}._codebook"
        out |= {f"{cb}.embed": [1, size, cdim], f"{cb}.embed_avg": [1, size, cdim],
                f"{cb}.cluster_size": [1, size], f"{cb}.initted": [1]}
    return out


def released_encode_layout() -> dict[str, list[int]]:
    """Encode-path keys of ReasoningCodec.checkpoint with their shapes (official sizes)."""
    at = "audio_thinking"
    layout = {f"{at}.cls_token": [1, 768],
              f"{at}.down_sampling_layer_whisper.weight": [1024, 1024, 2],
              f"{at}.down_sampling_layer_whisper.bias": [1024],
              f"{at}.semantic_merge_proj.weight": [768, 2048], f"{at}.semantic_merge_proj.bias": [768]}
    for i in range(5):
        b = f"{at}.encoder_transformers.{i}"
        wn = ".parametrizations.weight.original"
        layout |= {
            f"{b}.self_attn.to_qkv{wn}0": [2304, 1], f"{b}.self_attn.to_qkv{wn}1": [2304, 768],
            f"{b}.self_attn.to_out{wn}0": [768, 1], f"{b}.self_attn.to_out{wn}1": [768, 768],
            f"{b}.self_attn.q_norm.weight": [128], f"{b}.self_attn.q_norm.bias": [128],
            f"{b}.self_attn.k_norm.weight": [128], f"{b}.self_attn.k_norm.bias": [128],
            f"{b}.self_attn_scale.scale": [768],
            f"{b}.ff.ff.0.proj{wn}0": [6144, 1], f"{b}.ff.ff.0.proj{wn}1": [6144, 768],
            f"{b}.ff.ff.0.proj.bias": [6144],
            f"{b}.ff.ff.2{wn}0": [768, 1], f"{b}.ff.ff.2{wn}1": [768, 3072], f"{b}.ff.ff.2.bias": [768],
            f"{b}.ff_scale.scale": [768], f"{b}.rope.inv_freq": [32],
        }
    layout |= _rvq(f"{at}.reasoning_vq", 8, 4096, 64)
    convs = {"d_conv_whisper": (1024, 4), "d_conv_wavlm": (768, 4), "d_conv_embedding_semantic": (1024, 2),
             "d_conv_embedding_acoustic": (1024, 2)}
    for name, (ch, k) in convs.items():
        layout |= {f"{name}.weight": [ch, ch, k], f"{name}.bias": [ch]}
    linears = {"cond_fusion_layer_semantic": (768, 1024), "cond_fusion_layer_acoustic": (768, 2048),
               "cond_fusion_layer_phone": (768, 768), "time_film_phone": (1536, 768),
               "time_film_semantic": (1536, 768), "time_film_acoustic": (1536, 768), "reason_adaptor": (768, 768)}
    for name, (o, i) in linears.items():
        layout |= {f"{name}.weight": [o, i], f"{name}.bias": [o]}
    layout |= _rvq("vq_pronunciation_semantic", 1, 8192, 32)
    layout |= _rvq("vq_structure_semantic", 1, 8192, 32)
    layout |= _rvq("vq_acoustic", 6, 8192, 32)
    return layout


@pytest.fixture(scope="module")
def official_encoder() -> ReasoningCodec:
    return ReasoningCodec(OFFICIAL, encode=True)


@pytest.fixture(scope="module")
def released_file(tmp_path_factory) -> str:
    """A released-format checkpoint: encode keys + entries the encode path must skip, 'module.'-prefixed."""
    gen = torch.Generator().manual_seed(0)
    state = {f"module.{k}": torch.randn(shape, generator=gen) for k, shape in released_encode_layout().items()}
    state |= {"module.cfm_wrapper.estimator.proj_in.ffn_2.weight": torch.zeros(1536, 1536),
              "module.cond_feature_emb.weight": torch.zeros(768, 768),
              "module.zero_cond_embedding1": torch.zeros(768),
              "module.whisper_encoder.conv1.weight": torch.zeros(1024, 80, 3),
              "module.wavlm_encoder.masked_spec_embed": torch.zeros(768),
              "module.pretrained_model.model.model.conv.linear.weight": torch.zeros(1024, 16384),
              "module.structure_semantic_decoder.0.weight": torch.zeros(4, 4),
              "module.pronunciation_decoder.0.weight": torch.zeros(4, 4)}
    path = tmp_path_factory.mktemp("released") / "ReasoningCodec.checkpoint"
    torch.save({"model": state}, path)
    return str(path)


def test_released_layout_loads_strictly_at_full_size(official_encoder, released_file):
    from pathlib import Path

    state = read_codec_checkpoint(Path(released_file))
    load_released_state_dict(official_encoder, state, released_file)
    loaded = official_encoder.state_dict()
    assert torch.equal(loaded["reasoning.cls_token"], state["module.audio_thinking.cls_token"])
    assert torch.equal(loaded["reconstruction.vq_acoustic.layers.5._codebook.embed"],
                       state["module.vq_acoustic.layers.5._codebook.embed"])
    assert official_encoder.decoder is None  # encode-only builds no decoder
    n_keys = len(loaded)
    assert n_keys == len(released_encode_layout())


def test_every_problem_is_listed_in_one_error(official_encoder, released_file):
    from pathlib import Path

    state = dict(read_codec_checkpoint(Path(released_file)))
    del state["module.audio_thinking.encoder_transformers.3.rope.inv_freq"]
    del state["module.vq_acoustic.layers.2._codebook.embed"]
    state["module.audio_thinking.extra_head.weight"] = torch.zeros(3)
    state["module.time_film_phone.weight"] = torch.zeros(768, 768)
    with pytest.raises(CheckpointMismatchError) as info:
        load_released_state_dict(official_encoder, state, "ckpt.pt")
    msg = str(info.value)
    assert "ckpt.pt" in msg and "'official'" in msg
    assert "missing (2): audio_thinking.encoder_transformers.3.rope.inv_freq, " \
           "vq_acoustic.layers.2._codebook.embed" in msg
    assert "unexpected (1): module.audio_thinking.extra_head.weight" in msg
    assert "mis-shaped (1): time_film_phone.weight: file [768, 768], model [1536, 768]" in msg


def test_pickled_objects_are_refused(tmp_path):
    import argparse

    path = tmp_path / "pickled.checkpoint"
    torch.save({"model": {}, "args": argparse.Namespace(lr=1.0)}, path)  # arbitrary object: needs unpickling
    with pytest.raises(ValueError, match="weights_only=True"):
        read_codec_checkpoint(path)
    torch.save({"state": {}}, tmp_path / "other.checkpoint")
    with pytest.raises(ValueError, match="state dict under 'model'"):
        read_codec_checkpoint(tmp_path / "other.checkpoint")


def released_decode_layout() -> dict[str, list[int]]:
    """Decoder keys of ReasoningCodec.checkpoint (official model_config.json: 32 × 1536, 136 latents)."""
    est = "cfm_wrapper.estimator"
    layout = {"cond_feature_emb.weight": [768, 768], "cond_feature_emb.bias": [768], "zero_cond_embedding1": [768],
              f"{est}.proj_in.ffn_1.weight": [1536, 1040, 3], f"{est}.proj_in.ffn_1.bias": [1536],
              f"{est}.proj_in.ffn_2.weight": [1536, 1536], f"{est}.proj_in.ffn_2.bias": [1536],
              f"{est}.scale_shift_table": [2, 1536], f"{est}.pos_embed.pe": [1, 3000, 1536],
              f"{est}.adaln_single.emb.timestep_embedder.linear_1.weight": [1536, 512],
              f"{est}.adaln_single.emb.timestep_embedder.linear_1.bias": [1536],
              f"{est}.adaln_single.emb.timestep_embedder.linear_2.weight": [1536, 1536],
              f"{est}.adaln_single.emb.timestep_embedder.linear_2.bias": [1536],
              f"{est}.adaln_single.linear.weight": [9216, 1536], f"{est}.adaln_single.linear.bias": [9216],
              f"{est}.proj_out.ffn_1.weight": [136, 1536, 3], f"{est}.proj_out.ffn_1.bias": [136],
              f"{est}.proj_out.ffn_2.weight": [136, 136], f"{est}.proj_out.ffn_2.bias": [136]}
    for i in range(32):
        b = f"{est}.transformer_blocks.{i}"
        for name in ("to_q", "to_k", "to_v", "to_out.0"):
            layout |= {f"{b}.attn1.{name}.weight": [1536, 1536], f"{b}.attn1.{name}.bias": [1536]}
        layout |= {f"{b}.ff.net.0.proj.weight": [6144, 1536], f"{b}.ff.net.0.proj.bias": [6144],
                   f"{b}.ff.net.2.weight": [1536, 6144], f"{b}.ff.net.2.bias": [1536],
                   f"{b}.scale_shift_table": [6, 1536]}
    return layout


def test_official_decoder_has_the_released_layout():
    """Built on the meta device (no memory): names and shapes of the 32-layer DiT at full size."""
    from uniaudio.tokenize.reasoning_codec.checkpoint import released_key
    from uniaudio.tokenize.reasoning_codec.flow_decoder import FlowDecoderConfig

    with torch.device("meta"):
        model = ReasoningCodec(OFFICIAL, encode=False, flow_config=FlowDecoderConfig())
    got = {released_key(k): list(v.shape) for k, v in model.state_dict().items()}
    decoder = {k: v for k, v in got.items() if not k.startswith(("vq_", "d_conv", "cond_fusion", "time_film",
                                                                   "reason_adaptor"))}
    assert decoder == released_decode_layout()
    assert got["vq_acoustic.layers.5._codebook.embed"] == [1, 8192, 32]
