"""TTS-style generation (``tts``, ``tta``, ``ttm``, ``instruct-tts``, ``lyric-to-song``): what can be scored offline.

Each sentence with a scored audio segment after text is cut before it (:mod:`uniaudio.eval.prompting`); the
model generates reasoning then reconstruction frames (:func:`uniaudio.model.generation.generate_audio`, at
most twice the reference's frames plus 10). Reported per corpus:

- ``stop_rate``: fraction of generations that ended with the reconstruction EOS frame;
- ``valid_rate``: fraction that stopped, hold at least one reasoning and one reconstruction frame, and
  whose codes are all inside the codebooks;
- ``duration_ratio``: mean of generated / reference duration (reconstruction frames at 12.5 Hz);
- with a codec (``decoder``), the generated reconstruction tokens are decoded to 24 kHz audio, written
  as wav files when asked, and ``decoded_seconds`` is summed;
- with an external ASR as well (``asr``, :mod:`uniaudio.eval.external_asr`), the decoded audio of every
  sentence whose audio follows words to be said (a ``transcription`` or ``lyric`` segment) is
  transcribed, and ``asr`` holds the corpus WER/CER against those words (:func:`~.asr.score_pairs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from uniaudio.eval.asr import AsrPair, score_pairs
from uniaudio.eval.external_asr import SCORED_ROLES, ExternalAsr
from uniaudio.eval.prompting import cut_at_target
from uniaudio.model.generation import Sampling, generate_audio
from uniaudio.model.network import UniAudioModel
from uniaudio.sentences.sentence import Sentence

__all__ = ["TtsItem", "TtsResult", "generate"]

RECON_HZ = 12.5
CODEC_RATE = 24_000


@dataclass
class TtsItem:
    key: str
    reference_s: float
    generated_s: float
    stopped: bool
    valid: bool
    decoded_s: float | None = None
    reference_text: str | None = None
    hypothesis: str | None = None


@dataclass
class TtsResult:
    items: list[TtsItem] = field(default_factory=list)
    skipped: int = 0

    def add(self, other: TtsResult) -> None:
        self.items += other.items
        self.skipped += other.skipped

    def asr_pairs(self) -> list[AsrPair]:
        """(words to say, ASR transcript) of every item the external ASR transcribed."""
        return [AsrPair(i.key, i.reference_text, i.hypothesis) for i in self.items
                if i.reference_text is not None and i.hypothesis is not None]

    def to_dict(self) -> dict[str, Any]:
        n = len(self.items)
        ratios = [i.generated_s / i.reference_s for i in self.items if i.reference_s > 0]
        decoded = [i.decoded_s for i in self.items if i.decoded_s is not None]
        return {
            "generations": n, "skipped": self.skipped,
            "stop_rate": sum(i.stopped for i in self.items) / n if n else float("nan"),
            "valid_rate": sum(i.valid for i in self.items) / n if n else float("nan"),
            "duration_ratio": float(np.mean(ratios)) if ratios else float("nan"),
            "decoded_seconds": float(sum(decoded)) if decoded else None,
            **({"asr": score_pairs(pairs)} if (pairs := self.asr_pairs()) else {}),
            "items": [vars(i) for i in self.items],
        }


def _words_to_say(sentence: Sentence, before: int) -> str | None:
    """The last transcription/lyric text before segment ``before`` (what the generated audio should say)."""
    said = [s.text for s in sentence.segments[:before] if s.modality == "text" and s.role in SCORED_ROLES]
    return said[-1] if said else None


def generate(model: UniAudioModel, sentences: Iterable[Sentence], seed: int = 0, cfg_scale: float = 1.0,
             decoder: Callable[[str, np.ndarray], np.ndarray] | None = None,
             asr: ExternalAsr | None = None) -> TtsResult:
    """Generate audio for every sentence whose first scored audio segment follows text.

    ``decoder(key, recon)`` (optional) decodes uint16 (8, T) reconstruction codes into a 24 kHz waveform;
    ``asr`` (optional, needs ``decoder``) transcribes it when the sentence has words to be said.
    """
    if asr is not None and decoder is None:
        raise ValueError("scoring generated speech with an ASR model needs a codec to decode it")
    model.eval()
    a = model.config.tokens.audio
    result = TtsResult()
    generator = torch.Generator(device=model.audio_head.weight.device).manual_seed(seed)
    for sentence in sentences:
        cut = cut_at_target(sentence, model.config.tokens, "audio")
        if cut is None or not cut.follows(sentence, "text"):
            result.skipped += 1
            continue
        ref = cut.target
        budget = 2 * (ref.reason.shape[1] + ref.recon.shape[1]) + 10
        out = generate_audio(model, cut.prompt, max_frames=budget, cfg_scale=cfg_scale,
                             sampling=Sampling(temperature=1.0, top_k=30), generator=generator)
        reasoning, recon = out.reasoning.cpu(), out.reconstruction.cpu()
        in_range = bool(((reasoning >= 0) & (reasoning < a.reason_codebook_size)).all()
                        and ((recon >= 0) & (recon < a.recon_codebook_size)).all())
        valid = out.stopped and reasoning.shape[-1] > 0 and recon.shape[-1] > 0 and in_range
        item = TtsItem(sentence.key, ref.recon.shape[1] / RECON_HZ, recon.shape[-1] / RECON_HZ, out.stopped, valid)
        if decoder is not None and recon.shape[-1] > 0 and in_range:
            wave = decoder(sentence.key, recon.numpy().astype(np.uint16))
            item.decoded_s = wave.shape[0] / CODEC_RATE
            item.reference_text = _words_to_say(sentence, cut.index)
            if asr is not None and item.reference_text is not None:
                item.hypothesis = asr.transcribe(wave, CODEC_RATE)
        result.items.append(item)
    return result
