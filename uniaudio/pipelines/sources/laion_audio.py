"""LAION-Audio-300M: WebDataset tars of ``<key>.audio.mp3`` + ``<key>.metadata.json`` pairs.

Layout accepted: ``input_uri`` is a directory holding the tars (``flash_20_random_snippets_<N>.tar``,
``flash_20_voice_snippets_<N>.tar``; any ``*.tar`` directly in it), or one ``.tar`` file. One partition
per tar. Tars are opened in random-access mode: headers and JSON members are parsed, audio data is seeked
over (never held in memory or decoded). No options.

Pairing: the sample key is the member path (without a leading ``./``) up to the first dot of its file name
(``seg0001.audio.mp3`` → ``seg0001``: ``.audio.mp3`` is a double extension); members are paired by key
regardless of their order in the tar. Audio members are ``<key>.audio.<ext>`` (mp3 or another audio
extension).

The caption key is unverified upstream, so the JSON is probed for :data:`CAPTION_KEYS` in order; the key
found is logged (once per tar and key) and stored in ``meta["caption_key"]``.

Record mapping: ``key`` ``laion-audio/<tar stem>/<sample key>``; ``audio_uri`` the tar, ``member`` the
audio member; ``offset_s`` 0 (the member is the snippet); ``duration_s`` ``duration_ms / 1000``;
``caption`` the probed caption (first item if it is a list); ``sample_rate``/``split`` ``None``;
``meta``: every other JSON field, with ``start_time_ms`` also given as ``start_s`` (seconds in the
source video).

Rejects: ``orphan_member`` (audio without JSON or JSON without audio), ``malformed_metadata``
(unparsable JSON, non-object, bad ``duration_ms``), ``zero_byte`` (empty audio member).
"""

from __future__ import annotations

import json
import logging
import posixpath
import tarfile
from collections.abc import Iterator
from typing import Any

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources.base import Source, SourceError

__all__ = ["CAPTION_KEYS", "LaionAudioSource"]

log = logging.getLogger(__name__)

#: Caption fields probed in this order (the real name is unverified).
CAPTION_KEYS = ("caption", "captions", "audio_caption", "text_caption", "description", "text")
AUDIO_EXTS = ("mp3", "flac", "wav", "ogg", "opus", "m4a")
META_SUFFIX = "metadata.json"


def _split_member(name: str) -> tuple[str, str]:
    """``dir/seg0001.audio.mp3`` → ``("dir/seg0001", "audio.mp3")``."""
    folder, base = posixpath.split(name)
    stem, _, suffix = base.partition(".")
    return posixpath.join(folder, stem) if folder else stem, suffix


def _is_audio(suffix: str) -> bool:
    kind, _, ext = suffix.partition(".")
    return kind == "audio" and ext.lower() in AUDIO_EXTS


class LaionAudioSource(Source):
    name = "laion-audio"
    layouts = ("directory of WebDataset tars (flash_20_*_snippets_<N>.tar) with <key>.audio.mp3 + "
               "<key>.metadata.json", "a single such .tar")

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)

    def partitions(self) -> list[str]:
        if self.input_uri.endswith(".tar"):
            if not storage.exists(self.input_uri):
                raise SourceError(f"{self.input_uri}: tar not found")
            return [posixpath.basename(self.input_uri)]
        tars = [posixpath.basename(t) for t in storage.glob(self.input_uri, "*.tar")]
        if not tars:
            raise SourceError(f"{self.input_uri}: no LAION-Audio-300M *.tar files")
        return sorted(tars)

    def _tar_uri(self, partition: str) -> str:
        if self.input_uri.endswith(".tar"):
            return self.input_uri
        return storage.join(self.input_uri, partition)

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        uri = self._tar_uri(partition)
        tar_stem = partition[: -len(".tar")]
        audio: dict[str, tuple[str, int]] = {}  # key → (member, size)
        metadata: dict[str, bytes] = {}
        with storage.open_uri(uri) as f, tarfile.open(fileobj=f, mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                name = info.name[2:] if info.name.startswith("./") else info.name
                key, suffix = _split_member(name)
                if suffix == META_SUFFIX:
                    member = tar.extractfile(info)
                    metadata[key] = member.read() if member else b""
                elif _is_audio(suffix):
                    audio.setdefault(key, (name, info.size))
        logged: set[str | None] = set()
        for key in sorted(audio.keys() | metadata.keys()):
            record_key = make_key(self.name, tar_stem, key)
            if key not in metadata or key not in audio:
                present = audio[key][0] if key in audio else f"{key}.{META_SUFFIX}"
                missing = f"{key}.{META_SUFFIX}" if key in audio else f"{key}.audio.*"
                detail = f"{uri}: member {present} has no {missing}"
                yield Reject(record_key, self.name, RejectReason.ORPHAN_MEMBER, detail)
                continue
            member, size = audio[key]
            try:
                meta = json.loads(metadata[key])
                if not isinstance(meta, dict):
                    raise ValueError("metadata is not a JSON object")
                duration_ms = meta.get("duration_ms")
                duration = None if duration_ms is None else float(duration_ms) / 1000.0
                if meta.get("start_time_ms") is not None:
                    meta["start_s"] = float(meta["start_time_ms"]) / 1000.0
            except (TypeError, ValueError) as err:
                detail = f"{uri}: member {key}.{META_SUFFIX}: {err}"
                yield Reject(record_key, self.name, RejectReason.MALFORMED_METADATA, detail)
                continue
            if size == 0:
                yield Reject(record_key, self.name, RejectReason.ZERO_BYTE, f"{uri}: member {member} is empty")
                continue
            caption_key = next((k for k in CAPTION_KEYS if meta.get(k)), None)
            caption = meta.pop(caption_key) if caption_key else None
            if isinstance(caption, list):
                meta["captions"] = caption
                caption = caption[0]
            if caption_key not in logged:
                logged.add(caption_key)
                if caption_key:
                    log.info("%s: caption found under key %r (e.g. %s)", uri, caption_key, key)
                else:
                    log.warning("%s: no caption under any of %s (e.g. %s)", uri, CAPTION_KEYS, key)
            yield AudioRecord(
                key=record_key,
                source=self.name,
                audio_uri=uri,
                member=member,
                duration_s=duration,
                caption=None if caption is None else str(caption),
                meta={**meta, "caption_key": caption_key},
            )
