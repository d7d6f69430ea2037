"""The UniAudio 2.0 model.

- :mod:`~uniaudio.core.token_space`: special ids and cards (one config);
- :mod:`~uniaudio.model.config`: validated model config and the ``tiny``/``1b``/``3b`` presets;
- :mod:`~uniaudio.model.sequence`: segments ⇄ (T, 9) token tensors, labels, batches (packed or not);
- :mod:`~uniaudio.model.packing`: which samples share a row of the context length;
- :mod:`~uniaudio.model.attention`: block-causal masks for SDPA and flex attention;
- :mod:`~uniaudio.model.stack`, :mod:`~uniaudio.model.network`: the LLaMA stacks and the network;
- :mod:`~uniaudio.model.aux_decoder`, :mod:`~uniaudio.model.losses`: objectives and metrics;
- :mod:`~uniaudio.model.flops`: training FLOPs from the architecture (MFU);
- :mod:`~uniaudio.model.checkpoint`, :mod:`~uniaudio.model.llama_init`, :mod:`~uniaudio.model.official`:
  checkpoint format, LLaMA initialisation, released-checkpoint interchange;
- :mod:`~uniaudio.model.generation`: KV-cached text and audio generation.
"""
