"""Training objective and per-stream metrics.

``L = text_weight · L_text + audio_weight · L_audio [+ aux_weight · L_rec]`` with

- ``L_text``: mean cross-entropy over scored text steps;
- ``L_audio = Σ_k w_k · CE_k``: CE_k is the mean cross-entropy of codebook k over the scored frames
  (``w = [2,2,2,1,1,1,1,1]/8`` by default);
- ``L_rec``: the stage-1 distillation MSE, only while the auxiliary decoder exists.

Metrics (detached 0-dim tensors) give loss, accuracy and scored count for text and for each codebook of
reasoning frames (target id < reason_card) and reconstruction frames, e.g. ``reason_cb0_acc``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from uniaudio.core.token_space import AudioTokens
from uniaudio.model.aux_decoder import distillation_loss
from uniaudio.model.config import LossConfig
from uniaudio.model.network import TrainOutput
from uniaudio.model.sequence import IGNORE, Batch


@dataclass
class LossOutput:
    """The weighted total (to backpropagate), its parts, and detached metrics."""

    total: Tensor
    text: Tensor
    audio: Tensor
    aux: Tensor | None = None
    metrics: dict[str, Tensor] = field(default_factory=dict)


def text_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over (N, vocab) logits; 0 (with grad) when N = 0."""
    if targets.numel() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), targets)


def frame_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy per frame and codebook (N, n_codebooks); 0 where the target is -100."""
    n, k, v = logits.shape
    return F.cross_entropy(logits.float().reshape(n * k, v), targets.reshape(n * k), ignore_index=IGNORE,
                           reduction="none").view(n, k)


def audio_loss(logits: Tensor, targets: Tensor, weights: tuple[float, ...],
               ce: Tensor | None = None) -> Tensor:
    """``Σ_k weights[k] · CE_k`` for logits (N, n_codebooks, V) and targets (N, n_codebooks), CE_k the mean
    over scored frames (``ce``: a precomputed :func:`frame_cross_entropy`)."""
    if logits.shape[1] != len(weights):
        raise ValueError(f"audio_loss: {logits.shape[1]} codebooks but {len(weights)} weights")
    ce = frame_cross_entropy(logits, targets) if ce is None else ce
    valid = (targets != IGNORE).to(ce.dtype)
    per_codebook = (ce * valid).sum(dim=0) / valid.sum(dim=0).clamp(min=1)
    return (per_codebook * torch.tensor(weights, dtype=ce.dtype, device=ce.device)).sum()


def compute_loss(out: TrainOutput, batch: Batch, config: LossConfig, audio: AudioTokens) -> LossOutput:
    """The training objective of :class:`TrainOutput` for ``batch`` (see the module docstring)."""
    lt = text_loss(out.text_logits, out.text_targets)
    ce = frame_cross_entropy(out.audio_logits, out.audio_targets)
    la = audio_loss(out.audio_logits, out.audio_targets, config.codebook_weights, ce)
    total = config.text_weight * lt + config.audio_weight * la
    aux = None
    if out.aux:
        aux = distillation_loss(out.aux, batch.distill_targets, batch.distill_valid)
        total = total + config.aux_weight * aux
    metrics = stream_metrics(out, audio, ce.detach())
    metrics.update(loss=total.detach(), text_loss=lt.detach(), audio_loss=la.detach())
    if aux is not None:
        metrics["aux_loss"] = aux.detach()
    return LossOutput(total=total, text=lt, audio=la, aux=aux, metrics=metrics)


@torch.no_grad()
def stream_metrics(out: TrainOutput, audio: AudioTokens, ce: Tensor) -> dict[str, Tensor]:
    """Loss, accuracy and count per stream: ``text_*``, ``reason_cb{k}_*``, ``recon_cb{k}_*`` (every key
    always present, 0 where nothing was scored; no host synchronisation). ``ce``: the frames' cross-entropy."""
    n_text = out.text_targets.new_tensor(float(out.text_targets.numel()), dtype=torch.float32)
    text_hits = (out.text_logits.argmax(-1) == out.text_targets).float().sum()
    metrics = {"text_count": n_text, "text_acc": text_hits / n_text.clamp(min=1)}
    targets = out.audio_targets
    correct = (out.audio_logits.argmax(-1) == targets).float()
    scored = targets != IGNORE
    for kind, sel in (("reason", scored & (targets < audio.reason_card)),
                      ("recon", scored & (targets >= audio.reason_card))):
        w = sel.float()
        count = w.sum(dim=0)
        loss = (ce * w).sum(dim=0) / count.clamp(min=1)
        acc = (correct * w).sum(dim=0) / count.clamp(min=1)
        for cb in range(targets.shape[1]):
            metrics[f"{kind}_cb{cb}_count"] = count[cb]
            metrics[f"{kind}_cb{cb}_loss"] = loss[cb]
            metrics[f"{kind}_cb{cb}_acc"] = acc[cb]
    return metrics
