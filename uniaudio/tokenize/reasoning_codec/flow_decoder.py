"""Decode path, part 1: reconstruction features → SQ-Codec latents with a flow-matching DiT.

The estimator follows the released ``cfm_wrapper.estimator`` layout (configured by ``model_config.json``,
diffusers-style ``Transformer1DModel``, adaLN-single): ``proj_in`` (Conv1d k3 + Linear) on
``[x_t, in-context latents, mu]``, sinusoidal positions, ``num_layers`` blocks of
(adaLN-modulated no-affine LayerNorm → self-attention → gate; LayerNorm → GELU-tanh FF → gate), final
adaLN ``scale_shift_table`` and ``proj_out`` (Conv1d k3 + Linear). Time embedding: a 512-d sinusoid of
``t·1000`` → ``adaln_single``.

Sampling (:class:`FlowDecoder`): ``mu = cond_feature_emb(features)`` repeated ×2 to 25 Hz; fixed-step
Euler from seeded Gaussian noise (t: 0 → 1) with classifier-free guidance against ``mu = 0``.
Long inputs are cut into 30 s windows with a hop of 280 token frames (= 560 latent frames = 537600
samples exactly, so tokens and audio stay aligned); the previous window's latents on the first 48
overlapping frames are the in-context prefix, and the overlap is cross-faded linearly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

TIME_DIM = 512
MAX_POSITIONS = 3000
WINDOW_LATENTS = 750  # 30 s at 25 Hz
HOP_LATENTS = 560  # 280 reconstruction frames
PREFIX_LATENTS = 48


@dataclass(frozen=True, kw_only=True)
class FlowDecoderConfig:
    """The fields of the released ``model_config.json`` that shape the estimator."""

    in_channels: int = 1040
    out_channels: int = 136
    num_layers: int = 32
    num_attention_heads: int = 24
    attention_head_dim: int = 64
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.in_channels <= 2 * self.out_channels:
            raise ValueError(f"in_channels {self.in_channels} must exceed 2·out_channels "
                             f"(x_t + in-context latents + condition)")

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def cond_dim(self) -> int:
        return self.in_channels - 2 * self.out_channels

    @classmethod
    def from_json(cls, path: Path) -> FlowDecoderConfig:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read flow-decoder config {path}: {exc}") from exc
        fields = ("in_channels", "out_channels", "num_layers", "num_attention_heads",
                  "attention_head_dim", "norm_eps")
        missing = [f for f in fields[:5] if f not in data]
        if missing:
            raise ValueError(f"{path}: flow-decoder config lacks {missing}")
        return cls(**{f: data[f] for f in fields if f in data})

    def to_json_dict(self) -> dict:
        """The released-style ``model_config.json`` content."""
        return {
            "_class_name": "Transformer1DModel", "in_channels": self.in_channels,
            "out_channels": self.out_channels, "num_layers": self.num_layers,
            "num_attention_heads": self.num_attention_heads, "attention_head_dim": self.attention_head_dim,
            "norm_type": "ada_norm_single", "activation_fn": "gelu-approximate", "attention_bias": True,
            "norm_elementwise_affine": False, "norm_eps": self.norm_eps,
        }


def sinusoid(values: torch.Tensor, dim: int) -> torch.Tensor:
    """(N,) → (N, dim) embedding [cos | sin] with geometric frequencies (diffusers' flip_sin_to_cos)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=values.device) / half)
    args = values.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ConvProjection(nn.Module):
    """``ffn_1`` Conv1d(k3) → SiLU → ``ffn_2`` Linear, on (B, T, C)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.ffn_1 = nn.Conv1d(dim_in, dim_out, 3, padding=1)
        self.ffn_2 = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_2(F.silu(self.ffn_1(x.transpose(1, 2)).transpose(1, 2)))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (proj(x).view(b, t, self.heads, -1).transpose(1, 2) for proj in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out[0](out.transpose(1, 2).reshape(b, t, d))


class GeluProj(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.ModuleList([GeluProj(dim, 4 * dim), nn.Identity(), nn.Linear(4 * dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class DiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.attn1 = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.ff = FeedForward(dim)
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def forward(self, x: torch.Tensor, t6: torch.Tensor) -> torch.Tensor:
        shift_a, scale_a, gate_a, shift_f, scale_f, gate_f = (
            self.scale_shift_table[None] + t6.view(x.shape[0], 6, -1)).chunk(6, dim=1)
        x = x + gate_a * self.attn1(self.norm1(x) * (1 + scale_a) + shift_a)
        return x + gate_f * self.ff(self.norm2(x) * (1 + scale_f) + shift_f)


class TimestepEmbedder(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(TIME_DIM, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(sinusoid(t * 1000, TIME_DIM))))


class _TimeEmbedding(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.timestep_embedder = TimestepEmbedder(dim)


class AdaLayerNormSingle(nn.Module):
    """t → (6·dim modulation for every block, dim embedding for the output norm)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.emb = _TimeEmbedding(dim)
        self.linear = nn.Linear(dim, 6 * dim)

    def forward(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = self.emb.timestep_embedder(t)
        return self.linear(F.silu(embedded)), embedded


class DiTEstimator(nn.Module):
    """Velocity field v(x_t, t | in-context latents, mu); all tensors (B, T, C)."""

    def __init__(self, config: FlowDecoderConfig) -> None:
        super().__init__()
        dim = config.inner_dim
        self.proj_in = ConvProjection(config.in_channels, dim)
        self.register_buffer("positions", sinusoid(torch.arange(MAX_POSITIONS), dim), persistent=False)
        self.transformer_blocks = nn.ModuleList(
            DiTBlock(dim, config.num_attention_heads, config.norm_eps) for _ in range(config.num_layers))
        self.norm_out = nn.LayerNorm(dim, eps=config.norm_eps, elementwise_affine=False)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)
        self.adaln_single = AdaLayerNormSingle(dim)
        self.proj_out = ConvProjection(dim, config.out_channels)

    def forward(self, x_t: torch.Tensor, context: torch.Tensor, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.proj_in(torch.cat([x_t, context, mu], dim=-1))
        if h.shape[1] > MAX_POSITIONS:
            raise ValueError(f"DiT input of {h.shape[1]} frames exceeds {MAX_POSITIONS} positions")
        h = h + self.positions[: h.shape[1]].to(h.dtype)
        t6, embedded = self.adaln_single(t)
        for block in self.transformer_blocks:
            h = block(h, t6)
        shift, scale = (self.scale_shift_table[None] + embedded[:, None]).chunk(2, dim=1)
        return self.proj_out(self.norm_out(h) * (1 + scale) + shift)


class _CFMWrapper(nn.Module):
    def __init__(self, config: FlowDecoderConfig) -> None:
        super().__init__()
        self.estimator = DiTEstimator(config)


class FlowDecoder(nn.Module):
    """Reconstruction features (B, T12, dim) → SQ-Codec latents (B, 2·T12, latent_dim)."""

    def __init__(self, config: FlowDecoderConfig, feature_dim: int) -> None:
        super().__init__()
        if config.cond_dim != feature_dim:
            raise ValueError(f"flow decoder expects {config.cond_dim}-d conditions "
                             f"(in_channels {config.in_channels} − 2·{config.out_channels}), codec gives "
                             f"{feature_dim}")
        self.config = config
        self.cond_feature_emb = nn.Linear(feature_dim, feature_dim)
        self.zero_cond_embedding1 = nn.Parameter(torch.zeros(feature_dim))  # released; unused at inference
        self.cfm_wrapper = _CFMWrapper(config)

    def _window(self, mu: torch.Tensor, context: torch.Tensor, steps: int, cfg: float,
                generator: torch.Generator) -> torch.Tensor:
        est = self.cfm_wrapper.estimator
        x = torch.randn(mu.shape[0], mu.shape[1], self.config.out_channels, generator=generator,
                        device="cpu").to(mu.device)  # the ODE state stays fp32 under bf16 autocast
        for i in range(steps):
            t = torch.full((mu.shape[0],), i / steps, device=mu.device)
            v = est(x, context, mu, t)
            if cfg != 1.0:
                v_uncond = est(x, context, torch.zeros_like(mu), t)
                v = v_uncond + cfg * (v - v_uncond)
            x = x + v / steps
        return x

    @torch.inference_mode()
    def forward(self, features: torch.Tensor, steps: int = 10, cfg: float = 1.5, seed: int = 0) -> torch.Tensor:
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        mu_all = self.cond_feature_emb(features).repeat_interleave(2, dim=1)
        total = mu_all.shape[1]
        generator = torch.Generator().manual_seed(seed)
        out = torch.zeros(mu_all.shape[0], total, self.config.out_channels, device=mu_all.device)
        start, prev_end = 0, 0
        while True:
            end = min(start + WINDOW_LATENTS, total)
            context = torch.zeros_like(out[:, start:end])
            overlap = prev_end - start
            if overlap > 0:
                n = min(PREFIX_LATENTS, overlap)
                context[:, :n] = out[:, start:start + n]
            latents = self._window(mu_all[:, start:end], context, steps, cfg, generator)
            if overlap > 0:
                fade = torch.linspace(0, 1, overlap + 2, device=out.device, dtype=out.dtype)[1:-1, None]
                latents[:, :overlap] = (1 - fade) * out[:, start:prev_end] + fade * latents[:, :overlap]
            out[:, start:end] = latents
            if end == total:
                return out
            prev_end, start = end, start + HOP_LATENTS
