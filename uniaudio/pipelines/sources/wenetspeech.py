"""WenetSpeech (wenet-e2e/WenetSpeech, 10k+ h Mandarin): one record per labelled segment.

Layout accepted (``INPUT_URI`` = the corpus root holding ``WenetSpeech.json``, or that JSON file):
``WenetSpeech.json`` {``dataset``, ``language``, ``version``, ``description``, ``url``, ``audios``: [{``aid``,
``duration``, ``md5``, ``path``, ``source``, ``tags``, ``url``, ``segments``: [{``sid``, ``confidence``,
``begin_time``, ``end_time``, ``subsets``, ``text``}]}]} and the long recordings at
``audio/{train/{youtube,podcast},dev/third_party,test_net/youtube,test_meeting/third_party}/B00000/<aid>.opus``
(``path`` is relative to the JSON's directory). The JSON is several GB: it is streamed with ijson
(``audios.item`` one at a time), never loaded whole.

Partitions: ``WenetSpeech.json`` split into shards ``WenetSpeech.json#<i>-of-<n>`` (one per 512 MB of
JSON, or the ``shards`` option); shard ``i`` streams the whole file and keeps audios ``k`` with
``k % n == i``, so no task holds more than its share of the ~15M segments.

``split``: a subset name, ``L``, ``M``, ``S``, ``DEV``, ``TEST_NET`` or ``TEST_MEETING``
(case-insensitive); only segments whose ``subsets`` contain it are read. Without a split every
segment is read.

Record mapping: key ``wenetspeech/<sid>`` (``Y0000000000_--5llN02F84_S00000``; YouTube-derived ids keep
their ``-``); ``audio_uri`` = the opus file; ``offset_s`` = ``begin_time``; ``duration_s`` = ``end_time -
begin_time``; ``text`` ← ``text`` **verbatim** apart from surrounding whitespace: full-width spaces
(U+3000) and other symbols inside the text are kept (the project keeps transcripts as released;
upstream ``utils/fix_json.py`` strips them, which a text normaliser can do later); ``language`` = ``zh``;
``sample_rate`` = 16000 (the corpus' rate; Opus decodes at 48 kHz and the audio stage resamples);
``split`` = the requested subset, else the first of L, M, S, DEV, TEST_NET, TEST_MEETING the segment
belongs to; ``meta`` = ``aid``, ``source``, ``tags``, ``url``, ``md5``, ``audio_duration``,
``confidence``, ``subsets``. A stale per-audio ``batch_id`` key is ignored.

Rejects: recording absent → ``missing_file`` (one per segment); empty → ``zero_byte``; a segment
without ``sid``/``begin_time``/``end_time``/``text`` or an audio without ``path`` → ``malformed_metadata``;
a JSON syntax error stops the stream with one ``malformed_metadata`` reject naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import ijson

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources.base import Source, SourceError
from uniaudio.pipelines.sources.common import (
    audio_file_reject,
    parse_shard,
    shard_count,
    shard_partitions,
)

__all__ = ["WenetSpeechSource"]

JSON_NAME = "WenetSpeech.json"
SUBSETS = ("L", "M", "S", "DEV", "TEST_NET", "TEST_MEETING")
SAMPLE_RATE = 16000
SHARD_BYTES = 512 * 2**20


class WenetSpeechSource(Source):
    """WenetSpeech segments from the streamed ``WenetSpeech.json``; see the module docstring.

    Option ``shards``: the number of partitions (default: one per 512 MB of JSON).
    """

    name: ClassVar[str] = "wenetspeech"
    layouts: ClassVar[tuple[str, ...]] = (
        "WenetSpeech.json (streamed) + audio/<set>/<source>/B00000/<aid>.opus",
    )
    accepted_options = ("shards",)

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        uri = self.input_uri
        self.json_uri = uri if uri.endswith(".json") else storage.join(uri, JSON_NAME)
        self.root = self.json_uri.rsplit("/", 1)[0]
        self.subset = split.upper() if split is not None else None
        if self.subset is not None and self.subset not in SUBSETS:
            raise SourceError(f"wenetspeech split must be one of {', '.join(SUBSETS)}, got {split!r}")

    def partitions(self) -> list[str]:
        if not storage.exists(self.json_uri):
            raise SourceError(f"{self.json_uri} does not exist (expected the WenetSpeech metadata JSON)")
        count = shard_count(self.options.get("shards"), self.json_uri, SHARD_BYTES)
        return shard_partitions(self.json_uri.rsplit("/", 1)[1], count)

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        name, shard, count = parse_shard(partition)
        uri = storage.join(self.root, name)
        with storage.open_uri(uri, "rb") as f:
            try:
                for index, audio in enumerate(ijson.items(f, "audios.item", use_float=True)):
                    if index % count == shard:
                        yield from self._audio(uri, index, audio)
            except ijson.JSONError as exc:
                if shard == 0:  # every shard hits the error; one reports it
                    yield Reject(make_key(self.name, name.rsplit(".", 1)[0]), self.name,
                                 RejectReason.MALFORMED_METADATA, f"{uri}: JSON error, stream stopped ({exc})")

    def _audio(self, uri: str, index: int, audio: dict[str, Any]) -> Iterator[AudioRecord | Reject]:
        aid = str(audio.get("aid") or f"audio{index}")
        where = f"{uri} audios[{index}] ({aid})"
        segments = [(i, s) for i, s in enumerate(audio.get("segments") or []) if self._wanted(s)]
        if not segments:
            return
        path = audio.get("path")
        if not isinstance(path, str) or not path:
            for i, segment in segments:
                yield Reject(self._key(segment, aid, i), self.name, RejectReason.MALFORMED_METADATA,
                             f"{where}: audio has no 'path'")
            return
        audio_uri = storage.join(self.root, path)
        problem = audio_file_reject(self.name, make_key(self.name, aid), audio_uri, where)
        meta = {
            "aid": aid,
            "source": audio.get("source"),
            "tags": audio.get("tags"),
            "url": audio.get("url"),
            "md5": audio.get("md5"),
            "audio_duration": audio.get("duration"),
        }
        for i, segment in segments:
            key = self._key(segment, aid, i)
            if problem is not None:
                yield Reject(key, self.name, problem.reason, problem.detail)
                continue
            try:
                begin, end = float(segment["begin_time"]), float(segment["end_time"])
                text = segment["text"]
                if not isinstance(text, str) or "sid" not in segment or end <= begin:
                    raise ValueError("needs sid, text and begin_time < end_time")
            except (KeyError, TypeError, ValueError) as exc:
                yield Reject(key, self.name, RejectReason.MALFORMED_METADATA, f"{where}: segment {exc!r}")
                continue
            subsets = segment.get("subsets") or []
            yield AudioRecord(
                key=key,
                source=self.name,
                audio_uri=audio_uri,
                offset_s=begin,
                duration_s=round(end - begin, 6),
                sample_rate=SAMPLE_RATE,
                text=text,
                language="zh",
                split=self.subset or next((s for s in SUBSETS if s in subsets), None),
                meta={**meta, "confidence": segment.get("confidence"), "subsets": subsets},
            )

    def _wanted(self, segment: Any) -> bool:
        return self.subset is None or (isinstance(segment, dict) and self.subset in (segment.get("subsets") or []))

    def _key(self, segment: Any, aid: str, index: int) -> str:
        """``wenetspeech/<sid>``; a segment without ``sid`` is named by its position for its reject."""
        sid = segment.get("sid") if isinstance(segment, dict) else None
        return make_key(self.name, str(sid or f"{aid}_segment{index}"))
