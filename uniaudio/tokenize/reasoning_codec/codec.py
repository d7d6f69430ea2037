"""The ReasoningCodec's own layers (what ``ReasoningCodec.checkpoint`` holds), split by use.

* ``reasoning`` (:class:`ReasoningBranch`, released prefix ``audio_thinking.``) and ``reconstruction``
  (:class:`ReconstructionBranch`, released top-level names) are built for encoding;
* ``reconstruction`` (its VQ codebooks) and ``decoder`` (:class:`FlowDecoder`) are built for decoding.

Encode-only use builds no decoder; decode-only use builds no reasoning branch. The frozen encoders are
separate (:mod:`.frozen_encoders`), loaded from their own files.
"""

from __future__ import annotations

import torch
from torch import nn

from uniaudio.tokenize.reasoning_codec.config import CodecConfig
from uniaudio.tokenize.reasoning_codec.flow_decoder import FlowDecoder, FlowDecoderConfig
from uniaudio.tokenize.reasoning_codec.reasoning_branch import ReasoningBranch
from uniaudio.tokenize.reasoning_codec.reconstruction_branch import ReconstructionBranch


class ReasoningCodec(nn.Module):
    def __init__(self, config: CodecConfig, *, encode: bool = True,
                 flow_config: FlowDecoderConfig | None = None) -> None:
        super().__init__()
        if not encode and flow_config is None:
            raise ValueError("build the codec for encoding, decoding (flow_config) or both")
        self.config = config
        self.reasoning = ReasoningBranch(config) if encode else None
        self.reconstruction = ReconstructionBranch(config)
        self.decoder = FlowDecoder(flow_config, config.dim) if flow_config is not None else None

    def encode(self, feats: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen-encoder features of a batch of equal-length windows → reasoning codes (B, T5, 8) and
        reconstruction codes (B, T12, 8), int64, in the released code order."""
        if self.reasoning is None:
            raise RuntimeError("this codec was built for decoding only (encode=False)")
        reason_features, reason_codes = self.reasoning(feats["whisper"], feats["music_semantic"])
        recon_codes = self.reconstruction(feats, reason_features.to(feats["whisper"].dtype))
        return reason_codes, recon_codes

    def sample_window(self, recon_codes: torch.Tensor, prefix: torch.Tensor | None, steps: int, cfg: float,
                      generator: torch.Generator) -> torch.Tensor:
        """Reconstruction codes of one window (B, W, 8) → SQ-Codec latents (B, 2·W, latent_dim);
        ``prefix`` (B, n, latent_dim) is the in-context start (see :mod:`.decode_windows`)."""
        if self.decoder is None:
            raise RuntimeError("this codec was built without a decoder (flow_config=None)")
        features = self.reconstruction.quantized(recon_codes)
        return self.decoder.sample(features, prefix, steps=steps, cfg=cfg, generator=generator)
