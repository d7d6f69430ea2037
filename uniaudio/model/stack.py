"""A stack of ``transformers`` LLaMA decoder layers with its own RoPE and final RMSNorm.

Every transformer of the model is one :class:`LlamaStack` (the released litgpt ``GPT`` with ``wte`` and
``lm_head`` removed): it maps embeddings (B, T, D) to post-norm hidden states (B, T, D), numbering
positions from the length of its KV cache, so each module runs RoPE on its own positions 0..T-1.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from transformers import DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRMSNorm, LlamaRotaryEmbedding

from uniaudio.model.config import StackConfig


class LlamaStack(nn.Module):
    """``layers`` (LlamaDecoderLayer, SDPA attention) → ``norm``; ``rotary_emb`` holds no weights."""

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

    def new_cache(self) -> DynamicCache:
        """An empty KV cache for incremental decoding through this stack."""
        return DynamicCache(config=self.llama_config)

    def forward(self, x: Tensor, cache: DynamicCache | None = None) -> Tensor:
        """Causal self-attention over ``x`` (B, T, D), appending to ``cache`` when given."""
        past = cache.get_seq_length() if cache is not None else 0
        positions = torch.arange(past, past + x.shape[1], device=x.device).unsqueeze(0)
        mask = create_causal_mask(config=self.llama_config, inputs_embeds=x, attention_mask=None,
                                  cache=cache, position_ids=positions)
        rope = self.rotary_emb(x, positions)
        for layer in self.layers:
            x = layer(x, attention_mask=mask, position_embeddings=rope, position_ids=positions,
                      cache=cache, use_cache=cache is not None)
        return self.norm(x)
