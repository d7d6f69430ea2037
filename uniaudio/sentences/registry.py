"""Sentence builders as pluggable units: the :class:`SentenceBuilder` interface, its context, the registry.

A builder turns **units** of input (by default one input token-store shard each) into sentences. The
driver (:mod:`uniaudio.sentences.build`) lists the units on the driver (:meth:`SentenceBuilder.units`,
deterministic), runs :meth:`SentenceBuilder.build_unit` for each as a Ray Data task, and writes what it
yields in unit order; units are the unit of resume. ``build_unit`` yields :class:`~.sentence.Sentence`
or :class:`Skip` (a record it could not use, with the reason, counted in the summary).

:class:`BuildContext` gives a unit its tools: the text tokenizer (``text_segment``), audio segments,
``num_tokens`` / ``max_tokens``, a random prompt per task, and an RNG seeded from (seed, kind, unit id),
so a build is deterministic for a seed whatever the scheduling (prompts are drawn from a second stream
seeded alike, so how many a unit draws does not move the builders' own draws). :func:`register` adds a builder class
under its ``kind``; :func:`get_builder` / :func:`kinds` are what the CLI uses.
"""

from __future__ import annotations

import hashlib
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

import numpy as np

from uniaudio.sentences.sentence import Sentence, SentenceSegment, sequence_length
from uniaudio.sentences.sources import InputShard, SourceSample
from uniaudio.tokenize.text_tokenizer import TextTokenizer

__all__ = ["BuildContext", "BuildOptions", "SentenceBuilder", "Skip", "get_builder", "kinds", "load_prompts",
           "register"]


@dataclass(frozen=True)
class Skip:
    """A record a builder could not use: its key and why (e.g. ``"no transcript"``)."""

    key: str
    reason: str


@dataclass(frozen=True)
class BuildOptions:
    """Options of one build, shipped to every worker (JSON-able)."""

    kind: str
    max_tokens: int = 2048
    seed: int = 0
    tokenizer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ValueError(f"--max-tokens must be at least 16, got {self.max_tokens}")


@lru_cache(maxsize=1)
def load_prompts() -> dict[str, list[str]]:
    """Task → instruction prompts, from the package's ``prompts.json``."""
    data = json.loads(resources.files("uniaudio.sentences").joinpath("prompts.json").read_text("utf-8"))
    return {k: list(v) for k, v in data.items()}


@lru_cache(maxsize=4)
def _tokenizer(path: str | None) -> TextTokenizer:
    return TextTokenizer.load(path)


class BuildContext:
    """Per-unit tools for :meth:`SentenceBuilder.build_unit` (see the module docstring)."""

    def __init__(self, options: BuildOptions, unit_id: str, codec_fingerprint: str | None = None) -> None:
        self.options = options
        self.unit_id = unit_id
        self.max_tokens = options.max_tokens
        self.codec_fingerprint = codec_fingerprint
        self.tokenizer = _tokenizer(options.tokenizer)
        digest = hashlib.sha256(f"{options.seed}/{options.kind}/{unit_id}".encode()).digest()
        self.rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        self._prompt_rng = random.Random(int.from_bytes(digest[8:16], "little"))  # prompts' own stream
        self._encoded: dict[str, tuple[int, ...]] = {}
        self._prompts: dict[str, SentenceSegment] = {}
        self._prompt_texts: dict[str, list[str]] = {}

    def encode_ahead(self, texts: list[str]) -> None:
        """Encode ``texts`` in one batch (the tokenizer's thread pool); later ``text_segment`` calls for
        them reuse the ids. Builders call it once per unit with every text they will need."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._encoded]
        self._encoded.update(zip(todo, map(tuple, self.tokenizer.encode_batch(todo)), strict=True))

    def text_segment(self, role: str, text: str, loss: bool, source_key: str | None = None,
                     provenance: dict[str, Any] | None = None) -> SentenceSegment:
        ids = self._encoded.get(text)
        if ids is None:
            ids = tuple(self.tokenizer.encode(text))
        return SentenceSegment("text", role, loss, source_key=source_key, text=text, ids=ids, provenance=provenance)

    def audio_segment(self, sample: SourceSample, loss: bool, reason_frames: tuple[int, int] | None = None,
                      attrs: dict[str, Any] | None = None) -> SentenceSegment:
        """``sample``'s tokens (or reasoning frames ``[a, b)`` and the matching reconstruction frames
        ``[2.5a, 2.5b)``, with distillation features cut alike) as an audio segment."""
        reason, recon, feats = sample.reason, sample.recon, dict(sample.features)
        if reason_frames is not None:
            a, b = reason_frames
            if a % 2 or (b % 2 and b != reason.shape[1]):
                raise ValueError(f"{sample.key}: cut [{a}, {b}) is not on the 0.4 s grid (even reasoning frames)")
            ra, rb = a * 5 // 2, (recon.shape[1] if b == reason.shape[1] else b * 5 // 2)
            feats = {k: _cut_features(v, recon.shape[1], ra, rb) for k, v in feats.items()}
            reason, recon = reason[:, a:b], recon[:, ra:rb]
        return SentenceSegment("audio", "audio", loss, source_key=sample.key,
                               reason=np.ascontiguousarray(reason), recon=np.ascontiguousarray(recon),
                               features=feats, attrs=attrs)

    def prompt(self, task: str) -> SentenceSegment:
        """A random instruction prompt for ``task`` (role ``prompt``, never in the loss).

        A unit's sentences share one segment object per prompt text (segments are never changed once a
        builder has put them in a sentence)."""
        choices = self._prompt_texts.get(task)
        if choices is None:
            choices = self._prompt_texts[task] = [c + "\n\n" for c in load_prompts()[task]]
        text = choices[int(self._prompt_rng.random() * len(choices))]
        segment = self._prompts.get(text)
        if segment is None:
            if text not in self._encoded:
                self.encode_ahead(choices)
            segment = self._prompts[text] = self.text_segment("prompt", text, loss=False)
        return segment

    def num_tokens(self, segments: list[SentenceSegment]) -> int:
        return sequence_length(segments, self.tokenizer.specials)

    def fits(self, segments: list[SentenceSegment]) -> bool:
        return self.num_tokens(segments) <= self.max_tokens


def _cut_features(feats: np.ndarray, recon_frames: int, a: int, b: int) -> np.ndarray:
    """Rows of ``feats`` (aligned to the reconstruction frames, ``k`` rows per frame) for frames ``[a, b)``."""
    k = max(1, round(feats.shape[0] / max(recon_frames, 1)))
    return np.ascontiguousarray(feats[a * k : b * k])


class SentenceBuilder(ABC):
    """Base class of task and strategy builders (see the module docstring)."""

    kind: ClassVar[str]
    strategy: ClassVar[str | None] = None
    needs_tokens: ClassVar[bool] = True
    needs_codec: ClassVar[bool] = False  # tokenizes new audio: the CLI passes the codec options (audio_render)

    def check(self, options: BuildOptions, input_codec: dict[str, Any]) -> None:
        """Driver side, before any unit runs: refuse options that cannot work (``ValueError`` with the fix),
        e.g. a codec whose fingerprint differs from ``input_codec`` (the input stores' codec record)."""
        return None

    def units(self, shards: list[InputShard], options: BuildOptions) -> list[dict[str, Any]]:
        """The work units, in output order: by default one per input shard."""
        return [{"id": f"{s.store_index}-{s.shard_index}", "shards": [s.to_dict()]} for s in shards]

    @abstractmethod
    def build_unit(self, unit: dict[str, Any], samples: list[SourceSample],
                   ctx: BuildContext) -> Iterator[Sentence | Skip]:
        """The sentences of one unit (and :class:`Skip` for each record that cannot make one), in order."""

    def ray_remote_args(self, options: BuildOptions) -> dict[str, Any]:
        """Resources of one unit's task (e.g. ``{"num_gpus": 1}`` for a GPU stage)."""
        return {}


_REGISTRY: dict[str, type[SentenceBuilder]] = {}


def register(cls: type[SentenceBuilder]) -> type[SentenceBuilder]:
    """Register a builder class under ``cls.kind`` (usable as a class decorator)."""
    if cls.kind in _REGISTRY and _REGISTRY[cls.kind] is not cls:
        raise ValueError(f"sentence kind {cls.kind!r} is registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


def kinds() -> list[str]:
    """Every registered kind (importing the known builder modules first)."""
    from uniaudio.sentences import kinds as _known  # noqa: F401 - registers the builders

    return sorted(_REGISTRY)


def get_builder(kind: str) -> SentenceBuilder:
    """A builder instance for ``kind``; ``ValueError`` listing the kinds there are."""
    known = kinds()
    if kind not in _REGISTRY:
        raise ValueError(f"unknown sentence kind {kind!r}; choose one of {', '.join(known)}")
    return _REGISTRY[kind]()
