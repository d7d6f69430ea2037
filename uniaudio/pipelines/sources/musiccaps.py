"""MusicCaps: ``musiccaps-public.csv`` (HF google/MusicCaps) plus a dump of the 10 s clips.

Layout accepted (``input_uri`` is the directory holding it):

* ``musiccaps-public.csv`` with columns ``ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,
  author_id,is_balanced_subset,is_audioset_eval``. Captions contain commas, quotes and newlines, so the
  file is read with the csv module over the whole text (never line by line). ``aspect_list`` is a Python
  list literal parsed with :func:`ast.literal_eval` (safe: literals only); the booleans are
  ``True``/``False``.
* Clips somewhere under ``audio_dir`` (option; default ``input_uri``), named ``<ytid>.<ext>`` (or the other
  YouTube dump names of :class:`~uniaudio.pipelines.sources.audioset.ClipIndex`).

One partition: the CSV.

Record mapping: ``key`` ``musiccaps/<ytid>_<start_ms>``; ``caption`` verbatim (stripped); ``labels`` the
``aspect_list`` entries; ``duration_s`` ``end_s - start_s``; ``offset_s`` 0 (dumps hold the cut clip);
``sample_rate`` ``None``; ``split`` ``test`` when ``is_audioset_eval`` else ``train``; ``meta``: ``ytid``,
``start_s``, ``end_s``, ``audioset_mids`` (the comma-joined ``audioset_positive_labels`` split),
``author_id``, ``is_balanced_subset``, ``is_audioset_eval``.

Rejects: ``malformed_metadata`` (bad times, booleans or ``aspect_list``, empty caption), ``missing_file``,
``zero_byte``.
"""

from __future__ import annotations

import ast
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

__all__ = ["MusicCapsSource"]

CSV_NAME = "musiccaps-public.csv"
BOOLS = {"True": True, "False": False}


def _bool(value: str | None, column: str) -> bool:
    text = (value or "").strip()
    if text not in BOOLS:
        raise ValueError(f"{column} is {value!r}, expected True/False")
    return BOOLS[text]


def _aspects(value: str | None) -> list[str]:
    parsed = ast.literal_eval((value or "").strip())
    if not isinstance(parsed, list | tuple) or not all(isinstance(a, str) for a in parsed):
        raise ValueError(f"aspect_list is not a list of strings: {value!r}")
    return list(parsed)


class MusicCapsSource(Source):
    name = "musiccaps"
    layouts = ("musiccaps-public.csv + clip dump (<ytid>.*, Y<ytid>.*, <ytid>_<start>.*)",)
    accepted_options = ("audio_dir",)

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        self.csv_uri = storage.join(self.input_uri, CSV_NAME)
        self._clips = ClipIndex(str(options.get("audio_dir") or self.input_uri))

    def partitions(self) -> list[str]:
        if not storage.exists(self.csv_uri):
            raise SourceError(f"{self.input_uri}: {CSV_NAME} not found")
        return [CSV_NAME]

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        text = storage.read_bytes(self.csv_uri).decode("utf-8-sig")
        for n, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=1):
            ytid = (row.get("ytid") or "").strip()
            where = f"{self.csv_uri} row {n}"
            try:
                if not ytid:
                    raise ValueError("empty ytid")
                start, end = float(row["start_s"]), float(row["end_s"])
                if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
                    raise ValueError(f"bad clip times {row['start_s']!r}, {row['end_s']!r}")
                aspects = _aspects(row.get("aspect_list"))
                is_eval = _bool(row.get("is_audioset_eval"), "is_audioset_eval")
                balanced = _bool(row.get("is_balanced_subset"), "is_balanced_subset")
                caption = (row.get("caption") or "").strip()
                if not caption:
                    raise ValueError("empty caption")
            except (KeyError, TypeError, ValueError, SyntaxError) as err:
                key = make_key(self.name, ytid or f"row{n}")
                yield Reject(key, self.name, RejectReason.MALFORMED_METADATA, f"{where}: {err}")
                continue
            split = "test" if is_eval else "train"
            if self.split not in (None, split):
                continue
            key = make_key(self.name, f"{ytid}_{int(round(start * 1000))}")
            audio = self._clips.resolve(key, self.name, clip_stems(ytid, start), where)
            if isinstance(audio, Reject):
                yield audio
                continue
            mids = [m.strip() for m in (row.get("audioset_positive_labels") or "").split(",") if m.strip()]
            yield AudioRecord(
                key=key,
                source=self.name,
                audio_uri=audio,
                duration_s=round(end - start, 6),
                caption=caption,
                labels=aspects,
                split=split,
                meta={
                    "ytid": ytid,
                    "start_s": start,
                    "end_s": end,
                    "audioset_mids": mids,
                    "author_id": (row.get("author_id") or "").strip(),
                    "is_balanced_subset": balanced,
                    "is_audioset_eval": is_eval,
                },
            )
