"""CapSpeech: caption parquet (HF OpenSound/CapSpeech, text only) joined with the source corpora's audio.

Layout accepted: ``input_uri`` is a directory of parquet/arrow files (searched recursively, e.g.
``data/train_PT-00000-of-00004.parquet``) or one such file, read with
:mod:`~uniaudio.pipelines.sources.hf_tables`. Columns: ``audio_path``, ``text``, ``source``,
``speech_duration``, ``caption``; CapSpeech-PT adds ``pitch``, ``age``, ``gender``, ``speaking_rate``,
``speech_monotony``, ``accent``, ``noise`` and the tag lists ``intrinsic_tags``, ``situational_tags``,
``basic_tags``, ``all_tags``. One partition per file; the split is the file-name prefix before
``-NNNNN-of-NNNNN`` (``train_PT``), else the parent folder's name.

No audio ships with CapSpeech: ``audio_path`` is relative to the root of the corpus named in ``source``.
The map ``source → root`` (local paths or ``s3://`` URIs) comes from the options:

* ``source_roots``: a dict, e.g. ``{"mls": "/data/mls", "emilia": "s3://bucket/emilia"}`` (or the same
  mapping as an inline JSON/YAML string);
* ``roots_file``: a JSON or YAML file holding such a mapping (CLI-friendly); relative roots in it are
  resolved against the file's directory. Default: ``<input_uri>/source_roots.{json,yaml,yml}`` when
  present (a uniaudio convention, not part of the release). ``source_roots`` entries override the file's.

Record mapping: ``key`` ``capspeech/<split>/<source>/<audio_path without extension>``; ``audio_uri``
``<root of source>/<audio_path>``; ``text`` the transcript verbatim (CapTTS-SE tags such as
``<B_start>``/``<B_end>`` are kept); ``caption`` verbatim; ``duration_s`` ``speech_duration``;
``labels`` ``all_tags`` (PT) when present; ``split`` as above; ``meta``: ``capspeech_source``,
``audio_path`` and every other column (``pitch``, ``age``, ``gender``, tag lists, ...).

Rejects: ``unmapped_source`` (no root for ``source``), ``malformed_metadata`` (no ``audio_path`` or
``source``), ``missing_file``, ``zero_byte``.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Iterator
from typing import Any

import yaml

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources.base import Source, SourceError
from uniaudio.pipelines.sources.hf_tables import TABLE_SUFFIXES, iter_table_rows, table_files

__all__ = ["CapSpeechSource", "load_source_roots"]

_SHARD_NAME = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}")
DEFAULT_ROOTS_FILES = ("source_roots.json", "source_roots.yaml", "source_roots.yml")
MAPPED_COLUMNS = ("audio_path", "text", "source", "speech_duration", "caption", "all_tags")


def _parse_mapping(text: str) -> Any:
    """JSON, else YAML (a JSON file indented with tabs is not valid YAML)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return yaml.safe_load(text)


def load_source_roots(roots_file: str) -> dict[str, str]:
    """``source → root`` from a JSON/YAML file; relative roots are taken relative to the file."""
    data = _parse_mapping(storage.read_bytes(roots_file).decode("utf-8"))
    if not isinstance(data, dict):
        raise SourceError(f"{roots_file}: expected a mapping of CapSpeech source name → corpus root")
    base = posixpath.dirname(roots_file) if storage.is_remote(roots_file) else os.path.dirname(roots_file)
    roots: dict[str, str] = {}
    for name, root in data.items():
        root = str(root)
        if not storage.is_remote(root) and not os.path.isabs(root):
            root = storage.join(base, root)
        roots[str(name)] = root
    return roots


def split_of(partition: str) -> str | None:
    """``data/train_PT-00000-of-00004.parquet`` → ``train_PT``; else the parent folder name."""
    base = posixpath.basename(partition)
    match = _SHARD_NAME.match(base)
    if match:
        return match["split"]
    return posixpath.basename(posixpath.dirname(partition)) or None


class CapSpeechSource(Source):
    name = "capspeech"
    layouts = (
        "CapSpeech parquet (audio_path, text, source, speech_duration, caption[, PT columns]) "
        "+ source_roots / roots_file mapping each source to its corpus root",
    )
    accepted_options = ("source_roots", "roots_file")

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        roots: dict[str, str] = {}
        roots_file = options.get("roots_file") or self._default_roots_file()
        if roots_file:
            roots.update(load_source_roots(str(roots_file)))
        given = options.get("source_roots") or {}
        if isinstance(given, str):  # CLI form: an inline JSON/YAML mapping
            given = _parse_mapping(given)
        if not isinstance(given, dict):
            raise SourceError(f"source_roots must map CapSpeech source names to corpus roots, got {given!r}")
        roots.update({str(k): str(v) for k, v in given.items()})
        self.source_roots = roots

    def _default_roots_file(self) -> str | None:
        if self.input_uri.endswith(TABLE_SUFFIXES):
            return None
        for name in DEFAULT_ROOTS_FILES:
            uri = storage.join(self.input_uri, name)
            if storage.exists(uri):
                return uri
        return None

    def partitions(self) -> list[str]:
        if self.input_uri.endswith(TABLE_SUFFIXES):
            if not storage.exists(self.input_uri):
                raise SourceError(f"{self.input_uri}: file not found")
            parts = [posixpath.basename(self.input_uri)]
        else:
            files = table_files(self.input_uri)
            if not files:
                raise SourceError(f"{self.input_uri}: no CapSpeech parquet/arrow files")
            parts = [f[len(self.input_uri) :].lstrip("/") for f in files]
        return sorted(p for p in parts if self.split in (None, split_of(p)))

    def _file_uri(self, partition: str) -> str:
        if self.input_uri.endswith(TABLE_SUFFIXES):
            return self.input_uri
        return storage.join(self.input_uri, partition)

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        uri = self._file_uri(partition)
        split = split_of(partition)
        for row_index, row in iter_table_rows(uri):
            where = f"{uri} row {row_index}"
            source = str(row.get("source") or "").strip()
            audio_path = str(row.get("audio_path") or "").strip()
            if not source or not audio_path:
                shard = posixpath.basename(partition).split(".", 1)[0]
                key = make_key(self.name, split or "all", shard, f"row{row_index}")
                detail = f"{where}: no source or audio_path"
                yield Reject(key, self.name, RejectReason.MALFORMED_METADATA, detail)
                continue
            stem = posixpath.splitext(audio_path.lstrip("/"))[0]
            key = make_key(self.name, split or "all", source, stem)
            root = self.source_roots.get(source)
            if root is None:
                known = ", ".join(sorted(self.source_roots)) or "none"
                detail = f"{where}: source {source!r} has no root (mapped: {known})"
                yield Reject(key, self.name, RejectReason.UNMAPPED_SOURCE, detail)
                continue
            audio_uri = storage.join(root, audio_path.lstrip("/"))
            try:
                num_bytes = storage.size(audio_uri)  # one stat: also tells a missing file
            except FileNotFoundError:
                yield Reject(key, self.name, RejectReason.MISSING_FILE, f"{where}: {audio_uri} not found")
                continue
            if num_bytes == 0:
                yield Reject(key, self.name, RejectReason.ZERO_BYTE, f"{where}: {audio_uri} is empty")
                continue
            duration = row.get("speech_duration")
            meta = {k: v for k, v in row.items() if k not in MAPPED_COLUMNS}
            yield AudioRecord(
                key=key,
                source=self.name,
                audio_uri=audio_uri,
                duration_s=None if duration is None else round(float(duration), 6),
                text=row.get("text"),
                caption=row.get("caption"),
                labels=list(row.get("all_tags") or []),
                split=split,
                meta={"capspeech_source": source, "audio_path": audio_path, **meta},
            )
