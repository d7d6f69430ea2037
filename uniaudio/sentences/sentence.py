"""One training sentence in memory: its segments, its tar members, and its length in the sequence format.

A :class:`Sentence` is a list of :class:`SentenceSegment` (text or audio) plus its key, task and strategy.
:meth:`Sentence.members` encodes it as the sentence store v2 members (``<key>.json`` first, then per audio
segment *i* ``<key>.seg<i>.reason.npy``, ``<key>.seg<i>.recon.npy`` and ``<key>.seg<i>.<field>.npy``
features); :func:`sentence_from_members` is the inverse. :func:`sequence_length` is the number of steps
:func:`uniaudio.model.sequence.build_sequence` lays the segments out in (closed form, tested against it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

import numpy as np

from uniaudio.core.keys import check_field, check_key
from uniaudio.core.npy_codec import npy_bytes
from uniaudio.core.token_space import TextTokens

__all__ = ["AUDIO_ROLES", "TEXT_ROLES", "Sentence", "SentenceSegment", "sentence_from_members",
           "sequence_length"]

TEXT_ROLES = ("prompt", "text", "transcription", "caption", "lyric")
AUDIO_ROLES = ("audio",)
_SEG_MEMBER = re.compile(r"^seg(\d+)\.([A-Za-z0-9_-]+)\.npy$")
_DEFAULT_TEXT_TOKENS = TextTokens()
_UINT16 = np.dtype(np.uint16)
#: ``_JSON.encode(x)`` is ``json.dumps(x, ensure_ascii=False)`` without building an encoder per call.
_JSON = json.JSONEncoder(ensure_ascii=False)
#: One JSON string literal, as ``_JSON`` writes strings.
_STR = encode_basestring


@dataclass
class SentenceSegment:
    """One text or audio segment of a sentence (see docs/formats.md, "Sentence store")."""

    modality: str
    role: str
    loss: bool
    source_key: str | None = None
    text: str | None = None
    ids: tuple[int, ...] | None = None
    reason: np.ndarray | None = None
    recon: np.ndarray | None = None
    features: dict[str, np.ndarray] = field(default_factory=dict)
    provenance: dict[str, Any] | None = None
    attrs: dict[str, Any] | None = None
    _json: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.modality == "text":
            if self.role not in TEXT_ROLES:
                raise ValueError(f"text segment role {self.role!r} is not one of {TEXT_ROLES}")
            if self.text is None or self.ids is None:
                raise ValueError("a text segment needs both text and ids")
            if not isinstance(self.ids, tuple):
                self.ids = tuple(int(i) for i in self.ids)
        elif self.modality == "audio":
            if self.role not in AUDIO_ROLES:
                raise ValueError(f"audio segment role {self.role!r} is not one of {AUDIO_ROLES}")
            for name in ("reason", "recon"):
                arr = getattr(self, name)
                if arr is None or arr.dtype != _UINT16 or arr.ndim != 2:
                    raise ValueError(f"audio segment {name} must be a uint16 (codebooks, T) array")
            for name in self.features:
                check_field(name)
        else:
            raise ValueError(f"segment modality must be 'text' or 'audio', got {self.modality!r}")

    def header(self) -> dict[str, Any]:
        """The segment's entry in ``<key>.json``."""
        out: dict[str, Any] = {"modality": self.modality, "role": self.role, "loss": bool(self.loss),
                               "source_key": self.source_key}
        if self.modality == "text":
            out["text"], out["ids"] = self.text, list(self.ids)
        else:
            out["frames"] = [int(self.reason.shape[1]), int(self.recon.shape[1])]
            if self.features:
                out["features"] = sorted(self.features)
        if self.provenance is not None:
            out["provenance"] = self.provenance
        if self.attrs is not None:
            out["attrs"] = self.attrs
        return out

    def header_json(self) -> str:
        """:meth:`header` as JSON text, the bytes ``json.dumps(header, ensure_ascii=False)`` gives.

        A text segment's is made once and kept (text segments are never changed after creation, and a
        unit's sentences share their prompt segments); an audio segment's is made on each call."""
        if self._json is not None:
            return self._json
        source = "null" if self.source_key is None else _STR(self.source_key)
        head = (f'{{"modality": {_STR(self.modality)}, "role": {_STR(self.role)}, '
                f'"loss": {"true" if self.loss else "false"}, "source_key": {source}, ')
        if self.modality == "text":
            body = f'"text": {_STR(self.text)}, "ids": {_ids_json(self.ids)}'
        else:
            body = f'"frames": [{int(self.reason.shape[1])}, {int(self.recon.shape[1])}]'
            if self.features:
                body += f', "features": {_JSON.encode(sorted(self.features))}'
        if self.provenance is not None:
            body += f', "provenance": {_JSON.encode(self.provenance)}'
        if self.attrs is not None:
            body += f', "attrs": {_JSON.encode(self.attrs)}'
        out = head + body + "}"
        if self.modality == "text":
            self._json = out
        return out


#: ``str(i)`` by id: text ids repeat across sentences, so their decimal text is made once (bounded below).
_ID_TEXT: dict[int, str] = {}


def _ids_json(ids: tuple[int, ...]) -> str:
    """``json.dumps(list(ids))``, faster for ids seen before."""
    try:
        return "[" + ", ".join(map(_ID_TEXT.__getitem__, ids)) + "]"
    except KeyError:
        if len(_ID_TEXT) > 1_000_000:
            _ID_TEXT.clear()
        _ID_TEXT.update((i, str(i)) for i in ids)
        return "[" + ", ".join(map(_ID_TEXT.__getitem__, ids)) + "]"


def sequence_length(segments: list[SentenceSegment], text_tokens: TextTokens | None = None) -> int:
    """Steps of ``segments`` in the model's sequence format (= ``len(build_sequence(...))``).

    Text: ids + begin/end of text (+ open/close markers for marked roles). Audio: reasoning frames and
    reconstruction frames, each bracketed by a BOS and an EOS frame.
    """
    marked = (text_tokens or _DEFAULT_TEXT_TOKENS).markers
    total = 0
    for seg in segments:
        if seg.modality == "text":
            total += len(seg.ids) + (4 if seg.role in marked else 2)
        else:
            total += seg.reason.shape[1] + 2 + seg.recon.shape[1] + 2
    return total


@dataclass
class Sentence:
    """A training sentence: key, task, strategy (None for a plain task) and its segments."""

    key: str
    task: str
    strategy: str | None
    segments: list[SentenceSegment]
    meta: dict[str, Any] = field(default_factory=dict)
    _num_tokens: int | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key(self.key)
        if not self.segments:
            raise ValueError(f"sentence {self.key!r} has no segments")

    @property
    def num_tokens(self) -> int:
        """:func:`sequence_length` of the segments, measured once (builders finish a sentence's segments
        before they make the :class:`Sentence`)."""
        if self._num_tokens is None:
            self._num_tokens = sequence_length(self.segments)
        return self._num_tokens

    @property
    def source_keys(self) -> list[str]:
        """Token-store keys the sentence draws on (segments' own keys and provenance ``mix`` keys), in order."""
        seen: dict[str, None] = {}
        for seg in self.segments:
            if seg.source_key:
                seen[seg.source_key] = None
            if seg.provenance:
                seen.update((k, None) for k in seg.provenance.get("mix", []) if isinstance(k, str))
        return list(seen)

    def header(self) -> dict[str, Any]:
        """The ``<key>.json`` record."""
        return {"key": self.key, "task": self.task, "strategy": self.strategy,
                "segments": [s.header() for s in self.segments], "num_tokens": self.num_tokens,
                "source_keys": self.source_keys, **({"meta": self.meta} if self.meta else {})}

    def header_json(self) -> str:
        """:meth:`header` as JSON text, byte for byte ``json.dumps(header, ensure_ascii=False)``, built from
        the segments' :meth:`SentenceSegment.header_json` (text segments' are made once)."""
        strategy = "null" if self.strategy is None else _STR(self.strategy)
        tail = f', "meta": {_JSON.encode(self.meta)}}}' if self.meta else "}"
        return (f'{{"key": {_STR(self.key)}, "task": {_STR(self.task)}, "strategy": {strategy}, '
                f'"segments": [{", ".join([s.header_json() for s in self.segments])}], '
                f'"num_tokens": {self.num_tokens}, "source_keys": [{", ".join(map(_STR, self.source_keys))}]{tail}')

    def members(self) -> list[tuple[str, bytes]]:
        """Tar members in store order: json, then per audio segment reason, recon, features by name."""
        out = [(f"{self.key}.json", self.header_json().encode("utf-8"))]
        for i, seg in enumerate(self.segments):
            if seg.modality != "audio":
                continue
            out.append((f"{self.key}.seg{i}.reason.npy", npy_bytes(seg.reason)))
            out.append((f"{self.key}.seg{i}.recon.npy", npy_bytes(seg.recon)))
            for name in sorted(seg.features):
                out.append((f"{self.key}.seg{i}.{name}.npy", npy_bytes(seg.features[name].astype(np.float16))))
        return out

    def to_model_segments(self) -> list:
        """The segments as :mod:`uniaudio.model.sequence` ``TextSegment``/``AudioSegment`` (for training)."""
        import torch

        from uniaudio.model.sequence import AudioSegment, TextSegment

        out = []
        for seg in self.segments:
            if seg.modality == "text":
                out.append(TextSegment(seg.ids, role=seg.role, loss=seg.loss))
            else:
                out.append(AudioSegment(
                    reasoning=torch.from_numpy(seg.reason.astype(np.int64)),
                    reconstruction=torch.from_numpy(seg.recon.astype(np.int64)), loss=seg.loss,
                    features={k: torch.from_numpy(v.astype(np.float32)) for k, v in seg.features.items()}))
        return out


def sentence_from_members(key: str, header: dict[str, Any], arrays: dict[str, np.ndarray], where: str) -> Sentence:
    """Rebuild a :class:`Sentence` from its ``<key>.json`` and its ``seg<i>.<field>.npy`` arrays.

    Raises ``ValueError`` naming ``where`` and the key for a missing or unexpected member.
    """
    per_seg: dict[int, dict[str, np.ndarray]] = {}
    for ext, arr in arrays.items():
        m = _SEG_MEMBER.match(ext)
        if not m:
            raise ValueError(f"{where}: {key}: unexpected member {key}.{ext}")
        per_seg.setdefault(int(m.group(1)), {})[m.group(2)] = arr
    segments = []
    try:
        for i, h in enumerate(header["segments"]):
            common = {"modality": h["modality"], "role": h["role"], "loss": bool(h["loss"]),
                      "source_key": h.get("source_key"), "provenance": h.get("provenance"),
                      "attrs": h.get("attrs")}
            if h["modality"] == "text":
                segments.append(SentenceSegment(**common, text=h["text"], ids=tuple(h["ids"])))
                continue
            got = per_seg.pop(i, {})
            if "reason" not in got or "recon" not in got:
                raise ValueError(f"audio segment {i} lacks seg{i}.reason.npy / seg{i}.recon.npy")
            reason, recon = got.pop("reason"), got.pop("recon")
            segments.append(SentenceSegment(**common, reason=reason, recon=recon, features=got))
        if per_seg:
            raise ValueError(f"members for segments {sorted(per_seg)} that are not audio segments")
        return Sentence(key=key, task=header["task"], strategy=header.get("strategy"), segments=segments,
                        meta=header.get("meta") or {})
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: sentence {key!r}: {e}") from e
