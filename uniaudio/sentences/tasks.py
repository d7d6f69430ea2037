"""The data types of UniAudio 2.0 as tasks, one sentence per token-store sample, in the released key order.

Each task lays a sample out as a random instruction prompt (role ``prompt``, never in the loss; none for
``audio-only``) followed by its slots in the released order (reference-code.md §3), the loss on the last
slot: ASR = audio, transcription*; TTS = transcription, audio*; InstructTTS = caption, transcription,
audio*; speech captioning = audio, caption*; TTA/TTM = caption, audio*; audio/music captioning = audio,
caption*; lyric recognition = audio, lyric*; lyric-to-song = lyric, audio*; audio-only = audio*.

A sample outside the task's pool (``tta`` takes sound, ``ttm`` music, ...) or without the text a slot needs
(``text`` → transcription, ``caption``, ``lyrics``) is skipped with the reason; so is one whose sentence
would exceed ``--max-tokens``. Keys are ``<task>/<token-store key>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from uniaudio.sentences.registry import BuildContext, SentenceBuilder, Skip, register
from uniaudio.sentences.sentence import Sentence
from uniaudio.sentences.sources import SourceSample

__all__ = ["TASKS", "TaskSpec"]

_META_FIELD = {"transcription": "text", "caption": "caption", "lyric": "lyrics"}
_MISSING = {"transcription": "no transcript", "caption": "no caption", "lyric": "no lyrics"}


@dataclass(frozen=True)
class TaskSpec:
    """A task: its slots in order (``audio`` or a text role), which slot is scored, its pools, prompt."""

    name: str
    slots: tuple[str, ...]
    pools: tuple[str, ...]
    prompt: bool = True

    @property
    def loss_slot(self) -> int:
        return len(self.slots) - 1


TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("asr", ("audio", "transcription"), ("speech",)),
    TaskSpec("tts", ("transcription", "audio"), ("speech",)),
    TaskSpec("instruct-tts", ("caption", "transcription", "audio"), ("speech",)),
    TaskSpec("speech-caption", ("audio", "caption"), ("speech",)),
    TaskSpec("tta", ("caption", "audio"), ("sound",)),
    TaskSpec("ttm", ("caption", "audio"), ("music",)),
    TaskSpec("audio-caption", ("audio", "caption"), ("sound",)),
    TaskSpec("music-caption", ("audio", "caption"), ("music",)),
    TaskSpec("lyric-recognition", ("audio", "lyric"), ("music",)),
    TaskSpec("lyric-to-song", ("lyric", "audio"), ("music",)),
    TaskSpec("audio-only", ("audio",), ("speech", "sound", "music"), prompt=False),
)}


def _text_of(sample: SourceSample, slot: str) -> str | None:
    value = sample.meta.get(_META_FIELD[slot])
    return value if isinstance(value, str) and value.strip() else None


class TaskBuilder(SentenceBuilder):
    """One sentence per sample, laid out by :attr:`spec`."""

    spec: TaskSpec

    def build_unit(self, unit: dict[str, Any], samples: list[SourceSample],
                   ctx: BuildContext) -> Iterator[Sentence | Skip]:
        spec, last = self.spec, self.spec.loss_slot
        text_slots = [slot for slot in spec.slots if slot != "audio"]
        texts = [[_text_of(sample, slot) for slot in text_slots] for sample in samples]
        ctx.encode_ahead([t for row in texts for t in row if t is not None])
        for sample, row in zip(samples, texts, strict=True):
            if sample.pool not in spec.pools:
                yield Skip(sample.key, f"pool {sample.pool or 'unknown'} is not {'/'.join(spec.pools)}")
                continue
            if None in row:
                yield Skip(sample.key, _MISSING[text_slots[row.index(None)]])
                continue
            segments = [ctx.prompt(spec.name)] if spec.prompt else []
            slot_texts = iter(row)
            for i, slot in enumerate(spec.slots):
                loss = i == last
                if slot == "audio":
                    segments.append(ctx.audio_segment(sample, loss))
                else:
                    segments.append(ctx.text_segment(slot, next(slot_texts), loss, source_key=sample.key))
            if not ctx.fits(segments):
                yield Skip(sample.key, "longer than --max-tokens")
                continue
            yield Sentence(f"{spec.name}/{sample.key}", spec.name, None, segments)


for _spec in TASKS.values():
    register(type(f"{_spec.name.title().replace('-', '')}Task", (TaskBuilder,), {"kind": _spec.name, "spec": _spec}))
