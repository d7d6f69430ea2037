"""Source ``records``: the output of ``uniaudio ingest`` read back as a source.

This is how the data flow's second arrow runs on its own: ``uniaudio ingest SOURCE CORPUS OUT`` once
(metadata checked, audio decoded and filtered, durations measured), then
``uniaudio shards build records OUT TOKENS`` as often as needed (another codec, another cluster).

Layout: ``<input>/records/part-*.parquet`` (RECORD_SCHEMA); one partition per part file. Records come
back exactly as ingest wrote them (keys, measured offsets and durations, labels, meta).
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow.parquet as pq

from uniaudio.core import storage
from uniaudio.pipelines.records import RECORD_SCHEMA, AudioRecord, Reject
from uniaudio.pipelines.sources.base import Source, SourceError


class RecordsSource(Source):
    """Audio records from an ingest output directory (module docstring)."""

    name = "records"
    layouts = ("uniaudio ingest output: <input>/records/part-*.parquet (+ rejects/, _progress/)",)

    def partitions(self) -> list[str]:
        parts = storage.glob(storage.join(self.input_uri, "records"), "part-*.parquet")
        if not parts and not storage.exists(storage.join(self.input_uri, "_progress")):
            raise SourceError(f"{self.input_uri} is not a uniaudio ingest output (no records/part-*.parquet)")
        return [uri.rsplit("/", 1)[-1] for uri in parts]

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        with storage.open_uri(storage.join(self.input_uri, "records", partition)) as f:
            table = pq.read_table(f, schema=RECORD_SCHEMA)
        for row in table.to_pylist():
            yield AudioRecord.from_row(row)
