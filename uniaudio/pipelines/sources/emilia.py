"""Emilia and Emilia-YODAS (amphion/Emilia-Dataset; OpenDataLab raw release).

Layouts accepted (``INPUT_URI`` is the dataset root or any directory above the tars / JSONL files,
up to three levels):

* **HF WebDataset** (current release): ``Emilia/<LANG>/<LANG>-B000000.tar`` and
  ``Emilia-YODAS/<LANG>/<LANG>-B000000.tar``; each tar holds flat ``<id>.mp3`` + ``<id>.json`` pairs,
  in either order. Members are paired by their stem (the member name up to the first dot), never by
  the JSON's ``wav`` field (a path in the raw layout). One partition per tar.
* **raw** (OpenDataLab / first HF release, extracted): ``[raw/]<LANG>/<LANG>_B00000.jsonl`` with one
  JSON object per line, audio at ``<LANG>/<wav>`` (``wav`` =
  ``<LANG>_B00000/<LANG>_B00000_S00000/mp3/<id>.mp3``, relative to the JSONL's directory). One
  partition per JSONL file. The shipped ``.tar.gz`` archives must be extracted first.

Record mapping: key ``emilia/<id>`` (JSON ``id``; the member stem if absent); ``text`` ← ``text``
(its leading space stripped); ``duration_s`` ← ``duration``; ``speaker`` ← ``speaker``; ``language``
← ``language`` (lowercase, ``en``); ``sample_rate`` = 24000 (Emilia-Pipe writes 24 kHz mono MP3);
``split`` = ``None`` (the corpus has none; passing a split is an error). Tars: ``audio_uri`` = the
tar, ``member`` = the ``.mp3`` member name. Raw: ``audio_uri`` = the mp3, ``member`` = ``None``.
``meta`` = ``{"subset": "Emilia" | "Emilia-YODAS", ...}`` plus every other JSON key (``dnsmos``,
``wav``, YODAS ``phone_count``).

Rejects: tar member without its pair → ``orphan_member``; unparsable JSON or a JSON without a string
``text`` → ``malformed_metadata``; zero-byte mp3 member or file → ``zero_byte``; raw mp3 absent →
``missing_file``; unreadable tar → ``malformed_metadata`` for the whole tar.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Iterator
from typing import Any, ClassVar

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources.base import Source, SourceError
from uniaudio.pipelines.sources.common import audio_file_reject, relative_to

__all__ = ["EmiliaSource"]

SAMPLE_RATE = 24000
_MAPPED = ("id", "text", "duration", "speaker", "language")


def _member_stem(name: str) -> tuple[str, str]:
    """WebDataset convention: key = path up to the first dot of the basename, extension = the rest."""
    directory, base = posixpath.split(name)
    stem, _, ext = base.partition(".")
    return posixpath.join(directory, stem), ext.lower()


class EmiliaSource(Source):
    """Emilia / Emilia-YODAS: HF WebDataset tars and the raw JSONL + mp3 tree. No options."""

    name: ClassVar[str] = "emilia"
    layouts: ClassVar[tuple[str, ...]] = (
        "HF WebDataset: Emilia[-YODAS]/<LANG>/<LANG>-B000000.tar with <id>.mp3 + <id>.json",
        "raw: [raw/]<LANG>/<LANG>_B00000.jsonl + <LANG>_B00000/<LANG>_B00000_S00000/mp3/<id>.mp3",
    )

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        if split is not None:
            raise SourceError(f"emilia has no splits (got split={split!r}); read {input_uri} without one")
        self.root = self.input_uri

    def partitions(self) -> list[str]:
        found = [
            uri
            for depth in ("*", "*/*", "*/*/*")  # tars/JSONL sit at most 3 levels down; never walk the mp3 tree
            for uri in storage.glob(self.root, depth)
            if uri.endswith((".tar", ".jsonl"))
        ]
        if not found:
            raise SourceError(
                f"no Emilia data under {self.input_uri}: expected Emilia[-YODAS]/<LANG>/<LANG>-B000000.tar "
                "or [raw/]<LANG>/<LANG>_B00000.jsonl"
            )
        return sorted(relative_to(self.root, uri) for uri in found)

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        uri = storage.join(self.root, partition)
        subset = "Emilia-YODAS" if "Emilia-YODAS" in storage.strip_scheme(uri).split("/") else "Emilia"
        if partition.endswith(".tar"):
            yield from self._read_tar(uri, subset)
        else:
            yield from self._read_jsonl(uri, subset)

    # -- shared

    def _parse(self, raw: bytes | str, fallback_id: str, where: str) -> dict[str, Any] | Reject:
        """The JSON object of one clip, or a ``malformed_metadata`` reject."""
        try:
            item = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return Reject(make_key(self.name, fallback_id), self.name, RejectReason.MALFORMED_METADATA,
                          f"{where}: not JSON ({exc})")
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            return Reject(make_key(self.name, fallback_id), self.name, RejectReason.MALFORMED_METADATA,
                          f"{where}: no string 'text'")
        item.setdefault("id", fallback_id)
        return item

    def _record(
        self, item: dict[str, Any], audio_uri: str, member: str | None, subset: str, where: str
    ) -> AudioRecord | Reject:
        key = make_key(self.name, str(item["id"]))
        try:
            duration = float(item["duration"]) if item.get("duration") is not None else None
        except (TypeError, ValueError):
            return Reject(key, self.name, RejectReason.MALFORMED_METADATA,
                          f"{where}: bad duration {item.get('duration')!r}")
        return AudioRecord(
            key=key,
            source=self.name,
            audio_uri=audio_uri,
            member=member,
            duration_s=duration,
            sample_rate=SAMPLE_RATE,
            text=item["text"],
            speaker=item.get("speaker"),
            language=item.get("language"),
            meta={"subset": subset, **{k: v for k, v in item.items() if k not in _MAPPED}},
        )

    # -- HF WebDataset tars

    def _read_tar(self, uri: str, subset: str) -> Iterator[AudioRecord | Reject]:
        metadata: dict[str, tuple[str, bytes]] = {}  # stem → (json member, bytes), waiting for its mp3
        audio: dict[str, tarfile.TarInfo] = {}  # stem → mp3 member, waiting for its json
        try:
            with storage.open_uri(uri, "rb") as f, tarfile.open(fileobj=f, mode="r:") as tar:
                for info in tar:
                    if not info.isfile():
                        continue
                    stem, ext = _member_stem(info.name)
                    if ext == "json":
                        data = tar.extractfile(info).read()
                        if stem in audio:
                            yield self._tar_pair(uri, stem, info.name, data, audio.pop(stem), subset)
                        else:
                            metadata[stem] = (info.name, data)
                    elif ext == "mp3":
                        if stem in metadata:
                            name, data = metadata.pop(stem)
                            yield self._tar_pair(uri, stem, name, data, info, subset)
                        else:
                            audio[stem] = info
                    else:
                        yield Reject(make_key(self.name, posixpath.basename(stem)), self.name,
                                     RejectReason.ORPHAN_MEMBER, f"{uri}: unexpected member {info.name}")
        except tarfile.TarError as exc:
            tar_id = posixpath.basename(uri).partition(".")[0]
            yield Reject(make_key(self.name, tar_id), self.name, RejectReason.MALFORMED_METADATA,
                         f"{uri}: unreadable tar ({exc})")
            return
        for stem, (name, _) in metadata.items():
            yield Reject(make_key(self.name, posixpath.basename(stem)), self.name, RejectReason.ORPHAN_MEMBER,
                         f"{uri}: {name} has no .mp3 member")
        for stem, info in audio.items():
            yield Reject(make_key(self.name, posixpath.basename(stem)), self.name, RejectReason.ORPHAN_MEMBER,
                         f"{uri}: {info.name} has no .json member")

    def _tar_pair(
        self, uri: str, stem: str, json_name: str, data: bytes, mp3: tarfile.TarInfo, subset: str
    ) -> AudioRecord | Reject:
        where = f"{uri}:{json_name}"
        item = self._parse(data, posixpath.basename(stem), where)
        if isinstance(item, Reject):
            return item
        record = self._record(item, uri, mp3.name, subset, where)
        if isinstance(record, AudioRecord) and mp3.size == 0:
            return Reject(record.key, self.name, RejectReason.ZERO_BYTE, f"{uri}: member {mp3.name} is empty")
        return record

    # -- raw JSONL + mp3 tree

    def _read_jsonl(self, uri: str, subset: str) -> Iterator[AudioRecord | Reject]:
        base = uri.rsplit("/", 1)[0]
        batch = posixpath.basename(uri).rsplit(".", 1)[0]
        with storage.open_uri(uri, "rb") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{uri} line {line_no}"
                item = self._parse(line, f"{batch}-line{line_no}", where)
                if isinstance(item, Reject):
                    yield item
                    continue
                wav = item.get("wav")
                if not isinstance(wav, str) or not wav:
                    yield Reject(make_key(self.name, str(item["id"])), self.name,
                                 RejectReason.MALFORMED_METADATA, f"{where}: no 'wav' path")
                    continue
                record = self._record(item, storage.join(base, wav), None, subset, where)
                if isinstance(record, AudioRecord):
                    yield audio_file_reject(self.name, record.key, record.audio_uri, where) or record
                else:
                    yield record
