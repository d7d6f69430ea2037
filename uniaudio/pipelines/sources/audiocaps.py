"""AudioCaps: ``{train,val,test}.csv`` (cdjkim/audiocaps ``dataset/``) plus a dump of the 10 s clips.

Layout accepted (``input_uri`` is the directory holding it):

* ``dataset/{train,val,test}.csv`` or ``{train,val,test}.csv`` directly in ``input_uri`` (any subset),
  columns ``audiocap_id,youtube_id,start_time,caption`` (captions quoted when they contain commas;
  ``start_time`` an int in seconds; a float is accepted too). Train has one row per clip, val/test 5 rows
  per clip. A CSV without those columns is a layout error (:class:`SourceError`).
* Clips somewhere under ``audio_dir`` (option; default ``input_uri``, searched recursively) under the
  common dump names: ``Y<ytid>.<ext>`` (WavCaps/PANNs), ``<ytid>_<start>.<ext>``, ``<ytid>.<ext>``
  (see :class:`~uniaudio.pipelines.sources.audioset.ClipIndex`).

One partition per split CSV. Rows are grouped by ``(youtube_id, start_time)``: one record per clip.

Record mapping:

* ``key`` ``audiocaps/<ytid>_<start_ms>``; ``audio_uri`` the clip file; ``offset_s`` 0.
* ``caption``: the clip's first caption in file order; ``meta["captions"]`` all of them (5 in val/test)
  and ``meta["audiocap_ids"]`` theirs, plus ``ytid`` and ``start_s``.
* ``duration_s`` / ``sample_rate`` ``None`` (the CSVs carry neither; the audio stage measures them).
* ``split``: ``train``, ``val`` or ``test``.

Rejects: ``malformed_metadata`` (non-numeric ``start_time``, empty id or caption),
``missing_file`` (no clip under any dump name), ``zero_byte`` (empty clip file).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import Any

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources.audioset import ClipIndex, clip_stems
from uniaudio.pipelines.sources.base import Source, SourceError

__all__ = ["AudioCapsSource"]

SPLITS = ("train", "val", "test")
COLUMNS = ("audiocap_id", "youtube_id", "start_time", "caption")


class AudioCapsSource(Source):
    name = "audiocaps"
    layouts = ("[dataset/]{train,val,test}.csv + clip dump (Y<ytid>.*, <ytid>_<start>.*, <ytid>.*)",)
    accepted_options = ("audio_dir",)

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        self._clips = ClipIndex(str(options.get("audio_dir") or self.input_uri))

    def _csv_uri(self, split: str) -> str | None:
        name = f"{split}.csv"
        for uri in (storage.join(self.input_uri, "dataset", name), storage.join(self.input_uri, name)):
            if storage.exists(uri):
                return uri
        return None

    def partitions(self) -> list[str]:
        found = [s for s in SPLITS if self._csv_uri(s)]
        if not found:
            raise SourceError(f"{self.input_uri}: no AudioCaps CSVs (expected dataset/{{train,val,test}}.csv)")
        return sorted(s for s in found if self.split in (None, s))

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        uri = self._csv_uri(partition)
        if uri is None:
            raise SourceError(f"{self.input_uri}: {partition}.csv not found")
        reader = csv.DictReader(io.StringIO(storage.read_bytes(uri).decode("utf-8-sig")))
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SourceError(f"{uri}: missing columns {missing}")
        clips: dict[tuple[str, float], list[tuple[str, str, int]]] = {}
        for row in reader:
            lineno = reader.line_num
            ytid = (row["youtube_id"] or "").strip()
            caption = (row["caption"] or "").strip()
            try:
                if not ytid or not caption:
                    raise ValueError("empty youtube_id or caption")
                start = float(row["start_time"])
                if not math.isfinite(start) or start < 0:
                    raise ValueError(f"start_time {row['start_time']!r} is not a time")
            except (TypeError, ValueError) as err:
                key = make_key(self.name, ytid or f"{partition}-line{lineno}", f"line{lineno}")
                yield Reject(key, self.name, RejectReason.MALFORMED_METADATA, f"{uri} line {lineno}: {err}")
                continue
            clips.setdefault((ytid, start), []).append(((row["audiocap_id"] or "").strip(), caption, lineno))
        for (ytid, start), captions in clips.items():
            key = make_key(self.name, f"{ytid}_{int(round(start * 1000))}")
            where = f"{uri} line {captions[0][2]}"
            audio = self._clips.resolve(key, self.name, clip_stems(ytid, start), where)
            if isinstance(audio, Reject):
                yield audio
                continue
            yield AudioRecord(
                key=key,
                source=self.name,
                audio_uri=audio,
                caption=captions[0][1],
                split=partition,
                meta={
                    "ytid": ytid,
                    "start_s": start,
                    "captions": [c[1] for c in captions],
                    "audiocap_ids": [c[0] for c in captions],
                },
            )
