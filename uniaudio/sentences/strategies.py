"""The token-level auditory-sentence strategies: ``segment``, ``speech-text``, ``audio-caption-interleave``.

All three work within one unit (one input shard), are deterministic for a seed (the unit's RNG) and never
exceed ``--max-tokens``; every segment is in the loss (an auditory sentence is modelled whole).

* ``segment``: one recording cut into 2–8 consecutive audio segments on the 0.4 s grid both token rates
  share (2 reasoning frames = 5 reconstruction frames): inner cuts fall on even reasoning frames ``2c`` and
  reconstruction frames ``5c``; the last segment runs to the end of the recording (or of the prefix that
  fits ``--max-tokens``). Where the source has time-aligned words (LibriSpeech alignments) each audio
  segment is followed by the transcription of the words whose midpoint lies in it (omitted when none).
* ``speech-text``: several speech–transcription pairs of **one speaker** (consecutive utterances of that
  speaker in the shard), all in one order drawn per sentence: ``speech, text, speech, text, ...`` or
  ``text, speech, text, speech, ...``. 2–8 pairs; a speaker with a single usable utterance is skipped.
* ``audio-caption-interleave``: 2–8 captioned clips, alternating ``audio, caption, audio, caption, ...``.

Keys are ``<kind>/<key of the first sample used>``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

from uniaudio.sentences.registry import BuildContext, SentenceBuilder, Skip, register
from uniaudio.sentences.sentence import Sentence, SentenceSegment
from uniaudio.sentences.sources import SourceSample

__all__ = ["GRID_REASON_FRAMES", "GRID_RECON_FRAMES", "GRID_S", "SegmentStrategy", "SpeechTextStrategy",
           "AudioCaptionInterleave"]

GRID_S = 0.4
GRID_REASON_FRAMES = 2
GRID_RECON_FRAMES = 5
MIN_PARTS, MAX_PARTS = 2, 8
_CELL_TOKENS = GRID_REASON_FRAMES + GRID_RECON_FRAMES
_AUDIO_OVERHEAD = 4  # BOS/EOS frames of both streams


@register
class SegmentStrategy(SentenceBuilder):
    kind = "segment"
    strategy = "segment"

    def build_unit(self, unit: dict[str, Any], samples: list[SourceSample],
                   ctx: BuildContext) -> Iterator[Sentence | Skip]:
        for sample in samples:
            cells = min(sample.reason.shape[1] // GRID_REASON_FRAMES, sample.recon.shape[1] // GRID_RECON_FRAMES)
            parts = int(ctx.rng.integers(MIN_PARTS, MAX_PARTS + 1))
            fit = (ctx.max_tokens - _AUDIO_OVERHEAD * parts) // _CELL_TOKENS
            used = min(cells, fit)
            parts = min(parts, used)
            if parts < MIN_PARTS:
                yield Skip(sample.key, "too short to cut into 2 segments of 0.4 s"
                           if cells < MIN_PARTS else "longer than --max-tokens")
                continue
            cuts = sorted(int(c) for c in ctx.rng.choice(range(1, used), size=parts - 1, replace=False))
            whole = used == cells
            bounds = [0, *(c * GRID_REASON_FRAMES for c in cuts),
                      sample.reason.shape[1] if whole else used * GRID_REASON_FRAMES]
            segments = self._segments(sample, bounds, ctx)
            while not ctx.fits(segments) and len(bounds) > MIN_PARTS + 1:
                bounds.pop()  # drop the last segment (text made it too long)
                segments = self._segments(sample, bounds, ctx)
            if not ctx.fits(segments):
                yield Skip(sample.key, "longer than --max-tokens")
                continue
            yield Sentence(f"segment/{sample.key}", self.kind, self.strategy, segments)

    @staticmethod
    def _segments(sample: SourceSample, bounds: list[int], ctx: BuildContext) -> list[SentenceSegment]:
        words = sample.alignment()
        out = []
        for a, b in zip(bounds, bounds[1:], strict=False):
            out.append(ctx.audio_segment(sample, True, reason_frames=(a, b)))
            if words:
                t0, t1 = a / GRID_REASON_FRAMES * GRID_S, b / GRID_REASON_FRAMES * GRID_S
                if b == sample.reason.shape[1]:
                    t1 = float("inf")
                text = " ".join(w for w, s, e in words if w and t0 <= (s + e) / 2 < t1)
                if text:
                    out.append(ctx.text_segment("transcription", text, True, source_key=sample.key))
        return out


def _count_parts(ctx: BuildContext) -> int:
    return int(ctx.rng.integers(MIN_PARTS, MAX_PARTS + 1))


class _PairStrategy(SentenceBuilder):
    """Sentences of 2–8 consecutive (audio, text) pairs within ``--max-tokens``; subclasses say which
    samples qualify (:meth:`runs`), the text role, and whether each sentence draws its order."""

    text_role: str
    draws_order = False  # True: each sentence draws text-first or audio-first; False: audio first
    single_left: str  # the skip reason for a run's last lone pair

    @abstractmethod
    def runs(self, samples: list[SourceSample]) -> Iterator[list[tuple[SourceSample, str]] | Skip]:
        """Runs of (sample, text) to group in order, and a :class:`Skip` for each unusable sample."""

    def meta(self, group: list[SourceSample]) -> dict[str, Any]:
        return {}

    def build_unit(self, unit: dict[str, Any], samples: list[SourceSample],
                   ctx: BuildContext) -> Iterator[Sentence | Skip]:
        runs = list(self.runs(samples))
        ctx.encode_ahead([text for run in runs if not isinstance(run, Skip) for _, text in run])
        for run in runs:
            if isinstance(run, Skip):
                yield run
            else:
                yield from self._group(run, ctx)

    def _group(self, run: list[tuple[SourceSample, str]], ctx: BuildContext) -> Iterator[Sentence | Skip]:
        group: list[SourceSample] = []
        segments: list[SentenceSegment] = []
        tokens = 0  # == ctx.num_tokens(segments): the length is a sum over segments
        text_first = self.draws_order and bool(ctx.rng.integers(2))
        want = _count_parts(ctx)
        for sample, text in run:
            pair = [ctx.audio_segment(sample, True),
                    ctx.text_segment(self.text_role, text, True, source_key=sample.key)]
            pair_tokens = ctx.num_tokens(pair)
            if pair_tokens > ctx.max_tokens:
                yield Skip(sample.key, "longer than --max-tokens")
                continue
            if len(group) == want or tokens + pair_tokens > ctx.max_tokens:
                yield from self._emit(group, segments)
                group, segments, tokens = [], [], 0
                text_first = self.draws_order and bool(ctx.rng.integers(2))
                want = _count_parts(ctx)
            group.append(sample)
            segments += reversed(pair) if text_first else pair
            tokens += pair_tokens
        yield from self._emit(group, segments)

    def _emit(self, group: list[SourceSample], segments: list[SentenceSegment]) -> Iterator[Sentence | Skip]:
        if len(group) >= MIN_PARTS:
            yield Sentence(f"{self.kind}/{group[0].key}", self.kind, self.strategy, segments, meta=self.meta(group))
        elif group:
            yield Skip(group[0].key, self.single_left)


@register
class SpeechTextStrategy(_PairStrategy):
    kind = "speech-text"
    strategy = "speech-text"
    text_role = "transcription"
    draws_order = True
    single_left = "speaker has a single utterance left in its shard"

    def runs(self, samples: list[SourceSample]) -> Iterator[list[tuple[SourceSample, str]] | Skip]:
        """One run per speaker (its usable utterances in shard order), after the skips."""
        by_speaker: dict[str, list[tuple[SourceSample, str]]] = {}
        for sample in samples:
            text = sample.meta.get("text")
            if sample.pool != "speech":
                yield Skip(sample.key, f"pool {sample.pool or 'unknown'} is not speech")
            elif not sample.meta.get("speaker"):
                yield Skip(sample.key, "no speaker")
            elif not isinstance(text, str) or not text.strip():
                yield Skip(sample.key, "no transcript")
            else:
                by_speaker.setdefault(str(sample.meta["speaker"]), []).append((sample, text))
        yield from by_speaker.values()

    def meta(self, group: list[SourceSample]) -> dict[str, Any]:
        return {"speaker": str(group[0].meta["speaker"])}


@register
class AudioCaptionInterleave(_PairStrategy):
    kind = "audio-caption-interleave"
    strategy = "audio-caption-interleave"
    text_role = "caption"
    single_left = "single captioned clip left in its shard"

    def runs(self, samples: list[SourceSample]) -> Iterator[list[tuple[SourceSample, str]] | Skip]:
        """One run of every captioned clip; a :class:`Skip` for each clip without a caption, in order."""
        run: list[tuple[SourceSample, str]] = []
        for sample in samples:
            caption = sample.meta.get("caption")
            if not isinstance(caption, str) or not caption.strip():
                yield Skip(sample.key, "no caption")
            else:
                run.append((sample, caption))
        yield run
