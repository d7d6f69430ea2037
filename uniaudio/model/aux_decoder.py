"""The stage-1 semantic-distillation decoder: L_rec = λ_rec · ||D(h) − z_SSL||², dropped after stage 1
(the loss itself is in :mod:`uniaudio.model.losses`).

A light MLP per target reads the understanding experts' output at each reconstruction frame (12.5 Hz) and
predicts the ``frames_per_token`` frozen SSL feature frames it covers. The defaults read the features that
``uniaudio shards build --distill-features`` stores, already pooled to 12.5 Hz (one frame per token:
``distill_wavlm`` (768-d) and ``distill_music`` (1024-d)); unpooled targets (WavLM 50 Hz → 4, MusicFM
25 Hz → 2 frames per token) are configurable.
"""

from __future__ import annotations

from torch import Tensor, nn

from uniaudio.model.config import AuxDecoderConfig


class SemanticDistillationDecoder(nn.Module):
    """``heads[name]``: Linear(d_model → hidden) → GELU → Linear(hidden → frames_per_token · dim)."""

    def __init__(self, d_model: int, config: AuxDecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.heads = nn.ModuleDict({
            t.name: nn.Sequential(nn.Linear(d_model, config.hidden), nn.GELU(),
                                  nn.Linear(config.hidden, t.frames_per_token * t.dim))
            for t in config.targets
        })

    def forward(self, hidden: Tensor) -> dict[str, Tensor]:
        """(N, d_model) understanding states → {name: (N, frames_per_token, dim)} predicted features."""
        return {t.name: self.heads[t.name](hidden).view(-1, t.frames_per_token, t.dim) for t in self.config.targets}

