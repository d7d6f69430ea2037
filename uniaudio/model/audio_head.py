"""The local decoder's output projections: one (d_local, V) matrix per codebook.

A submodule (not a bare parameter of the root module) so that its weight is used only inside its own
``forward``: DeepSpeed ZeRO-3 gathers a module's partitioned parameters around that module's forward and
backward, and a parameter of the root module used from a helper method would reach autograd as its empty
partition. The state-dict key is ``audio_head.weight`` (K, d_local, V); the released checkpoint's
``audio_head`` maps to it (:mod:`uniaudio.model.official`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AudioHead(nn.Module):
    """``weight`` (n_codebooks, d_model, card): codebook k's logits are ``state @ weight[k]``."""

    def __init__(self, n_codebooks: int, d_model: int, card: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_codebooks, d_model, card))

    def forward(self, states: Tensor, codebook: int | None = None) -> Tensor:
        """``states`` (N, n_codebooks, d) → logits (N, n_codebooks, V), each position through its own
        codebook's matrix; or, with ``codebook`` k, states (N, d) → logits (N, V) of codebook k alone."""
        if codebook is None:
            return torch.einsum("nkd,kdv->nkv", states, self.weight)
        return states @ self.weight[codebook]
