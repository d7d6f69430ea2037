"""The reasoning branch's transformer block, as released (``modules/transformer.py::TransformerBlock``).

Configuration of the released blocks: non-causal self-attention with ``dim/head_dim`` heads, LayerNorm
on queries and keys (per head, before RoPE), partial rotary embedding on the first ``rotary_dim`` dims
of each head, LayerScale on both residual branches, a Sigmoid-GLU feed-forward of width ``4·dim``,
no pre-norms ("power normalised"), and weight normalisation (``torch.nn.utils.parametrizations``,
``original0`` = g, ``original1`` = v) on ``to_qkv``, ``to_out``, the GLU projection and the FF output.

State-dict names per block: ``self_attn.to_qkv``, ``self_attn.to_out``, ``self_attn.{q,k}_norm``,
``self_attn_scale.scale``, ``ff.ff.0.proj``, ``ff.ff.2``, ``ff_scale.scale``, ``rope.inv_freq``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float = 1e-4) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class RotaryEmbedding(nn.Module):
    """Rotary position embedding over the first ``rotary_dim`` dims of a head (``inv_freq`` is saved)."""

    def __init__(self, rotary_dim: int, base: float = 10_000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, rotary_dim, 2).float() / rotary_dim)
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, length: int, device: torch.device) -> torch.Tensor:
        """Angles (length, rotary_dim): each frequency repeated for the two halves."""
        t = torch.arange(length, device=device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq.float())
        return torch.cat([freqs, freqs], dim=-1)


def apply_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``angles.shape[-1]`` dims of ``x`` (B, H, T, D); the rest pass through."""
    rot_dim = angles.shape[-1]
    x_rot, x_pass = x[..., :rot_dim], x[..., rot_dim:]
    x1, x2 = x_rot.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    x_rot = x_rot.float() * angles.cos() + rotated.float() * angles.sin()
    return torch.cat([x_rot.to(x.dtype), x_pass], dim=-1)


class Attention(nn.Module):
    def __init__(self, dim: int, head_dim: int) -> None:
        super().__init__()
        self.heads = dim // head_dim
        self.head_dim = head_dim
        self.to_qkv = weight_norm(nn.Linear(dim, 3 * dim, bias=False))
        self.to_out = weight_norm(nn.Linear(dim, dim, bias=False))
        self.q_norm = nn.LayerNorm(head_dim)
        self.k_norm = nn.LayerNorm(head_dim)

    def forward(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.to_qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q = apply_rotary(self.q_norm(q), angles)
        k = apply_rotary(self.k_norm(k), angles)
        out = F.scaled_dot_product_attention(q, k, v.to(q.dtype))
        return self.to_out(out.transpose(1, 2).reshape(b, t, -1))


class SigmoidGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = weight_norm(nn.Linear(dim_in, 2 * dim_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * torch.sigmoid(gate)


class FeedForward(nn.Module):
    """``ff.0`` GLU (dim → mult·dim), ``ff.1`` identity (the released dropout slot), ``ff.2`` out proj."""

    def __init__(self, dim: int, mult: int) -> None:
        super().__init__()
        inner = dim * mult
        self.ff = nn.Sequential(SigmoidGLU(dim, inner), nn.Identity(), weight_norm(nn.Linear(inner, dim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class TransformerBlock(nn.Module):
    """``x + s1·attn(x)`` then ``x + s2·ff(x)`` (no pre-norms), non-causal, partial RoPE."""

    def __init__(self, dim: int, head_dim: int, rotary_dim: int, ff_mult: int) -> None:
        super().__init__()
        self.self_attn = Attention(dim, head_dim)
        self.self_attn_scale = LayerScale(dim)
        self.ff = FeedForward(dim, ff_mult)
        self.ff_scale = LayerScale(dim)
        self.rope = RotaryEmbedding(rotary_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = self.rope(x.shape[1], x.device)
        x = x + self.self_attn_scale(self.self_attn(x, angles))
        return x + self.ff_scale(self.ff(x))


def fold_weight_norms(module: nn.Module) -> None:
    """Replace every weight-norm parametrisation under ``module`` by its current plain weight.

    For inference after loading: the weight is no longer recomputed from (g, v) on every call. The
    state-dict keys change (``weight`` instead of ``parametrizations.weight.original0/1``), so fold
    only after the checkpoint is loaded.
    """
    for sub in module.modules():
        if parametrize.is_parametrized(sub, "weight"):
            parametrize.remove_parametrizations(sub, "weight", leave_parametrized=True)
