"""LibriSpeech (OpenSLR 12) and Mini LibriSpeech.

Layout accepted (``INPUT_URI`` = the ``LibriSpeech/`` directory): ``{SPEAKERS,CHAPTERS,BOOKS}.TXT`` and
``<part>/<spk>/<chapter>/<spk>-<chapter>-<utt4>.flac`` with ``<spk>-<chapter>.trans.txt`` (lines
``<uttid> UPPERCASE TEXT``) and, optionally, ``<spk>-<chapter>.alignment.txt`` (lines
``<uttid> ",W1,,W2," "t1,t2,..."``, empty words are silences, times are end times in seconds). Parts
(``dev-clean``, ``test-other``, ``train-clean-100``, ``train-clean-5`` ...) are optional: whatever is
present is read. Partitions: one per chapter directory (``<part>/<spk>/<chapter>``).

``split``: a part name (``dev-clean``); the part must exist.

Record mapping: key ``librispeech/<uttid>`` (``1272-128104-0000``); ``text`` ← the transcript
(verbatim, uppercase); ``speaker`` = ``<spk>``; ``language`` = ``en``; ``sample_rate`` = 16000;
``split`` = the part; ``duration_s`` = the last alignment time when an alignment file covers the
utterance, else ``None`` (no metadata duration); ``meta`` = ``chapter_id`` and, from ``SPEAKERS.TXT``
(split with ``maxsplit=4``: speaker 60's name is ``|CBW|Simon``), ``speaker_sex``, ``speaker_subset``,
``speaker_minutes``, ``speaker_name``; plus ``alignment`` = ``[[word, start, end], ...]`` (silences
dropped) when aligned.

Rejects: FLAC absent → ``missing_file``; empty → ``zero_byte``; transcript line without text or with
an id that is not ``<spk>-<chapter>-<n>`` → ``malformed_metadata``.

:func:`read_chapter` and :func:`parse_speakers` are reused by the LibriLight fine-tuning set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, ClassVar

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources.base import Source, SourceError
from uniaudio.pipelines.sources.common import audio_file_reject, read_text, relative_to

__all__ = ["LibriSpeechSource", "parse_alignments", "parse_speakers", "read_chapter"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def parse_speakers(text: str) -> dict[str, dict[str, str]]:
    """``SPEAKERS.TXT`` rows ``ID | SEX | SUBSET | MINUTES | NAME`` by id (``;`` lines are comments).

    ``maxsplit=4`` keeps names containing ``|`` whole (speaker 60 is ``|CBW|Simon``).
    """
    speakers: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        cells = [c.strip() for c in line.split("|", 4)]
        if len(cells) != 5:
            log.warning("SPEAKERS.TXT: not a speaker row: %r", line)
            continue
        speakers[cells[0]] = {
            "speaker_sex": cells[1],
            "speaker_subset": cells[2],
            "speaker_minutes": cells[3],
            "speaker_name": cells[4],
        }
    return speakers


def parse_alignments(text: str) -> dict[str, list[tuple[str, float, float]]]:
    """``<uttid> ",W1,,W2," "t1,t2,..."`` lines → utt id → ``[(word, start, end), ...]`` including silences."""
    alignments: dict[str, list[tuple[str, float, float]]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3:
            continue
        words = fields[1].strip('"').split(",")
        try:
            ends = [float(t) for t in fields[2].strip('"').split(",")]
        except ValueError:
            log.warning("alignment line with bad times: %r", line)
            continue
        if len(words) != len(ends):
            log.warning("alignment line with %d words but %d times: %r", len(words), len(ends), line)
            continue
        starts = [0.0, *ends[:-1]]
        alignments[fields[0]] = list(zip(words, starts, ends, strict=True))
    return alignments


def read_chapter(
    source: str,
    trans_uri: str,
    part: str,
    speakers: dict[str, dict[str, str]],
    key_prefix: tuple[str, ...] = (),
) -> Iterator[AudioRecord | Reject]:
    """Records of one chapter directory in LibriSpeech tree format, from its ``.trans.txt``."""
    chapter_dir = trans_uri.rsplit("/", 1)[0]
    base = trans_uri.rsplit("/", 1)[1].removesuffix(".trans.txt")
    align_uri = storage.join(chapter_dir, f"{base}.alignment.txt")
    alignments = parse_alignments(read_text(align_uri)) if storage.exists(align_uri) else {}
    for line_no, line in enumerate(read_text(trans_uri).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split(maxsplit=1)
        utt = fields[0]
        ids = utt.split("-")
        where = f"{trans_uri} line {line_no}"
        key = make_key(source, *key_prefix, utt)
        if len(fields) != 2 or len(ids) != 3:
            yield Reject(key, source, RejectReason.MALFORMED_METADATA, f"{where}: expected '<spk>-<ch>-<n> TEXT'")
            continue
        speaker, chapter, _ = ids
        meta: dict[str, Any] = {"chapter_id": chapter, **speakers.get(speaker, {})}
        duration = None
        if utt in alignments:
            duration = alignments[utt][-1][2]
            meta["alignment"] = [[w, s, e] for w, s, e in alignments[utt] if w]
        record = AudioRecord(
            key=key,
            source=source,
            audio_uri=storage.join(chapter_dir, f"{utt}.flac"),
            duration_s=duration,
            sample_rate=SAMPLE_RATE,
            text=fields[1],
            speaker=speaker,
            language="en",
            split=part,
            meta=meta,
        )
        yield audio_file_reject(source, key, record.audio_uri, where) or record


class LibriSpeechSource(Source):
    """LibriSpeech tree (``<part>/<spk>/<chapter>/``); see the module docstring. No options."""

    name: ClassVar[str] = "librispeech"
    layouts: ClassVar[tuple[str, ...]] = (
        "LibriSpeech/<part>/<spk>/<chapter>/{<spk>-<chapter>.trans.txt, <uttid>.flac} [+ SPEAKERS.TXT]",
    )

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        self.root = self.input_uri
        self._speakers: dict[str, dict[str, str]] | None = None

    def partitions(self) -> list[str]:
        base = self.root if self.split is None else storage.join(self.root, self.split)
        found = storage.glob(base, "*/*/*.trans.txt" if self.split else "*/*/*/*.trans.txt")
        if not found:
            where = f"part {self.split!r}" if self.split else "any part"
            raise SourceError(f"no LibriSpeech chapters for {where} under {self.input_uri}: "
                              "expected <part>/<spk>/<chapter>/<spk>-<chapter>.trans.txt")
        self.speakers()  # read once here, so the table travels with the source to every partition task
        return sorted(relative_to(self.root, uri).rsplit("/", 1)[0] for uri in found)

    def speakers(self) -> dict[str, dict[str, str]]:
        if self._speakers is None:
            uri = storage.join(self.root, "SPEAKERS.TXT")
            self._speakers = parse_speakers(read_text(uri)) if storage.exists(uri) else {}
        return self._speakers

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        part, speaker, chapter = partition.split("/")
        trans = storage.join(self.root, partition, f"{speaker}-{chapter}.trans.txt")
        yield from read_chapter(self.name, trans, part, self.speakers())
