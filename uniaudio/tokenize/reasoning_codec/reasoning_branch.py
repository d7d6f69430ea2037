"""Reasoning branch (released ``audio_thinking``): Whisper + MusicFM L11 → 5 Hz reasoning tokens.

1. Whisper (B, T50, Dw) → ``down_sampling_layer_whisper`` (Conv1d k2 s2) → 25 Hz;
2. concatenated with MusicFM layer 11 (B, T25, Dm) → ``semantic_merge_proj`` → ``dim``;
3. a learnable query ``cls_token`` inserted after every 5 frames (positions 5, 11, 17, …);
4. ``encoder_transformers``: 5 :class:`TransformerBlock` (non-causal);
5. the query positions are read out (T25/5 per window) → ``reasoning_vq`` (8 × 4096 RVQ).
"""

from __future__ import annotations

import torch
from torch import nn

from uniaudio.tokenize.reasoning_codec.config import CodecConfig
from uniaudio.tokenize.reasoning_codec.quantizers import ResidualVQ
from uniaudio.tokenize.reasoning_codec.transformer_block import TransformerBlock


def insert_queries(x: torch.Tensor, query: torch.Tensor, every: int) -> torch.Tensor:
    """(B, T, D) with T a multiple of ``every`` → (B, T + T/every, D): a query after each group."""
    b, t, d = x.shape
    groups = x.view(b, t // every, every, d)
    q = query.to(x.dtype).view(1, 1, 1, d).expand(b, t // every, 1, d)
    return torch.cat([groups, q], dim=2).reshape(b, -1, d)


def query_positions(x: torch.Tensor, every: int) -> torch.Tensor:
    """The outputs at the query positions (indices every, 2·every+1, …) → (B, T/every, D)."""
    b, t, d = x.shape
    return x.view(b, t // (every + 1), every + 1, d)[:, :, every]


class ReasoningBranch(nn.Module):
    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.every = config.queries_every
        self.cls_token = nn.Parameter(torch.randn(1, config.dim) * 0.02)
        self.down_sampling_layer_whisper = nn.Conv1d(config.whisper_dim, config.whisper_dim, 2, stride=2)
        self.semantic_merge_proj = nn.Linear(config.whisper_dim + config.music.dim, config.dim)
        self.encoder_transformers = nn.ModuleList(
            TransformerBlock(config.dim, config.reason_head_dim, config.reason_rotary_dim, config.reason_ff_mult)
            for _ in range(config.reason_depth)
        )
        self.reasoning_vq = ResidualVQ(config.dim, config.reason_codebook_dim, config.reason_card,
                                       config.reason_codebooks)

    def forward(self, whisper: torch.Tensor, music_semantic: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Whisper (B, 2T, Dw) + MusicFM L11 (B, T, Dm), T a multiple of 5 →
        (quantised reasoning features (B, T/5, dim), codes (B, T/5, 8))."""
        w = self.down_sampling_layer_whisper(whisper.transpose(1, 2)).transpose(1, 2)
        if w.shape[1] != music_semantic.shape[1] or w.shape[1] % self.every:
            raise ValueError(f"whisper gives {w.shape[1]} 25 Hz frames, MusicFM {music_semantic.shape[1]}; "
                             f"both must be equal multiples of {self.every}")
        x = self.semantic_merge_proj(torch.cat([w, music_semantic.to(w.dtype)], dim=-1))
        x = insert_queries(x, self.cls_token, self.every)
        for block in self.encoder_transformers:
            x = block(x)
        return self.reasoning_vq(query_positions(x, self.every))
