"""Training FLOPs from the architecture: matmul counts checked against PyTorch's FLOP counter."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from uniaudio.model.config import AuxDecoderConfig, DistillTarget, UniAudioConfig, preset
from uniaudio.model.flops import batch_flops, flops_per_token, training_flops
from uniaudio.model.network import UniAudioModel
from uniaudio.model.packing import pack
from uniaudio.model.sequence import AudioSegment, TextSegment, build_sequence, collate


def _seqs(config: UniAudioConfig) -> list:
    g = torch.Generator().manual_seed(0)
    feats = {"w": torch.randn(8, 6, generator=g)}
    return [
        build_sequence([TextSegment((1, 2, 3), loss=True),
                        AudioSegment(torch.randint(0, 64, (8, 3), generator=g),
                                     torch.randint(0, 128, (8, 4), generator=g), loss=True, features=feats)],
                       config.tokens, config.aux_decoder),
        build_sequence([TextSegment((4, 5, 6, 7), role="caption", loss=True)], config.tokens, config.aux_decoder),
        build_sequence([AudioSegment(None, torch.randint(0, 128, (8, 5), generator=g), loss=True)],
                       config.tokens, config.aux_decoder),
    ]


def test_matmul_flops_match_the_flop_counter(tiny_config: UniAudioConfig) -> None:
    """Forward matmul FLOPs (attention excluded: CPU SDPA is not counted) equal PyTorch's count exactly."""
    cfg = tiny_config.with_(aux_decoder=AuxDecoderConfig(16, (DistillTarget("w", 6, 2),)))
    model = UniAudioModel(cfg)
    batch = collate(_seqs(cfg)[:1])
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(batch)
    measured = sum(v for op, v in counter.get_flop_counts()["Global"].items() if "attention" not in str(op))
    n_text = int((batch.labels[..., -1] != -100).sum())
    n_frames = int((batch.labels[..., :-1] != -100).any(-1).sum())
    assert n_text == 4 and n_frames == 11 and len(batch.distill_positions) == 4
    local = cfg.local_decoder
    local_attention = 4 * local.n_layers * local.d_model * 36 * n_frames  # 8 positions: 36 causal pairs
    expected = training_flops(cfg, batch.tokens.shape[1], 0, n_text, n_frames, 4) / 3 - local_attention
    assert measured == expected


def test_packed_batch_counts_what_the_samples_count(tiny_config: UniAudioConfig) -> None:
    seqs = _seqs(tiny_config)
    packed = pack(seqs, 40)
    assert packed.tokens.shape[0] < len(seqs)
    assert batch_flops(tiny_config, packed) == pytest.approx(sum(batch_flops(tiny_config, collate([s]))
                                                                 for s in seqs))
    padded = collate(seqs, pad_to=40)  # padding is not counted either
    assert batch_flops(tiny_config, padded) == pytest.approx(batch_flops(tiny_config, packed))


def test_flops_per_token_of_the_1b_preset() -> None:
    cfg = preset("1b")
    text_only = flops_per_token(cfg, 2048, text_fraction=1.0, audio_fraction=0.0)
    # 21 LLaMA layers of 2048 (≈ 60.8 M weights each) + LM head, 6N plus causal attention
    layer = 2 * 2048 * 2048 + 2 * 2048 * 512 + 3 * 2048 * 8192
    expected = 6 * (21 * layer + 2048 * 128256) + 6 * 21 * 2048 * 2049
    assert text_only == pytest.approx(expected)
    audio = flops_per_token(cfg, 2048, text_fraction=0.2, audio_fraction=0.8)
    assert 2.0 < audio / flops_per_token(cfg, 2048, 0.2, 0.0) < 4.0  # the local decoder's 8 positions per frame
    with pytest.raises(ValueError, match="fractions in"):
        flops_per_token(cfg, 2048, 1.5, 0.0)
