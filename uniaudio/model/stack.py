"""A stack of ``transformers`` LLaMA decoder layers with its own RoPE and final RMSNorm.

Every transformer of the model is one :class:`LlamaStack` (the released litgpt ``GPT`` with ``wte`` and
``lm_head`` removed): it maps embeddings (B, T, D) to post-norm hidden states (B, T, D). Positions are
either given (packed training rows: RoPE restarts at 0 for every sample, the block-causal mask comes from
:mod:`uniaudio.model.attention`) or numbered from the length of its KV cache, so each module runs RoPE on
its own positions 0..T-1.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn
from torch.nn.attention.flex_attention import BlockMask
from torch.utils.checkpoint import checkpoint
from transformers import DynamicCache
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRMSNorm, LlamaRotaryEmbedding

from uniaudio.model.attention import FLEX_IMPLEMENTATION, AttentionKind, check_attention_kind, decoding_mask
from uniaudio.model.config import StackConfig


class LlamaStack(nn.Module):
    """``layers`` (LlamaDecoderLayer) → ``norm``; ``rotary_emb`` holds no weights."""

    def __init__(self, config: StackConfig) -> None:
        super().__init__()
        self.config = config
        self.llama_config = config.to_llama_config()
        self.layers = nn.ModuleList(LlamaDecoderLayer(self.llama_config, i) for i in range(config.n_layers))
        self.norm = LlamaRMSNorm(config.d_model, eps=config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(self.llama_config)

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Recompute each layer's activations in backward (non-reentrant) while training."""
        for layer in self.layers:
            layer.gradient_checkpointing = enabled
            layer._gradient_checkpointing_func = partial(checkpoint, use_reentrant=False)

    def set_attention(self, kind: AttentionKind) -> None:
        """``sdpa`` or ``flex`` (see :mod:`uniaudio.model.attention`); the layers share ``llama_config``."""
        check_attention_kind(kind)
        self.llama_config._attn_implementation = FLEX_IMPLEMENTATION if kind == "flex" else "sdpa"

    def new_cache(self) -> DynamicCache:
        """An empty KV cache for incremental decoding through this stack."""
        return DynamicCache(config=self.llama_config)

    def forward(self, x: Tensor, cache: DynamicCache | None = None, positions: Tensor | None = None,
                mask: Tensor | BlockMask | None = None) -> Tensor:
        """Self-attention over ``x`` (B, T, D). Either ``positions`` (B, T) with the ``mask`` that goes with
        them (a packed row, no cache), or causal attention numbered after ``cache`` (appended to when given)."""
        if positions is None:
            past = cache.get_seq_length() if cache is not None else 0
            positions = torch.arange(past, past + x.shape[1], device=x.device).unsqueeze(0)
            mask = decoding_mask(x.shape[1], past, x.device)
        elif cache is not None:
            raise ValueError("LlamaStack: explicit positions (packed rows) cannot extend a KV cache")
        rope = self.rotary_emb(x, positions)
        for layer in self.layers:
            x = layer(x, attention_mask=mask, position_embeddings=rope, position_ids=positions,
                      cache=cache, use_cache=cache is not None)
        return self.norm(x)
