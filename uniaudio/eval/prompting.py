"""Cut a sentence at its first scored segment: the prompt the model continues, and the reference.

A sentence of a task (``asr``: prompt, audio, transcription; ``tts``: prompt, transcription, audio …) holds
exactly what the model is trained to produce as its first segment with ``loss=True``. For evaluation the
sequence is built up to that segment; a text target keeps its opening steps (``<|begin_of_text|>`` and the
role's opening marker), so the model continues with the text itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from uniaudio.core.token_space import TokenLayout
from uniaudio.model.sequence import TextSegment, TokenSequence, build_sequence
from uniaudio.sentences.sentence import Sentence, SentenceSegment

__all__ = ["Cut", "cut_at_target"]


@dataclass
class Cut:
    """The prompt sequence and the target segment it should be continued with."""

    prompt: TokenSequence
    target: SentenceSegment
    index: int
    """Position of ``target`` among the sentence's segments."""

    def follows(self, sentence: Sentence, modality: str) -> bool:
        """Whether a segment of ``modality`` comes before the target."""
        return any(s.modality == modality for s in sentence.segments[: self.index])


def cut_at_target(sentence: Sentence, layout: TokenLayout, modality: str) -> Cut | None:
    """The prompt before the first scored ``modality`` segment, or ``None`` if the sentence has none
    (or nothing precedes it)."""
    index = next((i for i, s in enumerate(sentence.segments) if s.loss and s.modality == modality), None)
    if not index:
        return None
    model_segments = sentence.to_model_segments()
    target = sentence.segments[index]
    if modality == "audio":
        prompt = build_sequence(model_segments[:index], layout)
    else:
        opened = [*model_segments[:index], TextSegment((), role=target.role)]
        full = build_sequence(opened, layout)
        closing = 2 if layout.text.marker_ids(target.role) is not None else 1
        keep = len(full) - closing
        prompt = TokenSequence(full.tokens[:keep], full.stream_mask[:keep], full.loss_mask[:keep],
                               [s for s in full.spans if s.end <= keep])
    return Cut(prompt, target, index)
