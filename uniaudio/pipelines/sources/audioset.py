"""AudioSet: the official segment CSVs with an audio dump, or the HF ``agkphysics/AudioSet`` parquet.

Layouts accepted (``input_uri`` is the directory holding them):

* **official CSVs** — ``{balanced_train,unbalanced_train,eval}_segments.csv`` (any subset of them) plus
  ``class_labels_indices.csv``, and the clips somewhere under ``audio_dir`` (option; default the input
  directory, searched recursively). The CSVs start with 3 ``#`` lines and use ``", "`` separators, so
  they are read with ``skipinitialspace`` (otherwise the quoted label list spills across columns).
  Clip files are found under the common dump names (:class:`ClipIndex`): ``<ytid>.<ext>``
  (HF ``audio/bal_train/<ytid>.flac``), ``Y<ytid>.<ext>`` (PANNs / WavCaps), ``<ytid>_<start>.<ext>``
  with start as ``30``, ``30.000``, ``30.0`` or ``30000`` (ms). One partition per CSV file.
* **HF parquet** — ``data/{bal_train,eval,unbal_train}/*.parquet`` with columns ``video_id``,
  ``audio`` (FLAC bytes), ``labels`` (mids) and ``human_labels``, read with
  :mod:`~uniaudio.pipelines.sources.hf_tables`. One partition per parquet file.

If segment CSVs are present the CSV layout is used, else the parquet layout. Not read: the WebDataset tars
of older HF revisions and the strong-label TSV. :class:`ClipIndex` and :func:`clip_stems` are shared with
the ``audiocaps`` and ``musiccaps`` sources (same YouTube dump conventions).

Record mapping:

* ``key``: CSV ``audioset/<ytid>_<start_ms>`` (``audioset/--PJHxphWEs_30000``); parquet
  ``audioset/<ytid>`` (the release has no start time, so the keys of the two layouts differ).
* ``audio_uri``: the clip file (CSV) or the parquet file with ``member`` ``"<row>:audio"``.
* ``offset_s`` 0 (dumps hold the cut segment); ``duration_s`` ``end - start`` from the CSV, ``None``
  for parquet; ``sample_rate`` ``None`` (not in the metadata; the audio stage probes it).
* ``labels``: display names (``class_labels_indices.csv`` for CSVs, ``human_labels`` for parquet), in the
  row's order; a mid missing from the index is kept as the mid (logged).
* ``split``: ``balanced_train``, ``unbalanced_train`` or ``eval`` (HF ``bal_train``/``unbal_train`` mapped).
* ``meta``: ``ytid``, ``mids``, and ``start_s``/``end_s`` (CSV) or ``audio_path`` (parquet).

Rejects: ``malformed_metadata`` (row without 4 fields, or times that are not numbers with
``0 <= start < end``), ``missing_file`` (no clip under any dump name; parquet row without audio bytes),
``zero_byte`` (empty clip file).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import posixpath
from collections.abc import Iterator
from typing import Any

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason, parquet_member
from uniaudio.pipelines.sources.base import Source, SourceError
from uniaudio.pipelines.sources.hf_tables import AudioRef, iter_table_rows, table_files

__all__ = ["AUDIO_SUFFIXES", "AudioSetSource", "ClipIndex", "clip_stems"]

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")

SEGMENT_CSVS = {
    "balanced_train_segments.csv": "balanced_train",
    "unbalanced_train_segments.csv": "unbalanced_train",
    "eval_segments.csv": "eval",
}
# HF parquet folder name → split name used in records
HF_SPLITS = {"bal_train": "balanced_train", "unbal_train": "unbalanced_train", "eval": "eval"}
LABEL_INDEX = "class_labels_indices.csv"


def clip_stems(ytid: str, start_s: float | None) -> list[str]:
    """File stems a YouTube-clip dump may use for ``ytid`` starting at ``start_s``, most specific first."""
    starts: list[str] = []
    if start_s is not None:
        if float(start_s).is_integer():
            starts.append(str(int(start_s)))
        starts += [f"{start_s:.3f}", f"{start_s:.1f}", str(int(round(start_s * 1000)))]
    stems: list[str] = []
    for prefix in ("", "Y"):
        stems += [f"{prefix}{ytid}_{s}" for s in starts]
    stems += [ytid, f"Y{ytid}"]
    return list(dict.fromkeys(stems))


class ClipIndex:
    """Audio files under a dump directory, looked up by file stem (listed once, on first use).

    When two files share a stem, the first in sorted URI order wins.
    """

    def __init__(self, audio_dir: str) -> None:
        self.audio_dir = audio_dir
        self._by_stem: dict[str, str] | None = None

    def _index(self) -> dict[str, str]:
        if self._by_stem is None:
            self._by_stem = {}
            for uri in storage.glob(self.audio_dir, "**/*"):
                name = posixpath.basename(uri)
                stem, dot, ext = name.rpartition(".")
                if dot and f".{ext.lower()}" in AUDIO_SUFFIXES:
                    self._by_stem.setdefault(stem, uri)
        return self._by_stem

    def find(self, stems: list[str]) -> str | None:
        index = self._index()
        for stem in stems:
            if stem in index:
                return index[stem]
        return None

    def resolve(self, key: str, source: str, stems: list[str], where: str) -> str | Reject:
        """The clip's URI, or a ``missing_file``/``zero_byte`` reject naming ``where`` and the names tried."""
        uri = self.find(stems)
        if uri is None:
            tried = ", ".join(f"{s}.*" for s in stems)
            detail = f"{where}: no audio under {self.audio_dir} (tried {tried})"
            return Reject(key, source, RejectReason.MISSING_FILE, detail)
        if storage.size(uri) == 0:
            return Reject(key, source, RejectReason.ZERO_BYTE, f"{where}: {uri} is empty")
        return uri


def read_label_index(uri: str) -> dict[str, str]:
    """``mid → display_name`` from ``class_labels_indices.csv`` (names with commas are quoted)."""
    names: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO(storage.read_bytes(uri).decode("utf-8-sig"))):
        names[row["mid"].strip()] = row["display_name"].strip()
    return names


class AudioSetSource(Source):
    name = "audioset"
    layouts = (
        "{balanced_train,unbalanced_train,eval}_segments.csv + class_labels_indices.csv + audio dump "
        "(<ytid>.*, Y<ytid>.*, <ytid>_<start>.*)",
        "HF agkphysics/AudioSet parquet: data/{bal_train,eval,unbal_train}/*.parquet",
    )
    accepted_options = ("audio_dir",)

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        self.audio_dir = str(options.get("audio_dir") or self.input_uri)
        self._clips = ClipIndex(self.audio_dir)
        self._label_names: dict[str, str] | None = None

    # -- layout -----------------------------------------------------------------------------------
    def _csv_partitions(self) -> list[str]:
        return [name for name in SEGMENT_CSVS if storage.exists(storage.join(self.input_uri, name))]

    def partitions(self) -> list[str]:
        csvs = self._csv_partitions()
        if csvs:
            if not storage.exists(storage.join(self.input_uri, LABEL_INDEX)):
                raise SourceError(f"{self.input_uri}: segment CSVs found but {LABEL_INDEX} is missing")
            parts = [c for c in csvs if self.split in (None, SEGMENT_CSVS[c])]
        else:
            files = table_files(self.input_uri)
            if not files:
                raise SourceError(
                    f"{self.input_uri}: no AudioSet layout found (expected *_segments.csv + {LABEL_INDEX}, "
                    "or data/<split>/*.parquet)"
                )
            parts = [self._relative(f) for f in files]
            parts = [p for p in parts if self.split in (None, self._parquet_split(p))]
        return sorted(parts)

    def _relative(self, uri: str) -> str:
        return uri[len(self.input_uri) :].lstrip("/")

    @staticmethod
    def _parquet_split(partition: str) -> str | None:
        folder = posixpath.basename(posixpath.dirname(partition))
        return HF_SPLITS.get(folder, folder or None)

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        if partition in SEGMENT_CSVS:
            yield from self._read_csv(partition)
        else:
            yield from self._read_parquet(partition)

    # -- official CSVs ----------------------------------------------------------------------------
    def _labels(self) -> dict[str, str]:
        if self._label_names is None:
            self._label_names = read_label_index(storage.join(self.input_uri, LABEL_INDEX))
        return self._label_names

    def _read_csv(self, partition: str) -> Iterator[AudioRecord | Reject]:
        uri = storage.join(self.input_uri, partition)
        split = SEGMENT_CSVS[partition]
        with storage.open_uri(uri) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            yield from self._csv_rows(uri, split, csv.reader(text, skipinitialspace=True))

    def _csv_rows(self, uri: str, split: str, rows: Iterator[list[str]]) -> Iterator[AudioRecord | Reject]:
        names = self._labels()
        for lineno, row in enumerate(rows, start=1):
            if not row or row[0].startswith("#"):
                continue
            ytid = row[0].strip()
            try:
                if len(row) != 4:
                    raise ValueError(f"{len(row)} fields, expected 4")
                start, end = float(row[1]), float(row[2])
                if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
                    raise ValueError(f"bad segment times {row[1]!r}, {row[2]!r}")
            except ValueError as err:
                key = make_key(self.name, ytid or f"{split}-line{lineno}")
                yield Reject(key, self.name, RejectReason.MALFORMED_METADATA, f"{uri} line {lineno}: {err}")
                continue
            key = make_key(self.name, f"{ytid}_{int(round(start * 1000))}")
            mids = [m.strip() for m in row[3].split(",") if m.strip()]
            unknown = [m for m in mids if m not in names]
            if unknown:
                log.warning(
                    "%s line %d: mids %s not in %s, kept as labels", uri, lineno, unknown, LABEL_INDEX
                )
            audio = self._clips.resolve(key, self.name, clip_stems(ytid, start), f"{uri} line {lineno}")
            if isinstance(audio, Reject):
                yield audio
                continue
            yield AudioRecord(
                key=key,
                source=self.name,
                audio_uri=audio,
                duration_s=round(end - start, 6),
                labels=[names.get(m, m) for m in mids],
                split=split,
                meta={"ytid": ytid, "start_s": start, "end_s": end, "mids": mids},
            )

    # -- HF parquet -------------------------------------------------------------------------------
    def _read_parquet(self, partition: str) -> Iterator[AudioRecord | Reject]:
        uri = storage.join(self.input_uri, partition)
        split = self._parquet_split(partition)
        for row_index, row in iter_table_rows(uri, audio_columns=("audio",)):
            ytid = str(row.get("video_id") or "").strip()
            audio = row.get("audio")
            if not ytid:
                key = make_key(self.name, f"{posixpath.basename(partition)}-row{row_index}")
                detail = f"{uri} row {row_index}: no video_id"
                yield Reject(key, self.name, RejectReason.MALFORMED_METADATA, detail)
                continue
            key = make_key(self.name, ytid)
            if not isinstance(audio, AudioRef) or not audio.has_bytes:
                detail = f"{uri} row {row_index}: no audio bytes"
                yield Reject(key, self.name, RejectReason.MISSING_FILE, detail)
                continue
            yield AudioRecord(
                key=key,
                source=self.name,
                audio_uri=uri,
                member=parquet_member(row_index, "audio"),
                labels=list(row.get("human_labels") or []),
                split=split,
                meta={"ytid": ytid, "mids": list(row.get("labels") or []), "audio_path": audio.path},
            )
