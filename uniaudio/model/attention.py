"""Attention masks of the sequence stacks: causal decoding, and block-causal packed training rows.

A packed row holds several samples; ``document_ids`` (B, T) numbers them (0, 1, … within the row, -1 on
padding) and a query may attend to a key only when both carry the same id and the key is not later:
``allowed[b, q, k] = doc[b, q] == doc[b, k] and k <= q``. Padding is one more "document", so every padded
query attends at least to itself and no row is fully masked (no NaN), while real samples never see it.

Two kernels, chosen by :data:`ATTENTION_KINDS` (``UniAudioModel.set_attention``):

- ``sdpa`` (default, CPU and GPU): a boolean (B, 1, T, T) mask for ``scaled_dot_product_attention``; it
  materialises T×T and keeps SDPA off its flash kernel.
- ``flex`` (GPU): ``torch.nn.attention.flex_attention`` with a :class:`BlockMask` built from the document
  ids, compiled on CUDA, so fully masked blocks are skipped and no T×T score matrix is stored. On CPU flex
  attention runs its eager reference implementation, forward only (PyTorch has no CPU backward), which is
  enough to check the mask but not to train.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import torch
from torch import Tensor
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

AttentionKind = Literal["sdpa", "flex"]
ATTENTION_KINDS: tuple[str, ...] = ("sdpa", "flex")
FLEX_IMPLEMENTATION = "uniaudio_flex"
"""The ``transformers`` attention implementation name under which :func:`flex_or_sdpa_attention` is registered."""


def check_attention_kind(kind: str) -> AttentionKind:
    """``kind`` if it is one of :data:`ATTENTION_KINDS`, else ``ValueError`` naming the choices."""
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"unknown attention kind {kind!r}; choose one of {list(ATTENTION_KINDS)}")
    return kind  # type: ignore[return-value]


def document_mask(document_ids: Tensor) -> Tensor:
    """Boolean block-causal mask (B, 1, T, T) for SDPA: True where query q may attend to key k."""
    t = document_ids.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=document_ids.device).tril()
    same = document_ids[:, :, None] == document_ids[:, None, :]
    return (same & causal).unsqueeze(1)


def document_block_mask(document_ids: Tensor) -> BlockMask:
    """The same block-causal pattern as a flex-attention :class:`BlockMask` (no T×T scores at run time)."""
    b, t = document_ids.shape

    def mask_mod(batch: Tensor, head: Tensor, q: Tensor, k: Tensor) -> Tensor:
        return (document_ids[batch, q] == document_ids[batch, k]) & (k <= q)

    # compiled on CUDA so the mask is built block by block, not through (B, T, T) index tensors
    return create_block_mask(mask_mod, b, None, t, t, device=document_ids.device, _compile=document_ids.is_cuda)


def packed_mask(document_ids: Tensor, kind: AttentionKind) -> Tensor | BlockMask:
    """The mask object the stacks' attention expects for ``kind`` (built once per batch, shared by the three
    sequence stacks, which all run over the same T steps)."""
    return document_block_mask(document_ids) if kind == "flex" else document_mask(document_ids)


def decoding_mask(n_new: int, n_past: int, device: torch.device) -> Tensor | None:
    """Mask for ``n_new`` steps appended after ``n_past`` cached ones: ``None`` where SDPA's own handling is
    exact (a fresh causal prefill, or one new step that sees everything), else a (1, 1, n_new, n_past +
    n_new) boolean causal mask."""
    if n_past == 0 or n_new == 1:
        return None
    q = torch.arange(n_new, device=device)[:, None] + n_past
    k = torch.arange(n_past + n_new, device=device)[None, :]
    return (k <= q)[None, None]


@cache
def _compiled_flex():  # noqa: ANN202 - torch.compile returns an untyped callable
    return torch.compile(flex_attention)


def flex_or_sdpa_attention(module: torch.nn.Module, query: Tensor, key: Tensor, value: Tensor,
                           attention_mask: Tensor | BlockMask | None, scaling: float | None = None,
                           dropout: float = 0.0, **kwargs: object) -> tuple[Tensor, None]:
    """``transformers`` attention function: flex attention for a :class:`BlockMask` (compiled on CUDA),
    otherwise SDPA (decoding with a KV cache, or an explicit boolean mask). Returns (B, T, H, head_dim)."""
    if not isinstance(attention_mask, BlockMask):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    if dropout:
        raise ValueError("flex attention: attention dropout is not supported")
    fn = _compiled_flex() if query.is_cuda else flex_attention
    out = fn(query, key, value, block_mask=attention_mask, scale=scaling,
             enable_gqa=query.shape[1] != key.shape[1])
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(FLEX_IMPLEMENTATION, flex_or_sdpa_attention)
