"""Model FLOPs of a training step, from the real architecture (for tokens/s → MFU).

Counted as matmul FLOPs × 3 (forward + backward, the usual ``6 N`` convention, also for frozen groups):

- the three sequence stacks (understanding, cross-modal, generation) at every real step: their linear layers
  (``2 · params`` per token forward) and attention (``4 · d_model`` per attended query-key pair forward, pairs
  counted block-causally: a sample of n steps attends n(n+1)/2 pairs);
- the LM head at every scored text step;
- the local decoder at every scored audio frame: ``n_codebooks`` positions through ``local_projection``, its
  layers (causal over those positions) and that codebook's slice of ``audio_head``;
- the stage-1 auxiliary decoder at every distillation position.

Embedding lookups are not counted, nor padding (it is wasted work; see ``packing_efficiency``), nor the one
unscored frame a text-only batch runs through the local decoder to keep ranks in step.
MFU = FLOPs per step / step time / peak FLOP/s of the devices.
"""

from __future__ import annotations

from uniaudio.model.config import StackConfig, UniAudioConfig
from uniaudio.model.sequence import IGNORE, Batch


def stack_forward_flops(cfg: StackConfig, tokens: float, attended_pairs: float) -> float:
    """Forward FLOPs of a stack over ``tokens`` positions attending ``attended_pairs`` query-key pairs."""
    d, kv = cfg.d_model, cfg.n_kv_heads * cfg.head_dim
    params = cfg.n_layers * (2 * d * d + 2 * d * kv + 3 * d * cfg.d_ff)
    return 2 * params * tokens + 4 * cfg.n_layers * d * attended_pairs


def training_flops(config: UniAudioConfig, tokens: float, attended_pairs: float, text_targets: float,
                   audio_frames: float, distill_positions: float = 0.0) -> float:
    """Forward + backward FLOPs of one training pass over ``tokens`` real steps attending ``attended_pairs``
    pairs in each sequence stack, with ``text_targets`` scored text steps, ``audio_frames`` scored audio
    frames and ``distill_positions`` auxiliary-decoder positions (module docstring)."""
    d = config.cross_modal.d_model
    a = config.tokens.audio
    local = config.local_decoder
    fwd = sum(stack_forward_flops(s, tokens, attended_pairs)
              for s in (config.understanding, config.cross_modal, config.generation))
    fwd += 2 * d * config.text_vocab_size * text_targets
    k = a.n_codebooks
    per_frame = stack_forward_flops(local, k, k * (k + 1) / 2) + 2 * k * (d * local.d_model + local.d_model * a.card)
    fwd += per_frame * audio_frames
    if config.aux_decoder is not None:
        aux = config.aux_decoder
        fwd += 2 * sum(d * aux.hidden + aux.hidden * t.frames_per_token * t.dim for t in aux.targets) \
            * distill_positions
    return 3 * fwd


def batch_flops(config: UniAudioConfig, batch: Batch) -> float:
    """:func:`training_flops` of ``batch`` (packed or not), counted from its document ids and labels."""
    docs = batch.document_ids
    pairs = 0.0
    for row in docs:
        lengths = row[row >= 0].bincount().double()
        pairs += float((lengths * (lengths + 1) / 2).sum())
    return training_flops(
        config, tokens=float((docs >= 0).sum()), attended_pairs=pairs,
        text_targets=float((batch.labels[..., -1] != IGNORE).sum()),
        audio_frames=float((batch.labels[..., :-1] != IGNORE).any(-1).sum()),
        distill_positions=float(len(batch.distill_positions)),
    )


def flops_per_token(config: UniAudioConfig, context_len: int, text_fraction: float,
                    audio_fraction: float) -> float:
    """Planning figure: training FLOPs per token of rows that are one causal sequence of ``context_len``
    steps, ``text_fraction`` of the steps scored text and ``audio_fraction`` scored audio frames."""
    if context_len < 1 or not 0 <= text_fraction <= 1 or not 0 <= audio_fraction <= 1:
        raise ValueError(f"flops_per_token: need context_len >= 1 and fractions in [0, 1], got {context_len}, "
                         f"{text_fraction}, {audio_fraction}")
    return training_flops(config, 1.0, (context_len + 1) / 2, text_fraction, audio_fraction)
