"""LibriLight (facebookresearch/libri-light): unlabelled chapters cut by voice activity, plus the
``librispeech_finetuning`` set.

Layout accepted (``INPUT_URI`` = the LibriLight root):

* ``{small,medium,large,duplicate}/<speakerID>/<book_name>/<file>.flac`` each with a same-stem
  ``<file>.json``: ``speaker``, ``book_meta`` {``id``, ``title``, ``genre`` list, ...}, ``snr``,
  ``voice_activity`` ``[[on, off], ...]`` in seconds. The JSON is found by swapping the file's own
  suffix (never by replacing "flac" anywhere in the path: directory names may contain it). Book
  directory names carry punctuation. Partitions: one per speaker directory (``small/960``).
* ``librispeech_finetuning/{1h/{0..5},9h}/{clean,other}/<spk>/<chapter>/`` in LibriSpeech tree format
  (read with :func:`uniaudio.pipelines.sources.librispeech.read_chapter`). Partitions: one per chapter
  directory.

``split``: one top-level directory (``small``, ``medium``, ``large``, ``duplicate``,
``librispeech_finetuning``); it must exist.

Record mapping, unlabelled subsets: one record per ``voice_activity`` span; key
``librilight/<subset>/<speaker>/<book>/<file>/<span index>``; ``offset_s`` = on, ``duration_s`` = off - on;
``speaker`` ← JSON ``speaker`` (the directory id if absent); ``text`` = ``None``; ``language`` = ``en``;
``sample_rate`` = 16000; ``split`` = the subset; ``meta`` = ``book_meta``, ``snr`` and any other JSON
key except ``voice_activity``. Fine-tuning set: as LibriSpeech (``text``, ``speaker``, no duration),
key ``librilight/librispeech_finetuning/<uttid>``, ``split`` = e.g. ``1h/0/clean``.

Rejects: FLAC without JSON or JSON without FLAC → ``missing_file``; empty FLAC → ``zero_byte``;
unparsable JSON or a bad span → ``malformed_metadata``; a file with no span → ``silent``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources.base import Source, SourceError
from uniaudio.pipelines.sources.common import audio_file_reject, relative_to
from uniaudio.pipelines.sources.librispeech import SAMPLE_RATE, read_chapter

__all__ = ["LibriLightSource"]

SUBSETS = ("small", "medium", "large", "duplicate")
FINETUNING = "librispeech_finetuning"


class LibriLightSource(Source):
    """LibriLight VAD-cut chapters and the fine-tuning set; see the module docstring. No options."""

    name: ClassVar[str] = "librilight"
    layouts: ClassVar[tuple[str, ...]] = (
        "{small,medium,large,duplicate}/<spk>/<book>/<file>.flac + <file>.json (voice_activity)",
        "librispeech_finetuning/{1h/<n>,9h}/{clean,other}/<spk>/<chapter>/ (LibriSpeech format)",
    )

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        if split is not None and split not in (*SUBSETS, FINETUNING):
            raise SourceError(f"librilight split must be one of {', '.join((*SUBSETS, FINETUNING))}, got {split!r}")
        self.root = self.input_uri

    def partitions(self) -> list[str]:
        found: list[str] = []
        for subset in SUBSETS:
            if self.split in (None, subset):
                found += [relative_to(self.root, uri) for uri in storage.list_dir(storage.join(self.root, subset))]
        if self.split in (None, FINETUNING):
            trans = storage.glob(storage.join(self.root, FINETUNING), "**/*.trans.txt")
            found += [relative_to(self.root, uri).rsplit("/", 1)[0] for uri in trans]
        if not found:
            raise SourceError(
                f"no LibriLight data under {self.input_uri} (split={self.split}): expected "
                "{small,medium,large,duplicate}/<spk>/ or librispeech_finetuning/"
            )
        return sorted(found)

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        if partition.startswith(FINETUNING + "/"):
            parts = partition.split("/")
            trans = storage.join(self.root, partition, f"{parts[-2]}-{parts[-1]}.trans.txt")
            yield from read_chapter(self.name, trans, "/".join(parts[1:-2]), {}, key_prefix=(FINETUNING,))
        else:
            yield from self._read_speaker(partition)

    def _read_speaker(self, partition: str) -> Iterator[AudioRecord | Reject]:
        subset, speaker_dir = partition.split("/")
        base = storage.join(self.root, partition)
        flacs = {uri.removesuffix(".flac"): uri for uri in storage.glob(base, "*/*.flac")}
        jsons = {uri.removesuffix(".json"): uri for uri in storage.glob(base, "*/*.json")}
        for stem in sorted(flacs.keys() | jsons.keys()):
            book, name = relative_to(base, stem).split("/")
            file_key = make_key(self.name, subset, speaker_dir, book, name)
            if stem not in jsons:
                yield Reject(file_key, self.name, RejectReason.MISSING_FILE,
                             f"{flacs[stem]}: no {stem.rsplit('/', 1)[1]}.json beside it")
                continue
            if stem not in flacs:
                yield Reject(file_key, self.name, RejectReason.MISSING_FILE,
                             f"{jsons[stem]}: no {stem.rsplit('/', 1)[1]}.flac beside it")
                continue
            problem = audio_file_reject(self.name, file_key, flacs[stem], jsons[stem])
            if problem is not None:
                yield problem
                continue
            yield from self._spans(subset, speaker_dir, book, name, flacs[stem], jsons[stem])

    def _spans(
        self, subset: str, speaker_dir: str, book: str, name: str, flac: str, json_uri: str
    ) -> Iterator[AudioRecord | Reject]:
        file_key = make_key(self.name, subset, speaker_dir, book, name)
        try:
            info = json.loads(storage.read_bytes(json_uri))
            spans = info["voice_activity"]
            if not isinstance(spans, list):
                raise TypeError("voice_activity is not a list")
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            yield Reject(file_key, self.name, RejectReason.MALFORMED_METADATA, f"{json_uri}: {exc!r}")
            return
        if not spans:
            yield Reject(file_key, self.name, RejectReason.SILENT, f"{json_uri}: empty voice_activity")
            return
        meta = {k: v for k, v in info.items() if k not in ("voice_activity", "speaker")}
        for index, span in enumerate(spans):
            key = make_key(self.name, subset, speaker_dir, book, name, str(index))
            try:
                on, off = float(span[0]), float(span[1])
                if off <= on:
                    raise ValueError("end before start")
            except (TypeError, ValueError, IndexError) as exc:
                yield Reject(key, self.name, RejectReason.MALFORMED_METADATA,
                             f"{json_uri}: voice_activity[{index}] = {span!r}: {exc}")
                continue
            yield AudioRecord(
                key=key,
                source=self.name,
                audio_uri=flac,
                offset_s=on,
                duration_s=round(off - on, 6),
                sample_rate=SAMPLE_RATE,
                speaker=str(info.get("speaker") or speaker_dir),
                language="en",
                split=subset,
                meta=meta,
            )
