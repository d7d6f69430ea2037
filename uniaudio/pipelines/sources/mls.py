"""Multilingual LibriSpeech (OpenSLR 94 trees and the HF parquet release facebook/multilingual_librispeech).

Layouts accepted:

* **OpenSLR 94** - ``INPUT_URI`` = ``mls_<lang>/`` (FLAC) or ``mls_<lang>_opus/`` (Opus): ``metainfo.txt``
  (pipe table, header row `` SPEAKER | GENDER | PARTITION | MINUTES | BOOK ID | TITLE | CHAPTER``,
  space-padded cells, titles with commas and quotes) and per split ``train|dev|test/`` a
  ``transcripts.txt`` (``<utt>\\t<text>``), a ``segments.txt`` (``<utt>\\t<LibriVox url>\\t<start>\\t<end>``)
  and ``audio/<spk>/<book>/<utt>.flac|.opus``; limited supervision handles at
  ``train/limited_supervision/1hr/{0..5}/handles.txt`` and ``train/limited_supervision/9hr/handles.txt``.
  ``mls_lm_<lang>/`` (LM text) is not audio and is not read. Partitions: the split directories present
  (``train``, ``dev``, ``test``), a big ``transcripts.txt`` cut into shards ``train#<i>-of-<n>`` (one per
  64 MB, or the ``shards`` option; shard ``i`` keeps lines ``k`` with ``k % n == i``). Text files are
  streamed, and only the shard's ``segments.txt`` rows are kept.
* **HF parquet** - ``INPUT_URI`` = the dataset root or one ``<lang>/`` directory:
  ``<lang>/<split>-NNNNN-of-MMMMM.parquet`` with columns ``audio`` {bytes, path}, ``original_path``,
  ``begin_time``, ``end_time``, ``transcript``, ``audio_duration``, ``speaker_id`` (str), ``chapter_id``
  (str, really the book id), ``file``, ``id``; read through :mod:`hf_tables`. Partitions: the parquet
  files (relative paths).

``split``: ``train``, ``dev``, ``test``, ``9hr`` or ``1hr`` (the HF names ``9_hours`` / ``1_hours`` are
accepted too; ``1hr`` is the union of the six 10-minute folds ``1hr/0..5``). Without a split, every
split is read.

Record mapping: key ``mls/<lang>/<utt id>`` (``<lang>`` = ``german``..., taken from ``mls_<lang>`` or
the parquet's ``<lang>/`` directory, or the ``language`` option, so FLAC, Opus and parquet copies share
keys); ``text`` ← transcript (verbatim: lowercase, no punctuation); ``speaker`` = ``id.split('_')[0]``;
``language`` = ISO 639-1 code of ``<lang>``; ``split`` = the split read (``9hr``/``1hr`` when filtered
to those);
``sample_rate`` = 16000 for FLAC and parquet, 48000 for Opus (what an Opus stream decodes to).
OpenSLR: ``duration_s`` = segment end - start from ``segments.txt`` (``None`` if the utterance has no
segment), ``audio_uri`` = the audio file; ``meta`` = ``book_id``, ``url``, ``begin_time``,
``end_time``, ``limited_supervision`` (handle sets holding a train utterance, e.g. ``["1hr/0"]``)
and, from ``metainfo.txt``, ``speaker_gender``, ``speaker_partition``, ``speaker_minutes``, ``title``,
``chapter``.
Parquet: ``audio_uri`` = the parquet file, ``member`` = ``"<row>:audio"``, ``duration_s`` ←
``audio_duration``; ``meta`` = ``book_id`` (from ``chapter_id``), ``original_path``, ``begin_time``,
``end_time``, ``file``, ``audio_path``.

Rejects: audio absent → ``missing_file``; empty audio file or parquet cell → ``zero_byte``;
transcript line without a tab, or parquet row without ``id``/``transcript`` → ``malformed_metadata``.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator
from typing import Any, ClassVar

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason, parquet_member
from uniaudio.pipelines.sources import hf_tables
from uniaudio.pipelines.sources.base import Source, SourceError
from uniaudio.pipelines.sources.common import (
    audio_file_reject,
    parse_shard,
    read_text,
    relative_to,
    shard_count,
    shard_partitions,
)

__all__ = ["MLSSource"]

log = logging.getLogger(__name__)

LANGUAGES = {
    "english": "en", "german": "de", "dutch": "nl", "french": "fr",
    "spanish": "es", "italian": "it", "portuguese": "pt", "polish": "pl",
}
SPLITS = ("train", "dev", "test")
LIMITED = ("9hr", "1hr")
# HF split file prefix ↔ our split name
SHARD_BYTES = 64 * 2**20  # transcripts.txt bytes per partition (English train: ~30 partitions)
_HF_SPLITS = {"train": "train", "dev": "dev", "test": "test", "9_hours": "9hr", "1_hours": "1hr"}
# metainfo.txt columns, named as they land in ``meta``
_METAINFO_COLUMNS = ("speaker", "speaker_gender", "speaker_partition", "speaker_minutes", "book_id", "title", "chapter")
_METAINFO_META = _METAINFO_COLUMNS[1:4] + _METAINFO_COLUMNS[5:]


def _normalise_split(split: str | None) -> str | None:
    if split is None:
        return None
    name = _HF_SPLITS.get(split, split)
    if name not in (*SPLITS, *LIMITED):
        raise SourceError(f"mls split must be one of train, dev, test, 9hr, 1hr (or 9_hours, 1_hours), got {split!r}")
    return name


def _stream_lines(uri: str) -> Iterator[str]:
    """Lines of a text file read as a stream (English ``train/transcripts.txt`` is about 2 GB), no newline."""
    with storage.open_uri(uri, "rb") as f:
        for raw in f:
            yield raw.decode("utf-8-sig").rstrip("\r\n")


def _lang_name(directory: str) -> str:
    """``mls_german_opus`` → ``german``; a parquet ``german/`` directory → ``german``."""
    name = directory.rstrip("/").rsplit("/", 1)[-1]
    name = name.removeprefix("mls_").removesuffix("_opus")
    return name


class MLSSource(Source):
    """Multilingual LibriSpeech: OpenSLR FLAC/Opus trees and the HF parquet release.

    Options: ``language``, the MLS language name (``german``...) when the directories are not named
    ``mls_<lang>[_opus]`` / ``<lang>/``; ``shards``, partitions per OpenSLR split (default: one per
    64 MB of ``transcripts.txt``).
    """

    name: ClassVar[str] = "mls"
    layouts: ClassVar[tuple[str, ...]] = (
        "OpenSLR 94: mls_<lang>[_opus]/{metainfo.txt, train|dev|test/{transcripts,segments}.txt, audio/}",
        "HF parquet: <lang>/<split>-NNNNN-of-MMMMM.parquet",
    )
    accepted_options = ("language", "shards")

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        self.language: str | None = options.get("language")
        self.root = self.input_uri
        self.split_name = _normalise_split(split)
        self.openslr = any(storage.exists(storage.join(self.root, s, "transcripts.txt")) for s in SPLITS)
        self._metainfo: dict[tuple[str, str], dict[str, str]] | None = None

    def partitions(self) -> list[str]:
        if self.openslr:
            if self.split_name is None:
                wanted = SPLITS
            else:  # the limited-supervision sets are subsets of train
                wanted = ("train",) if self.split_name in LIMITED else (self.split_name,)
            found = [s for s in wanted if storage.exists(storage.join(self.root, s, "transcripts.txt"))]
            if not found:
                raise SourceError(f"{self.input_uri}: no {'/'.join(wanted)}/transcripts.txt")
            self._metainfo_rows()  # read once here, so the table travels with the source to the tasks
            shards = self.options.get("shards")
            return sorted(
                partition
                for split in found
                for partition in shard_partitions(
                    split, shard_count(shards, storage.join(self.root, split, "transcripts.txt"), SHARD_BYTES)
                )
            )
        files = [relative_to(self.root, uri) for uri in hf_tables.table_files(self.root)]
        if not files:
            raise SourceError(
                f"no MLS data under {self.input_uri}: expected <split>/transcripts.txt (OpenSLR 94) "
                "or <lang>/<split>-NNNNN-of-MMMMM.parquet (HF)"
            )
        if self.split_name is not None:
            files = [f for f in files if self._hf_split(f) == self.split_name]
        return sorted(files)

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        if partition.endswith(hf_tables.TABLE_SUFFIXES):
            yield from self._read_parquet(partition)
        else:
            yield from self._read_openslr(partition)

    # -- OpenSLR 94

    def _metainfo_rows(self) -> dict[tuple[str, str], dict[str, str]]:
        """``(speaker, book_id)`` → metainfo columns; header and malformed rows are skipped."""
        if self._metainfo is None:
            self._metainfo = {}
            uri = storage.join(self.root, "metainfo.txt")
            if storage.exists(uri):
                for line_no, line in enumerate(read_text(uri).splitlines(), start=1):
                    cells = [c.strip() for c in line.split("|")]
                    if not line.strip() or cells[0].upper() == "SPEAKER":  # blank or the header row
                        continue
                    if len(cells) < len(_METAINFO_COLUMNS):
                        log.warning("%s line %d: not a metainfo row: %r", uri, line_no, line)
                        continue
                    # a title may itself contain '|': everything between BOOK ID and CHAPTER is the title
                    row = [*cells[:5], "|".join(cells[5:-1]), cells[-1]]
                    self._metainfo[(row[0], row[4])] = dict(zip(_METAINFO_COLUMNS, row, strict=True))
        return self._metainfo

    def _handles(self, split_dir: str) -> dict[str, list[str]]:
        """utt id → the limited-supervision sets holding it (``1hr/0`` ... ``9hr``)."""
        base = storage.join(split_dir, "limited_supervision")
        found: dict[str, list[str]] = {}
        for uri in storage.glob(base, "*/handles.txt") + storage.glob(base, "*/*/handles.txt"):
            fold = posixpath.dirname(relative_to(base, uri))
            for line in read_text(uri).splitlines():
                if line.strip():
                    found.setdefault(line.strip(), []).append(fold)
        return found

    def _read_openslr(self, partition: str) -> Iterator[AudioRecord | Reject]:
        split, shard, count = parse_shard(partition)
        lang = self.language or _lang_name(self.root)
        split_dir = storage.join(self.root, split)
        transcripts = storage.join(split_dir, "transcripts.txt")
        lines: list[tuple[int, str, str]] = []  # this shard's (line number, utt id, text)
        for line_no, line in enumerate(_stream_lines(transcripts), start=1):
            if line_no % count != shard or not line.strip():
                continue
            utt, tab, text = line.partition("\t")
            if not tab or len(utt.strip().split("_")) != 3:
                ident = utt.strip().split()[0] if utt.strip() else f"{split}-line{line_no}"
                yield Reject(make_key(self.name, lang, ident), self.name, RejectReason.MALFORMED_METADATA,
                             f"{transcripts} line {line_no}: expected '<spk>_<book>_<utt>\\t<text>'")
                continue
            lines.append((line_no, utt.strip(), text))
        segments = self._segments(storage.join(split_dir, "segments.txt"), {utt for _, utt, _ in lines})
        handles = self._handles(split_dir) if split == "train" else {}
        ext, sample_rate = (".opus", 48000) if self._is_opus(split_dir) else (".flac", 16000)
        metainfo = self._metainfo_rows()
        for line_no, utt, text in lines:
            sets = handles.get(utt, [])
            if self.split_name in LIMITED and not any(s.split("/")[0] == self.split_name for s in sets):
                continue
            speaker, book, _ = utt.split("_")
            key = make_key(self.name, lang, utt)
            meta: dict[str, Any] = {"book_id": book}
            duration = None
            segment = segments.get(utt)
            if segment is not None:
                try:
                    url, begin, end = segment[0], float(segment[1]), float(segment[2])
                except (IndexError, ValueError):
                    yield Reject(key, self.name, RejectReason.MALFORMED_METADATA,
                                 f"{split_dir}/segments.txt: bad row for {utt}: {segment!r}")
                    continue
                duration = round(end - begin, 6)
                meta.update(url=url, begin_time=begin, end_time=end)
            if split == "train":
                meta["limited_supervision"] = sorted(sets)
            info = metainfo.get((speaker, book))
            if info is not None:
                meta.update({k: info[k] for k in _METAINFO_META})
            record = AudioRecord(
                key=key,
                source=self.name,
                audio_uri=storage.join(split_dir, "audio", speaker, book, utt + ext),
                duration_s=duration,
                sample_rate=sample_rate,
                text=text,
                speaker=speaker,
                language=LANGUAGES.get(lang),
                split=self.split_name or split,
                meta=meta,
            )
            yield audio_file_reject(self.name, key, record.audio_uri, f"{transcripts} line {line_no}") or record

    @staticmethod
    def _segments(uri: str, wanted: set[str]) -> dict[str, list[str]]:
        """``segments.txt`` fields (url, start, end) of the ``wanted`` utterances, streamed."""
        if not storage.exists(uri):
            return {}
        found: dict[str, list[str]] = {}
        for line in _stream_lines(uri):
            utt, _, rest = line.partition("\t")
            if utt in wanted:
                found[utt] = rest.split("\t")
        return found

    @staticmethod
    def _is_opus(split_dir: str) -> bool:
        """Probe the first audio file: the ``_opus`` release name is a convention, the files are the truth."""
        level = storage.join(split_dir, "audio")
        for _ in range(2):
            children = storage.list_dir(level)
            if not children:
                return False
            level = children[0]
        return any(uri.endswith(".opus") for uri in storage.list_dir(level))

    # -- HF parquet

    @staticmethod
    def _hf_split(partition: str) -> str | None:
        prefix = posixpath.basename(partition).split("-", 1)[0]
        return _HF_SPLITS.get(prefix)

    def _read_parquet(self, partition: str) -> Iterator[AudioRecord | Reject]:
        uri = storage.join(self.root, partition)
        lang = self.language or _lang_name(posixpath.dirname(storage.strip_scheme(uri)))
        split = self._hf_split(partition)
        for row_index, row in hf_tables.iter_table_rows(uri, audio_columns=("audio",)):
            where = f"{uri} row {row_index}"
            ident, transcript = row.get("id"), row.get("transcript")
            if not isinstance(ident, str) or not ident or not isinstance(transcript, str):
                yield Reject(make_key(self.name, lang, f"{posixpath.basename(partition)}-row{row_index}"),
                             self.name, RejectReason.MALFORMED_METADATA, f"{where}: no string 'id' / 'transcript'")
                continue
            key = make_key(self.name, lang, ident)
            audio = row.get("audio")
            if not isinstance(audio, hf_tables.AudioRef) or not audio.has_bytes:
                yield Reject(key, self.name, RejectReason.ZERO_BYTE, f"{where}: 'audio' holds no bytes")
                continue
            duration = row.get("audio_duration")
            yield AudioRecord(
                key=key,
                source=self.name,
                audio_uri=uri,
                member=parquet_member(row_index, "audio"),
                duration_s=round(float(duration), 6) if duration is not None else None,
                sample_rate=16000,
                text=transcript,
                speaker=ident.split("_")[0],
                language=LANGUAGES.get(lang),
                split=split,
                meta={
                    "book_id": row.get("chapter_id"),
                    "original_path": row.get("original_path"),
                    "begin_time": row.get("begin_time"),
                    "end_time": row.get("end_time"),
                    "file": row.get("file"),
                    "audio_path": audio.path,
                },
            )
