"""Decode path, part 1: reconstruction features of one window → SQ-Codec latents with a flow-matching DiT.

The estimator follows the released ``cfm_wrapper.estimator`` (``models/transformer_1d_flow.py``,
``Transformer1DModel`` configured by ``model_config.json``, adaLN-single):

* ``proj_in`` / ``proj_out`` (``ProjectLayer``): ``ffn_2(ffn_1(x) · 3^-0.5)`` with ``ffn_1`` a Conv1d of
  kernel 3 and ``ffn_2`` a Linear, **no activation** between them;
* ``pos_embed.pe``: diffusers' ``SinusoidalPositionalEmbedding`` table, a persistent buffer
  ``[1, 3000, inner]`` with sin on even and cos on odd dimensions (frequency ``10000^(-2i/inner)``),
  added after ``proj_in``;
* ``num_layers`` blocks of (adaLN-modulated no-affine LayerNorm → self-attention → gate; LayerNorm →
  GELU-tanh FF → gate), final no-affine LayerNorm (eps 1e-6) modulated by ``scale_shift_table``;
* time: a 512-d ``[cos | sin]`` sinusoid of ``t·1000`` → ``adaln_single``.

Sampling one window (:meth:`FlowDecoder.sample`, the released ``inference_codes`` + ``solve_euler``):
``mu = cond_feature_emb(features)`` repeated ×2 to 25 Hz; fixed-step Euler from Gaussian noise (t: 0 → 1)
with classifier-free guidance against ``mu = 0``; the estimator's input is ``[x_t, in-context latents,
mu]``. The first ``n`` frames are the in-context prefix: before every step they are set to the
flow path ``(1 − (1 − σ_min)·t)·noise + t·prefix`` (σ_min = 1e-4) and after the last step to the prefix.
How windows are cut and joined is :mod:`.decode_windows`.
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
MAX_POSITIONS = 3000  # num_positional_embeddings of the released Transformer1DModel
OUT_NORM_EPS = 1e-6  # norm_out's eps is fixed in the released code (not model_config.json's norm_eps)
SIGMA_MIN = 1e-4


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
    """(N,) → (N, dim) time embedding ``[cos | sin]`` with frequencies ``10000^(-i/(dim/2))``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=values.device) / half)
    args = values.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def position_table(length: int, dim: int) -> torch.Tensor:
    """(1, length, dim): sin on even, cos on odd dimensions, frequency ``10000^(-2i/dim)`` for pair i."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freqs = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10_000.0) / dim))
    table = torch.zeros(1, length, dim)
    table[0, :, 0::2] = torch.sin(position * freqs)
    table[0, :, 1::2] = torch.cos(position * freqs)
    return table


class SinusoidalPositions(nn.Module):
    """``pos_embed``: adds the persistent table ``pe`` (part of the released checkpoint)."""

    def __init__(self, dim: int, length: int = MAX_POSITIONS) -> None:
        super().__init__()
        self.register_buffer("pe", position_table(length, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[1]:
            raise ValueError(f"DiT input of {x.shape[1]} frames exceeds {self.pe.shape[1]} positions")
        return x + self.pe[:, : x.shape[1]].to(x.dtype)


class ProjectLayer(nn.Module):
    """``ffn_1`` Conv1d(kernel 3) → scale by ``3^-0.5`` → ``ffn_2`` Linear, on (B, T, C); no activation."""

    KERNEL = 3

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.ffn_1 = nn.Conv1d(dim_in, dim_out, self.KERNEL, padding=self.KERNEL // 2)
        self.ffn_2 = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_2(self.ffn_1(x.transpose(1, 2)).transpose(1, 2) * self.KERNEL ** -0.5)


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
        self.proj_in = ProjectLayer(config.in_channels, dim)
        self.pos_embed = SinusoidalPositions(dim)
        self.transformer_blocks = nn.ModuleList(
            DiTBlock(dim, config.num_attention_heads, config.norm_eps) for _ in range(config.num_layers))
        self.norm_out = nn.LayerNorm(dim, eps=OUT_NORM_EPS, elementwise_affine=False)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)
        self.adaln_single = AdaLayerNormSingle(dim)
        self.proj_out = ProjectLayer(dim, config.out_channels)

    def forward(self, x_t: torch.Tensor, context: torch.Tensor, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.pos_embed(self.proj_in(torch.cat([x_t, context, mu], dim=-1)))
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
    """Reconstruction features of one window (B, W, dim) → SQ-Codec latents (B, 2·W, latent_dim)."""

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

    @torch.inference_mode()
    def sample(self, features: torch.Tensor, prefix: torch.Tensor | None, steps: int, cfg: float,
               generator: torch.Generator) -> torch.Tensor:
        """Euler flow matching for one window; ``prefix`` (B, n, latent_dim) fixes the first n frames."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        est = self.cfm_wrapper.estimator
        mu = self.cond_feature_emb(features).repeat_interleave(2, dim=1)
        b, t_len = mu.shape[:2]
        noise = torch.randn(b, t_len, self.config.out_channels, generator=generator,
                            device="cpu").to(mu.device)  # the ODE state stays fp32 under bf16 autocast
        context = torch.zeros_like(noise)
        n = 0 if prefix is None else prefix.shape[1]
        if n:
            context[:, :n] = prefix.float()
        x = noise.clone()
        for i in range(steps):
            t = i / steps
            x[:, :n] = (1 - (1 - SIGMA_MIN) * t) * noise[:, :n] + t * context[:, :n]
            t_vec = torch.full((b,), t, device=mu.device)
            v = est(x, context, mu, t_vec)
            if cfg != 1.0:
                v_uncond = est(x, context, torch.zeros_like(mu), t_vec)
                v = v_uncond + cfg * (v - v_uncond)
            x = x + v.float() / steps
        x[:, :n] = context[:, :n]
        return x
