"""Reconstruction branch: group-wise VQ of frozen features, FiLM-modulated by the reasoning features.

Per 12.5 Hz frame (T12 = T25/2 = T50/4):

* phone: WavLM → ``d_conv_wavlm`` (k4 s4) → ``cond_fusion_layer_phone`` → FiLM(``time_film_phone``)
  → ``vq_pronunciation_semantic`` (1 × 8192);
* structure: MusicFM L11 → ``d_conv_embedding_semantic`` (k2 s2) → ``cond_fusion_layer_semantic``
  → FiLM(``time_film_semantic``) → ``vq_structure_semantic`` (1 × 8192);
* acoustic: [MusicFM L4 → ``d_conv_embedding_acoustic`` (k2 s2) ; Whisper → ``d_conv_whisper`` (k4 s4)]
  → ``cond_fusion_layer_acoustic`` → FiLM(``time_film_acoustic``) → ``vq_acoustic`` (6 × 8192).

The condition is ``reason_adaptor`` of the quantised reasoning features, repeated nearest ×2.5 to 12.5 Hz.
FiLM: ``(1 + 0.1·tanh(Δγ)) ⊙ x + β`` with ``[Δγ, β] = time_film(cond)``. Unlike the released code,
FiLM is never dropped at random (the released model drops it for 20 % of windows even at inference),
so encoding is deterministic.

Codes are returned in the released order: [phone, structure, acoustic 1–6].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from uniaudio.tokenize.reasoning_codec.config import CodecConfig
from uniaudio.tokenize.reasoning_codec.quantizers import ResidualVQ


class ReconstructionBranch(nn.Module):
    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        d, dw, dl, dm = config.dim, config.whisper_dim, config.wavlm_dim, config.music.dim
        self.film_scale = config.film_scale
        self.d_conv_whisper = nn.Conv1d(dw, dw, 4, stride=4)
        self.d_conv_wavlm = nn.Conv1d(dl, dl, 4, stride=4)
        self.d_conv_embedding_semantic = nn.Conv1d(dm, dm, 2, stride=2)
        self.d_conv_embedding_acoustic = nn.Conv1d(dm, dm, 2, stride=2)
        self.cond_fusion_layer_phone = nn.Linear(dl, d)
        self.cond_fusion_layer_semantic = nn.Linear(dm, d)
        self.cond_fusion_layer_acoustic = nn.Linear(dm + dw, d)
        self.time_film_phone = nn.Linear(d, 2 * d)
        self.time_film_semantic = nn.Linear(d, 2 * d)
        self.time_film_acoustic = nn.Linear(d, 2 * d)
        self.reason_adaptor = nn.Linear(d, d)
        card, cdim = config.recon_card, config.recon_codebook_dim
        self.vq_pronunciation_semantic = ResidualVQ(d, cdim, card, 1)
        self.vq_structure_semantic = ResidualVQ(d, cdim, card, 1)
        self.vq_acoustic = ResidualVQ(d, cdim, card, config.acoustic_codebooks)

    @staticmethod
    def _down(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
        return conv(x.transpose(1, 2)).transpose(1, 2)

    def _film(self, film: nn.Linear, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        delta_gamma, beta = film(cond).chunk(2, dim=-1)
        return (1 + self.film_scale * torch.tanh(delta_gamma)) * x + beta

    def condition(self, reason_features: torch.Tensor, frames: int) -> torch.Tensor:
        """Quantised reasoning features (B, T5, dim) → FiLM condition (B, frames, dim), nearest ×2.5."""
        cond = self.reason_adaptor(reason_features)
        return F.interpolate(cond.transpose(1, 2), size=frames, mode="nearest").transpose(1, 2)

    def forward(self, feats: dict[str, torch.Tensor], reason_features: torch.Tensor) -> torch.Tensor:
        """Frozen features (see ``FrozenEncoders``) + reasoning features → codes (B, T12, 8)."""
        phone = self.cond_fusion_layer_phone(self._down(self.d_conv_wavlm, feats["wavlm"]))
        structure = self.cond_fusion_layer_semantic(
            self._down(self.d_conv_embedding_semantic, feats["music_semantic"]))
        acoustic = self.cond_fusion_layer_acoustic(torch.cat([
            self._down(self.d_conv_embedding_acoustic, feats["music_acoustic"]),
            self._down(self.d_conv_whisper, feats["whisper"].to(phone.dtype)),
        ], dim=-1))
        cond = self.condition(reason_features, phone.shape[1])
        codes = [
            self.vq_pronunciation_semantic(self._film(self.time_film_phone, phone, cond))[1],
            self.vq_structure_semantic(self._film(self.time_film_semantic, structure, cond))[1],
            self.vq_acoustic(self._film(self.time_film_acoustic, acoustic, cond))[1],
        ]
        return torch.cat(codes, dim=-1)

    def quantized(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, T12, 8) in released order → summed quantised features (B, T12, dim) for decoding."""
        return (self.vq_pronunciation_semantic.decode(codes[..., :1])
                + self.vq_structure_semantic.decode(codes[..., 1:2])
                + self.vq_acoustic.decode(codes[..., 2:]))
