"""Source ``records``: the output of ``uniaudio ingest`` read back as a source.

This is how the data flow's second arrow runs on its own: ``uniaudio ingest SOURCE CORPUS OUT`` once
(metadata checked, audio decoded and filtered, durations measured), then
``uniaudio shards build records OUT TOKENS`` as often as needed (another codec, another cluster).

Layout: ``<input>/records/part-*.parquet`` (RECORD_SCHEMA), ``<input>/_progress/*.json`` (done-markers)
and ``<input>/summary.json``. Only parts the last ingest run finished are read: a part is a partition
when its done-marker is complete, carries the settings fingerprint named in ``summary.json`` and lists
the part (``parts.records``) with its content hash. Parts cut short by ``ingest --limit``, parts of a
partition that failed, and parts left by an earlier run with other settings (e.g. another ``--split``)
are skipped, with a warning. The partition id is ``<part name>@<content hash>``, so a part that
ingest rewrites is a new partition for ``shards build`` (its done-marker does not cover it), and
reading a part whose bytes no longer match raises. Records come back exactly as ingest wrote them.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq

from uniaudio.core import storage
from uniaudio.pipelines.records import RECORD_SCHEMA, AudioRecord, Reject
from uniaudio.pipelines.sources.base import Source, SourceError

log = logging.getLogger(__name__)


class RecordsSource(Source):
    """Audio records from an ingest output directory (module docstring)."""

    name = "records"
    layouts = ("uniaudio ingest output: <input>/records/part-*.parquet + _progress/*.json + summary.json",)

    def _summary(self) -> dict[str, Any]:
        uri = storage.join(self.input_uri, "summary.json")
        if not storage.exists(uri):
            if storage.exists(storage.join(self.input_uri, "_progress")):
                raise SourceError(f"{self.input_uri}: the ingest has not finished (no summary.json); "
                                  "run the same `uniaudio ingest` again to complete it")
            raise SourceError(f"{self.input_uri} is not a uniaudio ingest output (no summary.json, no _progress/)")
        summary = json.loads(storage.read_bytes(uri))
        if not summary.get("fingerprint"):
            raise SourceError(f"{uri} names no settings fingerprint (written by an older uniaudio); "
                              "re-run the ingest to refresh it")
        return summary

    def partitions(self) -> list[str]:
        fingerprint = self._summary()["fingerprint"]
        found, partial, other = [], 0, 0
        for uri in storage.glob(storage.join(self.input_uri, "_progress"), "*.json"):
            marker = json.loads(storage.read_bytes(uri))
            if marker.get("fingerprint") != fingerprint:
                other += 1
            elif not marker.get("complete"):
                partial += 1
            else:
                found += [f"{p['name']}@{p['sha1']}" for p in (marker.get("parts") or {}).get("records", [])]
        if partial or other:
            log.warning("%s: skipping %d partial (ingest --limit or failed) and %d other-settings partition(s); "
                        "re-run the ingest without --limit to include them", self.input_uri, partial, other)
        return sorted(found)

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        name, _, sha1 = partition.partition("@")
        uri = storage.join(self.input_uri, "records", name)
        data = storage.read_bytes(uri)
        if hashlib.sha1(data).hexdigest()[:16] != sha1:
            raise SourceError(f"{uri} changed since it was listed (content hash is not {sha1}); "
                              "is an ingest writing to it? re-run the build once it has finished")
        for row in pq.read_table(io.BytesIO(data), schema=RECORD_SCHEMA).to_pylist():
            yield AudioRecord.from_row(row)
