"""Parity with upstream's code (UniAudio2 @ dea57db, ``tools/tokenizer/ReasoningCodec_film``), module by module.

Each test builds a module at a small size and checks a property the released code fixes, computed here
by hand from the released formulas rather than through the module under test.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from uniaudio.tokenize.reasoning_codec.config import OFFICIAL, TINY, MusicEncoderConfig
from uniaudio.tokenize.reasoning_codec.decode_windows import DecodeWindows, cross_fade_join, extend_cyclically
from uniaudio.tokenize.reasoning_codec.flow_decoder import (
    DiTEstimator,
    FlowDecoder,
    FlowDecoderConfig,
    ProjectLayer,
    SinusoidalPositions,
)
from uniaudio.tokenize.reasoning_codec.music_encoder import MusicFM25Hz, conformer_config


def test_conformer_takes_the_released_w2v2_settings():
    cfg = conformer_config(OFFICIAL.music)
    assert cfg.hidden_act == "swish" and cfg.layer_norm_eps == 1e-5
    assert cfg.position_embeddings_type == "rotary" and cfg.rotary_embedding_base == 10000
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size,
            cfg.conv_depthwise_kernel_size) == (1024, 12, 16, 4096, 31)
    assert (cfg.num_conv_pos_embeddings, cfg.num_conv_pos_embedding_groups) == (128, 16)
    assert OFFICIAL.music.mel_mean == 6.768444971712967 and OFFICIAL.music.mel_std == 18.417922652295623


def _rotary(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Rotary positions as wav2vec2-conformer applies them: on the layer-normed input, per head,
    ``x·cos + rotate_half(x)·sin`` with frequencies ``10000^(-2i/head_dim)``."""
    b, t, d = x.shape
    hd = d // heads
    freqs = torch.arange(t)[:, None].float() / 10000 ** (torch.arange(0, hd, 2).float() / hd)
    emb = torch.cat([freqs, freqs], -1)
    xh = x.view(b, t, heads, hd)
    rotated = torch.cat([-xh[..., hd // 2:], xh[..., : hd // 2]], -1)
    return (xh * emb.cos()[None, :, None] + rotated * emb.sin()[None, :, None]).view(b, t, d)


def test_one_conformer_layer_by_hand():
    """Macaron FFN halves with swish, rotary self-attention, convolution module (GLU → depthwise → eval
    BatchNorm → swish), final LayerNorm: the order and activations of the released conformer."""
    torch.manual_seed(0)
    cfg = MusicEncoderConfig(dim=32, conv_dim=8, num_layers=1, num_heads=2, ffn_dim=64, conv_kernel=7,
                             acoustic_layer=1, semantic_layer=1)
    enc = MusicFM25Hz(cfg).eval().conformer
    layer = enc.layers[0]
    bn = layer.conv_module.batch_norm
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 11, 32)
    with torch.no_grad():
        got = layer(x, relative_position_embeddings=enc.embed_positions(x))

        def ffn(m, h):
            return m.output_dense(F.silu(m.intermediate_dense(h)))

        h = x + 0.5 * ffn(layer.ffn1, layer.ffn1_layer_norm(x))
        a = layer.self_attn
        normed = layer.self_attn_layer_norm(h)
        qk_in = _rotary(normed, 2)
        q, k = a.linear_q(qk_in).view(2, 11, 2, 16), a.linear_k(qk_in).view(2, 11, 2, 16)
        v = a.linear_v(normed).view(2, 11, 2, 16)
        w = torch.softmax(torch.einsum("bthd,bshd->bhts", q, k) / 4.0, -1)
        h = h + a.linear_out(torch.einsum("bhts,bshd->bthd", w, v).reshape(2, 11, 32))
        c = layer.conv_module
        y = c.pointwise_conv1(c.layer_norm(h).transpose(1, 2))
        y = y[:, :32] * torch.sigmoid(y[:, 32:])
        y = F.batch_norm(c.depthwise_conv(y), bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps)
        h = h + c.pointwise_conv2(F.silu(y)).transpose(1, 2)
        h = h + 0.5 * ffn(layer.ffn2, layer.ffn2_layer_norm(h))
        want = F.layer_norm(h, (32,), layer.final_layer_norm.weight, layer.final_layer_norm.bias, 1e-5)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_position_table_is_persistent_sin_even_cos_odd():
    pos = SinusoidalPositions(8, length=50)
    assert pos.pe.shape == (1, 50, 8) and "pe" in pos.state_dict()
    for p in (0, 7, 49):
        for i in range(4):
            angle = p * 10000 ** (-2 * i / 8)
            assert pos.pe[0, p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pos.pe[0, p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    est = DiTEstimator(FlowDecoderConfig(in_channels=40, out_channels=8, num_layers=1, num_attention_heads=2,
                                         attention_head_dim=8))
    assert est.state_dict()["pos_embed.pe"].shape == (1, 3000, 16)


def test_project_layer_has_no_activation():
    torch.manual_seed(0)
    proj = ProjectLayer(5, 6)
    x = torch.randn(2, 9, 5)
    with torch.no_grad():
        conv = F.conv1d(x.transpose(1, 2), proj.ffn_1.weight, proj.ffn_1.bias, padding=1).transpose(1, 2)
        want = F.linear(conv * 3 ** -0.5, proj.ffn_2.weight, proj.ffn_2.bias)
        torch.testing.assert_close(proj(x), want)


def test_flow_decoder_keeps_the_in_context_prefix():
    torch.manual_seed(0)
    cfg = FlowDecoderConfig(in_channels=2 * 4 + 16, out_channels=4, num_layers=1, num_attention_heads=2,
                            attention_head_dim=8)
    dec = FlowDecoder(cfg, 16).eval()
    prefix = torch.randn(1, 3, 4)
    out = dec.sample(torch.randn(1, 5, 16), prefix, steps=3, cfg=1.5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 10, 4)
    torch.testing.assert_close(out[:, :3], prefix)


def test_decode_windows_follow_code2sound_no_reason():
    grid = DecodeWindows.plan(700, 20.0)
    assert (grid.window, grid.hop, grid.overlap, grid.prefix_latents) == (250, 186, 64, 32)
    assert grid.padded == 4 * 186 + 64 and grid.starts == [0, 186, 372, 558]
    short = DecodeWindows.plan(30, 20.0)
    assert short.padded == 250 and short.starts == [0]
    assert DecodeWindows.plan(750, 30.0).hop == 279  # the released 30 s grid
    with pytest.raises(ValueError, match="whole number"):
        DecodeWindows.plan(10, 20.1)
    codes = torch.arange(7)[None, :, None]
    doubled = codes
    while doubled.shape[1] < 30:
        doubled = torch.cat([doubled, doubled], 1)  # the released extension: double, then cut
    torch.testing.assert_close(extend_cyclically(codes, 30), doubled[:, :30])


def test_cross_fade_is_linear_over_the_overlap():
    a, b = torch.ones(1, 10), torch.zeros(1, 10)
    joined = cross_fade_join(a, b, 4)
    assert joined.shape == (1, 16)
    torch.testing.assert_close(joined[0, 6:10], 1 - torch.linspace(0, 1, 4))


def test_tiny_music_config_is_valid_and_checked():
    assert TINY.music.dim % 16 == 0
    with pytest.raises(ValueError, match="16"):
        MusicEncoderConfig(dim=24, num_heads=2)
