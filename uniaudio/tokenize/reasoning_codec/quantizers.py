"""Residual vector quantisation with the released parameter layout (vector-quantize-pytorch ``ResidualVQ``).

Inference only: the EMA statistics (``embed_avg``, ``cluster_size``, ``initted``) are kept so the
released checkpoint loads with strict key checking, but only ``embed`` and the projections are used.

State-dict layout (what the released checkpoint holds)::

    project_in.{weight,bias}        [codebook_dim, dim]
    project_out.{weight,bias}       [dim, codebook_dim]
    layers.{i}._codebook.embed      [1, codebook_size, codebook_dim]
    layers.{i}._codebook.embed_avg  [1, codebook_size, codebook_dim]
    layers.{i}._codebook.cluster_size [1, codebook_size]
    layers.{i}._codebook.initted    one element (shape differs between library versions)

Quantisation: ``project_in`` → for each layer the Euclidean nearest codeword of the residual →
subtract it → next layer; the quantised output is ``project_out`` of the sum of chosen codewords.
"""

from __future__ import annotations

import torch
from torch import nn


class EuclideanCodebook(nn.Module):
    """One codebook; ``embed`` holds the codewords."""

    def __init__(self, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.register_buffer("initted", torch.ones((), dtype=torch.bool))
        self.register_buffer("cluster_size", torch.zeros(1, codebook_size))
        self.register_buffer("embed_avg", torch.randn(1, codebook_size, codebook_dim))
        self.register_buffer("embed", torch.randn(1, codebook_size, codebook_dim))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        key = prefix + "initted"
        if key in state_dict and state_dict[key].numel() == 1:  # [1] float in 1.27, () bool in 1.32
            state_dict[key] = state_dict[key].reshape(()).bool()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Indices (…,) of the nearest codeword to each vector of ``x`` (…, codebook_dim), in fp32."""
        embed = self.embed[0].float()
        flat = x.reshape(-1, x.shape[-1]).float()
        dist = flat.pow(2).sum(-1, keepdim=True) - 2 * flat @ embed.t() + embed.pow(2).sum(-1)[None]
        return dist.argmin(-1).reshape(x.shape[:-1])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        return self.embed[0][indices]


class _Layer(nn.Module):
    """Wrapper that gives the codebook its released name ``layers.{i}._codebook``."""

    def __init__(self, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self._codebook = EuclideanCodebook(codebook_size, codebook_dim)


class ResidualVQ(nn.Module):
    """``num_quantizers`` residual codebooks over a projected ``dim``-wide input."""

    def __init__(self, dim: int, codebook_dim: int, codebook_size: int, num_quantizers: int) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.project_in = nn.Linear(dim, codebook_dim)
        self.project_out = nn.Linear(codebook_dim, dim)
        self.layers = nn.ModuleList(_Layer(codebook_size, codebook_dim) for _ in range(num_quantizers))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantise ``x`` (B, T, dim) → (quantised (B, T, dim), codes (B, T, num_quantizers) int64).

        Runs in fp32 even under bf16 autocast, so codes do not depend on the compute precision of
        the projection.
        """
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._quantize(x.float())

    def _quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        residual = self.project_in(x)
        total = torch.zeros_like(residual)
        codes = []
        for layer in self.layers:
            idx = layer._codebook.nearest(residual)
            chosen = layer._codebook.lookup(idx).float()
            residual = residual - chosen
            total = total + chosen
            codes.append(idx)
        return self.project_out(total), torch.stack(codes, dim=-1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, T, num_quantizers) → quantised features (B, T, dim)."""
        if codes.shape[-1] != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} codebooks, got {codes.shape[-1]}")
        if int(codes.max()) >= self.codebook_size or int(codes.min()) < 0:
            raise ValueError(f"code ids must lie in [0, {self.codebook_size}), got "
                             f"[{int(codes.min())}, {int(codes.max())}]")
        total = sum(layer._codebook.lookup(codes[..., i]).float() for i, layer in enumerate(self.layers))
        with torch.autocast(device_type=codes.device.type, enabled=False):
            return self.project_out(total)
