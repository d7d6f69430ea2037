"""Training objective, normalised per scored token, and per-stream metrics.

``L = text_weight · L_text + audio_weight · L_audio [+ aux_weight · L_rec]`` with

- ``L_text = Σ CE(text token) / N_text``: cross-entropy summed over scored text steps;
- ``L_audio = Σ_frames Σ_k w_k · CE_k / N_frames``: the weighted codebook cross-entropies summed over scored
  audio frames (``w = [2,2,2,1,1,1,1,1]/8`` by default, no further division by the number of codebooks;
  docs/model.md says why);
- ``L_rec``: the stage-1 distillation MSE (per feature frame, mean over the feature dimension), averaged over
  the targets that have valid frames, only while the auxiliary decoder exists.

The denominators are *counts* (:func:`scored_counts`, layout :func:`count_names`). By default they are the
batch's own, so ``compute_loss`` is a per-batch mean. A distributed trainer instead sums the counts of every
micro-batch of an optimizer step on every rank (the counts come from the labels alone, before any forward),
all-reduces them and passes them in, so every scored token weighs the same however the tokens fall on ranks
and accumulation steps (see :func:`compute_loss` for the scaling DeepSpeed needs).

Metrics (detached 0-dim tensors) give loss, accuracy and scored count for text and for each codebook of
reasoning frames (target id < reason_card) and reconstruction frames, e.g. ``reason_cb0_acc``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from uniaudio.core.token_space import AudioTokens
from uniaudio.model.config import AuxDecoderConfig, LossConfig
from uniaudio.model.network import TrainOutput
from uniaudio.model.sequence import IGNORE, Batch


@dataclass
class LossOutput:
    """The weighted total (to backpropagate), its parts (each its sum over the batch divided by the count in
    use), the raw ``sums`` and the ``counts`` they were divided by (layout :func:`count_names`; the batch's
    own counts are in ``metrics``), and detached metrics."""

    total: Tensor
    text: Tensor
    audio: Tensor
    aux: Tensor | None = None
    sums: Tensor | None = None
    counts: Tensor | None = None
    metrics: dict[str, Tensor] = field(default_factory=dict)


def count_names(aux: AuxDecoderConfig | None) -> list[str]:
    """What each entry of :func:`scored_counts` counts: ``text`` tokens, ``audio`` frames, then the valid
    feature frames of each distillation target (``aux_<name>``) when the auxiliary decoder exists."""
    return ["text", "audio", *(f"aux_{t.name}" for t in (aux.targets if aux is not None else ()))]


def scored_counts(batch: Batch, aux: AuxDecoderConfig | None) -> Tensor:
    """Scored units of ``batch`` (float32 (len(count_names),), on the batch's device), from labels and
    distillation masks only: the trainer sums them over micro-batches and ranks before the forward passes."""
    counts = [(batch.labels[..., -1] != IGNORE).sum(), (batch.labels[..., :-1] != IGNORE).any(-1).sum()]
    for t in aux.targets if aux is not None else ():
        valid = batch.distill_valid.get(t.name)
        counts.append(valid.sum() if valid is not None else batch.labels.new_zeros(()))
    return torch.stack(counts).float()


def frame_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy per frame and codebook (N, n_codebooks); 0 where the target is -100."""
    n, k, v = logits.shape
    return F.cross_entropy(logits.float().reshape(n * k, v), targets.reshape(n * k), ignore_index=IGNORE,
                           reduction="none").view(n, k)


def audio_loss_sum(ce: Tensor, weights: tuple[float, ...]) -> Tensor:
    """``Σ_frames Σ_k weights[k] · CE[n, k]`` for per-frame cross-entropies (N, n_codebooks) (0 where not
    scored, as :func:`frame_cross_entropy` gives)."""
    if ce.shape[1] != len(weights):
        raise ValueError(f"audio_loss_sum: {ce.shape[1]} codebooks but {len(weights)} weights")
    return (ce.sum(dim=0) * torch.tensor(weights, dtype=ce.dtype, device=ce.device)).sum()


def distillation_sums(out: TrainOutput) -> Tensor:
    """Per target: squared error summed over valid feature frames, averaged over the feature dimension
    ((n_targets,), in ``out.aux`` order)."""
    sums = []
    for name, pred in out.aux.items():
        m = out.aux_valid[name].unsqueeze(-1).to(torch.float32)
        err = (pred.float() - out.aux_targets[name].float()) ** 2
        sums.append((err * m).sum() / pred.shape[-1])
    return torch.stack(sums)


def compute_loss(out: TrainOutput, batch: Batch, config: LossConfig, audio: AudioTokens,
                 counts: Tensor | None = None) -> LossOutput:
    """The training objective (module docstring) of ``out`` for ``batch``.

    ``counts`` (layout :func:`count_names` of the model's auxiliary decoder) are the denominators; ``None``
    uses the batch's own (:func:`scored_counts`), a per-batch mean. Under DeepSpeed, which averages gradients
    over the W ranks and divides the loss by the A accumulation steps, pass the global sum over the step's
    micro-batches and ranks divided by ``W · A``: the step's gradient is then that of
    ``Σ sums / Σ counts``. A zero count contributes 0 (never NaN).
    """
    ce = frame_cross_entropy(out.audio_logits, out.audio_targets)
    text_sum = F.cross_entropy(out.text_logits.float(), out.text_targets, reduction="sum")
    parts = [text_sum, audio_loss_sum(ce, config.codebook_weights)]
    if out.aux:
        parts.extend(distillation_sums(out))
    sums = torch.stack(parts)
    aux_names = list(out.aux)
    local = _local_counts(out)
    if counts is None:
        counts = local
    elif counts.shape != sums.shape:
        raise ValueError(f"compute_loss: counts has shape {tuple(counts.shape)}, expected {tuple(sums.shape)} "
                         f"(text, audio{''.join(', aux_' + n for n in aux_names)})")
    counts = counts.to(sums.device, sums.dtype)
    means = sums / counts.clamp(min=1)
    lt, la = means[0], means[1]
    total = config.text_weight * lt + config.audio_weight * la
    aux = None
    if out.aux:
        present = (counts[2:] > 0).to(sums.dtype)
        aux = (means[2:] * present).sum() / present.sum().clamp(min=1)
        total = total + config.aux_weight * aux
    metrics = stream_metrics(out, audio, ce.detach())
    metrics.update(loss=total.detach(), text_loss=lt.detach(), audio_loss=la.detach(),
                   audio_count=local[1].detach())
    if aux is not None:
        metrics["aux_loss"] = aux.detach()
    return LossOutput(total=total, text=lt, audio=la, aux=aux, sums=sums.detach(), counts=counts.detach(),
                      metrics=metrics)


def _local_counts(out: TrainOutput) -> Tensor:
    """The counts of ``out`` itself (equal to :func:`scored_counts` of its batch)."""
    counts = [out.text_targets.new_tensor(out.text_targets.numel()),
              (out.audio_targets != IGNORE).any(-1).sum()]
    counts.extend(out.aux_valid[name].sum() for name in out.aux)
    return torch.stack(counts).float()


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
