"""The ``variation`` auditory-sentence strategy: one text, rendered several times with varied acoustics.

A sentence is the text followed by ``N`` renditions of it (``--variants N``, 2–8, default 3): ``text, audio_1,
..., audio_N``, every segment in the loss, as in the other strategies. Each rendition draws its own pitch shift,
speed and gain (and voice, where the backend has voices) from :class:`VariationRanges` with the unit's RNG, is
rendered by a :class:`~.variation_backends.VariationBackend` (``--variation-backend dsp|espeak``), and is
tokenized by the codec of the input stores (:func:`~.audio_render.codec_handle`, fingerprint checked). An
audio segment is **new audio**: ``source_key`` null, ``provenance = {"rendered_by": BACKEND, "of": KEY}`` (the
token-store sample whose recording — ``dsp`` — or transcript — ``espeak`` — was rendered) and ``attrs`` = the
attributes the backend actually applied (``backend``, ``voice``, ``pitch_semitones``, ``speed``, ``gain_db``,
``duration_s``, and for espeak its own ``espeak`` parameters). The text segment is the sample's transcript
(role ``transcription``, ``source_key`` = the sample's key).

Inputs: speech samples with a transcript (others are skipped, counted by reason); the ``dsp`` backend reads
each sample's recording again through its ``origin`` (:func:`~.audio_render.read_origin_audio`); ``espeak``
picks voices for the sample's ``language`` (English when unknown; a language espeak-ng has no voice for is
skipped). Renditions that would take the sentence over ``--max-tokens`` are dropped from the end (predicted
from their durations before tokenizing, then checked exactly); a sample with fewer than 2 fitting renditions
is skipped. Deterministic for a seed. Keys are ``variation/<sample key>``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from uniaudio.sentences.audio_render import (
    OriginAudioError,
    check_codec,
    codec_config,
    codec_handle,
    codec_remote_args,
    read_origin_audio,
)
from uniaudio.sentences.registry import BuildContext, BuildOptions, SentenceBuilder, Skip, register
from uniaudio.sentences.sentence import Sentence, SentenceSegment
from uniaudio.sentences.sources import SourceSample
from uniaudio.sentences.variation_backends import Rendition, Variation, VariationBackend, get_backend

__all__ = ["BACKEND_OPTION", "DEFAULT_VARIANTS", "MAX_VARIANTS", "MIN_VARIANTS", "VARIANTS_OPTION",
           "VariationRanges", "VariationStrategy", "draw_variations", "variation_extra"]

BACKEND_OPTION = "variation_backend"  # keys in BuildOptions.extra
VARIANTS_OPTION = "variants"
DEFAULT_BACKEND = "dsp"
DEFAULT_VARIANTS = 3
MIN_VARIANTS, MAX_VARIANTS = 2, 8


@dataclass(frozen=True)
class VariationRanges:
    """Where renditions' attributes are drawn from: pitch (semitones, uniform), speed (log-uniform) and
    gain (dB, uniform; backends lower it where the peak would clip)."""

    pitch_semitones: tuple[float, float] = (-4.0, 4.0)
    speed: tuple[float, float] = (0.8, 1.25)
    gain_db: tuple[float, float] = (-12.0, 3.0)

    def __post_init__(self) -> None:
        for name in ("pitch_semitones", "speed", "gain_db"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"variation range {name} is empty: ({lo}, {hi})")
        if self.speed[0] <= 0:
            raise ValueError(f"speed factors must be positive, got {self.speed}")


def draw_variations(rng: np.random.Generator, n: int, voices: tuple[str, ...] = (),
                    ranges: VariationRanges = VariationRanges()) -> list[Variation]:
    """``n`` random :class:`Variation`\\ s (a voice each from ``voices`` when there are any)."""
    out = []
    for _ in range(n):
        pitch = float(rng.uniform(*ranges.pitch_semitones))
        speed = float(math.exp(rng.uniform(math.log(ranges.speed[0]), math.log(ranges.speed[1]))))
        gain = float(rng.uniform(*ranges.gain_db))
        voice = voices[int(rng.integers(len(voices)))] if voices else None
        out.append(Variation(round(pitch, 2), round(speed, 3), round(gain, 2), voice))
    return out


def variation_extra(backend: str | None = None, variants: int | None = None) -> dict[str, Any]:
    """The ``BuildOptions.extra`` entries of ``--variation-backend`` and ``--variants`` (validated; None =
    the default: ``dsp``, 3)."""
    backend = DEFAULT_BACKEND if backend is None else backend
    variants = DEFAULT_VARIANTS if variants is None else variants
    get_backend(backend)
    if not MIN_VARIANTS <= variants <= MAX_VARIANTS:
        raise ValueError(f"--variants must be between {MIN_VARIANTS} and {MAX_VARIANTS}, got {variants}")
    return {BACKEND_OPTION: backend, VARIANTS_OPTION: variants}


def _settings(options: BuildOptions) -> tuple[VariationBackend, int]:
    extra = variation_extra(str(options.extra.get(BACKEND_OPTION, DEFAULT_BACKEND)),
                            int(options.extra.get(VARIANTS_OPTION, DEFAULT_VARIANTS)))
    return get_backend(extra[BACKEND_OPTION]), extra[VARIANTS_OPTION]


def _audio_steps(num_samples: int) -> int:
    """Steps of one audio segment of ``num_samples`` at 24 kHz in the sequence format (frames + BOS/EOS)."""
    from uniaudio.tokenize.reasoning_codec.windowing import token_counts

    t_r, t_s = token_counts(num_samples)
    return t_r + 2 + t_s + 2


@register
class VariationStrategy(SentenceBuilder):
    kind = "variation"
    strategy = "variation"
    needs_codec = True

    def check(self, options: BuildOptions, input_codec: dict[str, Any]) -> None:
        backend, _ = _settings(options)
        backend.check()
        check_codec(codec_config(options), input_codec.get("fingerprint"))

    def ray_remote_args(self, options: BuildOptions) -> dict[str, Any]:
        backend, _ = _settings(options)
        return {**codec_remote_args(options), **backend.ray_remote_args()}

    def build_unit(self, unit: dict[str, Any], samples: list[SourceSample],
                   ctx: BuildContext) -> Iterator[Sentence | Skip]:
        backend, variants = _settings(ctx.options)
        handle = None
        ctx.encode_ahead([t for s in samples if isinstance(t := s.meta.get("text"), str)])
        for sample in samples:
            text = sample.meta.get("text")
            if sample.pool != "speech":
                yield Skip(sample.key, f"pool {sample.pool or 'unknown'} is not speech")
                continue
            if not isinstance(text, str) or not text.strip():
                yield Skip(sample.key, "no transcript")
                continue
            voices: tuple[str, ...] = ()
            if backend.has_voices:
                language = sample.meta.get("language")
                voices = backend.voices(language)
                if not voices:
                    yield Skip(sample.key, f"no {backend.name} voice for language {language}")
                    continue
            audio = None
            if backend.needs_audio:
                try:
                    audio = read_origin_audio(sample)
                except OriginAudioError as err:
                    yield Skip(sample.key, err.reason)
                    continue
            text_seg = ctx.text_segment("transcription", text, True, source_key=sample.key)
            renditions = self._fitting(text_seg, [backend.render(text, v, audio)
                                                  for v in draw_variations(ctx.rng, variants, voices)], ctx)
            if len(renditions) < MIN_VARIANTS:
                yield Skip(sample.key, "longer than --max-tokens")
                continue
            handle = handle or codec_handle(ctx)
            tokens = handle.encode([r.wave for r in renditions],
                                   keys=[f"{sample.key} rendition {i}" for i in range(len(renditions))])
            provenance = {"rendered_by": backend.name, "of": sample.key}
            segments = [text_seg] + [
                SentenceSegment("audio", "audio", True, source_key=None, reason=t.reason, recon=t.recon,
                                features=t.features, provenance=provenance, attrs=r.attrs)
                for r, t in zip(renditions, tokens, strict=True)]
            while not ctx.fits(segments) and len(segments) > MIN_VARIANTS + 1:
                segments.pop()
            if not ctx.fits(segments):
                yield Skip(sample.key, "longer than --max-tokens")
                continue
            yield Sentence(f"variation/{sample.key}", self.kind, self.strategy, segments)

    @staticmethod
    def _fitting(text_seg: SentenceSegment, renditions: list[Rendition], ctx: BuildContext) -> list[Rendition]:
        """The longest prefix of ``renditions`` whose predicted length fits ``--max-tokens`` with the text."""
        used = ctx.num_tokens([text_seg])
        out = []
        for r in renditions:
            used += _audio_steps(len(r.wave))
            if used > ctx.max_tokens:
                break
            out.append(r)
        return out
