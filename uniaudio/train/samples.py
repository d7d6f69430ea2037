"""Sentence-store samples as the trainer sees them, and their training sequences.

:class:`StoreSample` is one sample of a sentence store (read by :mod:`uniaudio.sentences`' reader, never by
parsing tars here): its key, task and segments in the model's sequence format. :func:`to_sequence` lays it
out with :func:`~uniaudio.model.sequence.build_sequence` and, for a generation sample drawn for CFG dropout,
replaces it by its unconditional copy (:meth:`~uniaudio.model.sequence.TokenSequence.unconditional`).
"""

from __future__ import annotations

from dataclasses import dataclass

from uniaudio.core.token_space import TokenLayout
from uniaudio.model.config import AuxDecoderConfig
from uniaudio.model.sequence import AudioSegment, Segment, TokenSequence, build_sequence


@dataclass(frozen=True, eq=False)
class StoreSample:
    """One stored sample: ``key``, ``task`` (the store's task or strategy name), ``segments`` and
    ``tokens`` (its length in the sequence format, as the store recorded it)."""

    key: str
    task: str
    segments: tuple[Segment, ...]
    tokens: int

    @property
    def is_generation(self) -> bool:
        """Whether an audio segment is scored (TTS, TTA, …): the samples CFG dropout applies to."""
        return any(isinstance(s, AudioSegment) and s.loss for s in self.segments)

    @property
    def has_features(self) -> bool:
        """Whether an audio segment carries distillation features."""
        return any(isinstance(s, AudioSegment) and s.features for s in self.segments)


def to_sequence(sample: StoreSample, layout: TokenLayout, aux: AuxDecoderConfig | None,
                unconditional: bool) -> TokenSequence:
    """The sample's training sequence; ``unconditional`` swaps in the CFG copy (generation samples only)."""
    try:
        seq = build_sequence(sample.segments, layout, aux)
    except ValueError as e:
        raise ValueError(f"sample {sample.key!r}: {e}") from e
    return seq.unconditional(layout) if unconditional and sample.is_generation else seq
