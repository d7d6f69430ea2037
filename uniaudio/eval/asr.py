"""ASR (and lyric recognition) with the model: decode the transcript after the audio, score WER and CER.

Each sentence with a scored text segment after its audio (``asr``, ``lyric-recognition``, ``speech-caption``
…) is cut before that segment (:mod:`uniaudio.eval.prompting`); the model decodes greedily until
``<|end_of_text|>``; the role's closing marker, if produced, ends the hypothesis. Scores are corpus-level
WER and CER from ``jiwer`` over all pairs, with both sides lower-cased and whitespace-normalised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jiwer

from uniaudio.eval.prompting import cut_at_target
from uniaudio.model.generation import Sampling, generate_text
from uniaudio.model.network import UniAudioModel
from uniaudio.sentences.sentence import Sentence
from uniaudio.tokenize.text_tokenizer import TextTokenizer

__all__ = ["AsrPair", "AsrResult", "normalise", "score_pairs", "transcribe"]

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text.lower()).strip()


@dataclass
class AsrPair:
    key: str
    reference: str
    hypothesis: str


@dataclass
class AsrResult:
    pairs: list[AsrPair] = field(default_factory=list)
    skipped: int = 0

    def add(self, other: AsrResult) -> None:
        self.pairs += other.pairs
        self.skipped += other.skipped

    def to_dict(self, examples: int = 5) -> dict[str, Any]:
        return {**score_pairs(self.pairs), "skipped": self.skipped,
                "examples": [vars(p) for p in self.pairs[:examples]]}


def score_pairs(pairs: list[AsrPair]) -> dict[str, Any]:
    """Corpus WER and CER over ``pairs`` (``nan`` when there is nothing to score)."""
    refs = [normalise(p.reference) for p in pairs]
    hyps = [normalise(p.hypothesis) for p in pairs]
    keep = [i for i, r in enumerate(refs) if r]
    if not keep:
        return {"utterances": 0, "wer": float("nan"), "cer": float("nan")}
    refs, hyps = [refs[i] for i in keep], [hyps[i] for i in keep]
    return {"utterances": len(keep), "wer": float(jiwer.wer(refs, hyps)), "cer": float(jiwer.cer(refs, hyps))}


def transcribe(model: UniAudioModel, sentences: Iterable[Sentence], tokenizer: TextTokenizer,
               max_new_tokens: int = 128) -> AsrResult:
    """Greedy transcripts of every sentence whose first scored text segment follows audio."""
    model.eval()
    layout = model.config.tokens
    result = AsrResult()
    for sentence in sentences:
        cut = cut_at_target(sentence, layout, "text")
        if cut is None or not cut.follows(sentence, "audio"):
            result.skipped += 1
            continue
        ids = generate_text(model, cut.prompt, max_new_tokens=max_new_tokens, sampling=Sampling(temperature=0.0)).ids
        markers = layout.text.marker_ids(cut.target.role)
        if markers is not None and markers[1] in ids:
            ids = ids[: ids.index(markers[1])]
        ids = [i for i in ids if i < layout.text.special_base]
        result.pairs.append(AsrPair(sentence.key, cut.target.text or "", tokenizer.decode(ids)))
    return result
