"""``hf``: any Hugging Face audio dataset, read from local files or the local caches, never downloaded.

INPUT (see :func:`~uniaudio.pipelines.sources.hf_tables.resolve_tables`) is a dataset name found in the
``datasets`` arrow cache or the hub snapshot cache (``org/name``; ``config``, ``revision``), a
``save_to_disk`` folder, a ``datasets`` cache folder, a folder of parquet/arrow files, or one such file.
``split`` keeps one split. One partition per parquet/arrow file (its path under the resolved root), so
the ingest pipeline reads the files of a sharded dataset in parallel, one Ray task each.

Options (:class:`HFOptions`, CLI ``--option key=value`` spelled as the field names) map columns onto the
record schema: ``audio_column`` (default ``audio``), ``text_column``, ``caption_column``,
``speaker_column``, ``language_column``, ``labels_column``, ``lyrics_column``, ``duration_column``,
``id_column``. An unmapped field stays ``None``. A mapped column that does not exist raises
:class:`SourceError` listing the columns that do.

Record mapping:

* ``key``: ``hf/<name>/<id>``; ``<id>`` is the ``id_column`` value, else ``<file>_<row>`` with ``<file>``
  the file's path under the root without suffix (``hf/dd/train/data-00000-of-00002_0``). ``name`` is the
  repo id, the folder or file stem, or the ``name`` option.
* ``audio_uri``: the parquet/arrow file, ``member`` ``"<row>:<audio_column>"``; the audio stage reads
  the cell back with :func:`~uniaudio.pipelines.sources.hf_tables.read_audio_cell`. Audio is never
  decoded here (the ``datasets`` ``Audio`` feature, which would need torchcodec, is not used). A cell
  without bytes whose ``path`` is an existing local file (arrow files ``datasets`` writes for processed
  datasets, e.g. by ``map``, keep paths) points at that file instead.
* ``duration_s`` from ``duration_column`` (else ``None``: the audio stage measures it);
  ``sample_rate`` ``None``; ``split`` from the layout (or the ``split`` asked for).
* ``meta``: ``audio_path`` (the cell's original file name) and ``hf_config``/``hf_revision`` when given.

Rejects: ``missing_file`` (no bytes and no readable path), ``malformed_metadata`` (empty id, or a
duration that is not a number).

``streaming`` reads each file batch by batch and only the mapped columns
(:func:`~uniaudio.pipelines.sources.hf_tables.stream_table_rows`): bounded memory for huge files.
Without it a file's table is loaded whole (arrow files are memory-mapped, parquet is read by batches).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason, parquet_member
from uniaudio.pipelines.sources.base import Source, SourceError
from uniaudio.pipelines.sources.hf_tables import (
    AudioRef,
    HFLocation,
    TableSet,
    is_dataset_name,
    iter_table_rows,
    resolve_tables,
    stream_table_rows,
    table_columns,
)

__all__ = ["HFOptions", "HFSource"]

# record field → option naming the column that fills it
_MAPPED_FIELDS = {
    "text": "text_column",
    "caption": "caption_column",
    "speaker": "speaker_column",
    "language": "language_column",
    "lyrics": "lyrics_column",
}


@dataclass(frozen=True)
class HFOptions:
    """What to read and how columns map onto :class:`AudioRecord` fields (``None``: not mapped)."""

    config: str | None = None
    revision: str | None = None
    name: str | None = None
    streaming: bool = False
    cache_dir: str | None = None
    hub_cache_dir: str | None = None
    audio_column: str = "audio"
    id_column: str | None = None
    text_column: str | None = None
    caption_column: str | None = None
    speaker_column: str | None = None
    language_column: str | None = None
    labels_column: str | None = None
    lyrics_column: str | None = None
    duration_column: str | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> HFOptions:
        """Build from CLI/keyword options (names: the fields); ``None`` values keep the defaults."""
        # the ingest CLI parses VALUE as JSON when it can: `-o config=2024` arrives as an int
        values = {k: str(v) for k, v in options.items() if v is not None and k != "streaming"}
        streaming = options.get("streaming", False)
        if isinstance(streaming, str):
            streaming = streaming.lower() in ("1", "true", "yes", "on")
        return cls(streaming=bool(streaming), **values)

    def columns(self) -> list[str]:
        """The dataset columns this mapping reads, audio first."""
        names = [self.audio_column, self.id_column, self.labels_column, self.duration_column]
        names += [getattr(self, option) for option in _MAPPED_FIELDS.values()]
        return list(dict.fromkeys(n for n in names if n))


class HFSource(Source):
    """Audio records from a Hugging Face dataset (module docstring: layouts, options, mapping)."""

    name = "hf"
    layouts = (
        "dataset name in the local cache: org/name (--option config=..., revision=...)",
        "save_to_disk folder: dataset_dict.json + <split>/data-0000N-of-0000M.arrow, or state.json + data-*.arrow",
        "datasets cache folder: dataset_info.json + <name>-<split>[-0000N-of-0000M].arrow",
        "folder of parquet/arrow files (hub snapshot: README.md configs, <config>/<split>-0000N-of-0000M.parquet)",
        "a single .parquet or .arrow file",
    )

    accepted_options = tuple(f.name for f in fields(HFOptions))

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        self.hf_options = HFOptions.from_options(options)
        if not storage.is_remote(input_uri) and not os.path.exists(input_uri) and is_dataset_name(input_uri):
            self.input_uri = input_uri  # a dataset name (org/name), not a path to make absolute

    @cached_property
    def tables(self) -> TableSet:
        location = HFLocation(
            input_uri=self.input_uri,
            config=self.hf_options.config,
            split=self.split,
            revision=self.hf_options.revision,
            cache_dir=self.hf_options.cache_dir,
            hub_cache_dir=self.hf_options.hub_cache_dir,
        )
        return resolve_tables(location)

    @property
    def dataset_name(self) -> str:
        return self.hf_options.name or self.tables.name

    def partitions(self) -> list[str]:
        partitions = sorted(self.tables.files)
        if not partitions:
            raise SourceError(f"{self.input_uri}: the dataset lists no data files")
        self._check_columns(self.tables.uri(partitions[0]))
        return partitions

    def _check_columns(self, uri: str) -> None:
        present = table_columns(uri)
        missing = [c for c in self.hf_options.columns() if c not in present]
        if missing:
            raise SourceError(
                f"{uri}: no column(s) {', '.join(missing)}; columns: {', '.join(present)} "
                "(map them with --option <field>_column=<name>)"
            )

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        if partition not in self.tables.files:
            raise SourceError(f"{self.input_uri}: unknown partition {partition!r}")
        uri = self.tables.uri(partition)
        self._check_columns(uri)
        split = self.tables.files[partition] or self.split
        file_id = partition.rsplit(".", 1)[0] if partition else self.tables.name.rsplit("/", 1)[-1]
        audio = self.hf_options.audio_column
        if self.hf_options.streaming:
            rows = stream_table_rows(uri, (audio,), columns=self.hf_options.columns())
        else:
            rows = iter_table_rows(uri, (audio,))
        for row_index, row in rows:
            yield self._record(uri, file_id, split, row_index, row)

    def _record(
        self, uri: str, file_id: str, split: str | None, row_index: int, row: dict[str, Any]
    ) -> AudioRecord | Reject:
        opts = self.hf_options
        row_id = f"{file_id}_{row_index}" if opts.id_column is None else row[opts.id_column]
        where = f"{uri} row {row_index}"
        if row_id is None or str(row_id).strip() == "":
            key = make_key("hf", self.dataset_name, f"{file_id}_{row_index}")
            return Reject(key, self.name, RejectReason.MALFORMED_METADATA, f"{where}: empty {opts.id_column!r}")
        key = make_key("hf", self.dataset_name, str(row_id))
        duration = row[opts.duration_column] if opts.duration_column else None
        if duration is not None and not isinstance(duration, int | float):
            detail = f"{where}: {opts.duration_column!r} is {duration!r}, not a number"
            return Reject(key, self.name, RejectReason.MALFORMED_METADATA, detail)
        ref: AudioRef = row[opts.audio_column]
        audio_uri, member = uri, parquet_member(row_index, opts.audio_column)
        if not ref.has_bytes:
            if not (ref.path and posixpath.isabs(ref.path) and os.path.isfile(ref.path)):
                detail = f"{where}: {opts.audio_column!r} has no bytes and no readable path ({ref.path!r})"
                return Reject(key, self.name, RejectReason.MISSING_FILE, detail)
            audio_uri, member = ref.path, None
        labels = row[opts.labels_column] if opts.labels_column else None
        meta = {"audio_path": ref.path, "hf_config": opts.config, "hf_revision": opts.revision}
        return AudioRecord(
            key=key,
            source=self.name,
            audio_uri=audio_uri,
            member=member,
            duration_s=None if duration is None else float(duration),
            labels=[] if labels is None else (list(labels) if isinstance(labels, list | tuple) else [labels]),
            split=split,
            meta={k: v for k, v in meta.items() if v is not None},
            **{field: row[getattr(opts, option)] for field, option in _MAPPED_FIELDS.items() if getattr(opts, option)},
        )
