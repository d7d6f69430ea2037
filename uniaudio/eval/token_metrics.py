"""Teacher-forced token metrics: perplexity and accuracy per stream over a sentence store.

Every scored step of the sequence format counts once: text steps for the text stream, and for audio
frames each codebook *k* of the reasoning stream (targets below ``reason_card``) and of the
reconstruction stream. Perplexity is ``exp(Σ CE / N)`` of a stream, accuracy the fraction of argmax hits.
Totals are plain sums, so shards evaluated on different workers add up exactly (:meth:`TokenTotals.add`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from uniaudio.model.losses import frame_cross_entropy
from uniaudio.model.network import UniAudioModel
from uniaudio.model.sequence import IGNORE, build_sequence, collate
from uniaudio.sentences.sentence import Sentence

__all__ = ["StreamTotals", "TokenTotals", "evaluate_tokens", "score_batch"]


@dataclass
class StreamTotals:
    """Summed cross-entropy (nats), argmax hits and scored count of one stream or codebook."""

    ce: float = 0.0
    correct: float = 0.0
    count: float = 0.0

    def add(self, other: StreamTotals) -> None:
        self.ce += other.ce
        self.correct += other.correct
        self.count += other.count

    @property
    def perplexity(self) -> float:
        return math.exp(self.ce / self.count) if self.count else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")


@dataclass
class TokenTotals:
    """Totals for text and for each codebook of the two audio streams, plus sentences seen."""

    n_codebooks: int = 8
    sentences: int = 0
    text: StreamTotals = field(default_factory=StreamTotals)
    reason: list[StreamTotals] = field(default_factory=list)
    recon: list[StreamTotals] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reason = self.reason or [StreamTotals() for _ in range(self.n_codebooks)]
        self.recon = self.recon or [StreamTotals() for _ in range(self.n_codebooks)]

    def add(self, other: TokenTotals) -> None:
        self.sentences += other.sentences
        self.text.add(other.text)
        for mine, theirs in zip(self.reason + self.recon, other.reason + other.recon, strict=True):
            mine.add(theirs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able sums (for merging) and the derived perplexity/accuracy per stream and codebook."""

        def one(s: StreamTotals) -> dict[str, float]:
            return {"ce_sum": s.ce, "correct": s.correct, "count": s.count,
                    "perplexity": s.perplexity, "accuracy": s.accuracy}

        def pooled(streams: list[StreamTotals]) -> StreamTotals:
            total = StreamTotals()
            for s in streams:
                total.add(s)
            return total

        return {
            "sentences": self.sentences,
            "text": one(self.text),
            "reason": {"all": one(pooled(self.reason)), "codebooks": [one(s) for s in self.reason]},
            "recon": {"all": one(pooled(self.recon)), "codebooks": [one(s) for s in self.recon]},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenTotals:
        def one(d: dict[str, float]) -> StreamTotals:
            return StreamTotals(d["ce_sum"], d["correct"], d["count"])

        return cls(n_codebooks=len(data["reason"]["codebooks"]), sentences=int(data["sentences"]),
                   text=one(data["text"]), reason=[one(d) for d in data["reason"]["codebooks"]],
                   recon=[one(d) for d in data["recon"]["codebooks"]])


@torch.no_grad()
def score_batch(model: UniAudioModel, sequences: list) -> TokenTotals:
    """Totals of one batch of :class:`~uniaudio.model.sequence.TokenSequence` (teacher forcing)."""
    a = model.config.tokens.audio
    device = model.audio_head.weight.device
    batch = collate(sequences).to(device)
    out = model(batch)
    totals = TokenTotals(n_codebooks=a.n_codebooks, sentences=len(sequences))
    if out.text_targets.numel():
        logits = out.text_logits.float()
        totals.text = StreamTotals(
            float(F.cross_entropy(logits, out.text_targets, reduction="sum")),
            float((logits.argmax(-1) == out.text_targets).sum()), float(out.text_targets.numel()))
    targets = out.audio_targets
    if targets.numel():
        ce = frame_cross_entropy(out.audio_logits, targets)
        hits = (out.audio_logits.argmax(-1) == targets).float()
        scored = targets != IGNORE
        for streams, sel in ((totals.reason, scored & (targets < a.reason_card)),
                             (totals.recon, scored & (targets >= a.reason_card))):
            w = sel.float()
            for k in range(a.n_codebooks):
                streams[k] = StreamTotals(float((ce[:, k] * w[:, k]).sum()), float((hits[:, k] * w[:, k]).sum()),
                                          float(w[:, k].sum()))
    return totals


def _batches(sentences: Iterable[Sentence], model: UniAudioModel, batch_size: int,
             max_tokens: int | None) -> Iterator[list]:
    layout = model.config.tokens
    batch: list = []
    for sentence in sentences:
        seq = build_sequence(sentence.to_model_segments(), layout)
        if max_tokens is not None and len(seq) > max_tokens:
            continue
        batch.append(seq)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def evaluate_tokens(model: UniAudioModel, sentences: Iterable[Sentence], batch_size: int = 8,
                    max_tokens: int | None = None) -> TokenTotals:
    """Teacher-forced totals of ``sentences`` (sentences longer than ``max_tokens`` are skipped)."""
    model.eval()
    totals = TokenTotals(n_codebooks=model.config.tokens.audio.n_codebooks)
    for batch in _batches(sentences, model, batch_size, max_tokens):
        totals.add(score_batch(model, batch))
    return totals
