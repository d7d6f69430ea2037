"""Ingest: a corpus source → filtered audio records (Parquet) + rejects, resumable per partition.

Data flow (Ray Data, CPU tasks, one CPU each)::

    from_items(partitions) ─ flat_map(PartitionReadStage)                    one task per partition,
                           │                                                 metadata only
                           ─ map_batches(AudioStage(keep_audio=False))       decode, cut, window, filter
                           ─ driver: collect each partition's rows; when all of its inputs are in,
                             write its parts, then its done-marker

Output layout under ``OUTPUT_URI`` (``<h>`` = first 16 hex digits of the SHA-1 of the partition id)::

    records/part-<h>.parquet   kept records (RECORD_SCHEMA; measured offset/duration/sample_rate)
    rejects/part-<h>.parquet   rejects (REJECT_SCHEMA: key, source, reason, detail)
    _progress/<h>.json         done-marker: partition id, complete flag, settings fingerprint, the parts
                               written (name, rows, content hash), tally
    summary.json               records, hours, rejects by reason, per split, over all partitions, and
                               the settings fingerprint of the run (``shards build records`` reads it)

Each part is written whole (temp + rename locally, one PUT on S3) before its marker; a partition with
no rows of a kind has no part of that kind. A re-run skips partitions whose marker is complete and
carries the same settings fingerprint (source, input, split, source options, audio stage settings);
any other partition is redone and its parts overwritten, so nothing is duplicated. A record whose key
breaks the key rule (:func:`uniaudio.core.keys.check_key`, also applied by ``shards build``) becomes
an ``invalid_key`` reject.

Memory: the driver holds the rows of partitions under way as Arrow slices and turns one partition at a
time into Python rows (:func:`stream_partitions`); sources split large files into partitions by byte
range, so this does not grow with the corpus. Ray keeps a few KB of driver-side bookkeeping per block
until the run ends, so the audio stage runs in blocks of ``audio_batch_size`` rows (default
:data:`~uniaudio.pipelines.audio_stage.METADATA_BATCH_ROWS`): its outputs carry no waveform, so a
worker holds one decoded file whatever the block size. Ray also keeps every block a run's audio
stage returns (small blocks live in the driver's own memory store) until that Ray Data execution
ends, so the partitions still to do are run in passes of about ``records_per_pass`` records, one
execution each (:mod:`uniaudio.pipelines.passes`): the driver's memory then depends on the pass, not on
the corpus. The stream's loop also hands the C heap's free pages back every few seconds
(:func:`uniaudio.core.native_heap.trimming`). Measured in ``bench/RESULTS.md`` ("Driver memory at
corpus scale").

``limit`` caps the metadata rows (records and metadata rejects) this run processes: partitions still
to do are read in sorted order and the stream stops after ``limit`` rows. A partition cut short is
written with a marker whose ``complete`` is false, so a later run redoes it whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from uniaudio.core import storage
from uniaudio.core.keys import key_problem
from uniaudio.core.lease import LeaseConfig, holding_lease
from uniaudio.core.native_heap import trimming
from uniaudio.core.ray_runtime import RayConfig, ensure_ray
from uniaudio.core.retry import is_transient
from uniaudio.pipelines.audio_stage import (
    METADATA_BATCH_ROWS,
    AudioStage,
    AudioStageConfig,
    Resources,
    apply_audio_stage,
    split_outputs,
)
from uniaudio.pipelines.io_failures import IO_FAILURE, PartitionFailures, failure_detail, read_partition_items
from uniaudio.pipelines.passes import RECORDS_PER_PASS, Passes, PassSize
from uniaudio.pipelines.progress import Tally
from uniaudio.pipelines.records import RECORD_SCHEMA, REJECT_SCHEMA, AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources import Source, get_source
from uniaudio.pipelines.sources.base import normalise_uri

if TYPE_CHECKING:
    import ray.data

__all__ = [
    "READ_SCHEMA",
    "IngestConfig",
    "OutputLayout",
    "PartitionReadStage",
    "PartitionTracker",
    "dry_run",
    "load_markers",
    "partition_hash",
    "read_records",
    "read_table",
    "records_dataset",
    "run_ingest",
    "settings_fingerprint",
    "source_dataset",
    "stream_partitions",
]

log = logging.getLogger(__name__)

#: Rows of :class:`PartitionReadStage`: a record (or a metadata reject, ``reason`` set) plus bookkeeping.
READ_SCHEMA = pa.schema(
    [
        *RECORD_SCHEMA,
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("partition", pa.string()),
        pa.field("input_index", pa.int64()),
        pa.field("partition_size", pa.int64()),
    ]
)


def partition_hash(partition: str) -> str:
    """Stable file-name-safe id of a partition: 16 hex digits of SHA-1."""
    return hashlib.sha1(partition.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class OutputLayout:
    """Where ingest writes under ``root`` (see the module docstring)."""

    root: str

    @property
    def records(self) -> str:
        return storage.join(self.root, "records")

    @property
    def rejects(self) -> str:
        return storage.join(self.root, "rejects")

    @property
    def progress(self) -> str:
        return storage.join(self.root, "_progress")

    @property
    def summary(self) -> str:
        return storage.join(self.root, "summary.json")

    def part(self, kind: str, partition: str) -> str:
        return storage.join(self.root, kind, f"part-{partition_hash(partition)}.parquet")

    def marker(self, partition: str) -> str:
        return storage.join(self.progress, f"{partition_hash(partition)}.json")


@dataclass
class IngestConfig:
    """One ingest run. ``stage.keep_audio`` must stay off: records never store waveforms."""

    source: str
    input_uri: str
    output_uri: str | None = None
    split: str | None = None
    limit: int | None = None
    source_options: dict[str, Any] = field(default_factory=dict)
    stage: AudioStageConfig = field(default_factory=lambda: AudioStageConfig(keep_audio=False))
    #: Rows per audio-stage block. Ingest keeps no waveforms, so a worker holds one decoded file
    #: whatever this is (:data:`~uniaudio.pipelines.audio_stage.METADATA_BATCH_ROWS`); larger blocks
    #: mean fewer of them, and the driver's Ray bookkeeping grows with the number of blocks.
    audio_batch_size: int = METADATA_BATCH_ROWS
    #: Records per Ray Data execution (:mod:`uniaudio.pipelines.passes`); a run with ``limit`` is one pass.
    records_per_pass: int = RECORDS_PER_PASS
    #: Partitions per pass instead of ``records_per_pass`` (None: passes sized in records).
    partitions_per_pass: int | None = None
    ray: RayConfig = field(default_factory=RayConfig)
    #: The writer lease on the output (one writer per store; see uniaudio.core.lease).
    lease: LeaseConfig = field(default_factory=LeaseConfig)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"limit must be positive, got {self.limit}")
        PassSize(self.records_per_pass, self.partitions_per_pass)  # validates both
        if self.stage.keep_audio:
            raise ValueError("ingest writes records without waveforms; set stage.keep_audio=False")

    def make_source(self) -> Source:
        return get_source(self.source)(self.input_uri, split=self.split, **self.source_options)

    def fingerprint(self, source: Source | None = None) -> str:
        """Hash of the settings that decide a partition's output; markers from other settings are redone.

        The input URI is normalised first (``source.input_uri`` when given, else :func:`normalise_uri`),
        so ``./x``, ``/abs/x`` and ``x/`` are one input.
        """
        input_uri = source.input_uri if source is not None else normalise_uri(self.input_uri)
        return settings_fingerprint(source=self.source, input_uri=input_uri, split=self.split,
                                    source_options=self.source_options, stage=asdict(self.stage))


def settings_fingerprint(**settings: Any) -> str:
    """16 hex digits of SHA-1 over the JSON of ``settings`` (keys sorted): a run's identity in done-markers."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class PartitionReadStage:
    """partition ids → their metadata rows (:data:`READ_SCHEMA`); decodes no audio.

    A partition whose reader raises keeps the rows read so far and adds one ``malformed_metadata``
    reject keyed by the partition id, so a broken metadata file never stops the run. Transient I/O
    errors are not content problems: the partition is read again (bounded backoff), and if the error
    persists it becomes one failure row (:mod:`~uniaudio.pipelines.io_failures`), never a reject.
    """

    source: Source
    name: str = "read_metadata"
    resources: Resources = field(default_factory=Resources)
    batch_size: int = 1

    def inputs(self) -> list[str]:
        return ["partition"]

    def outputs(self) -> list[str]:
        return READ_SCHEMA.names

    def read(self, partition: str) -> list[dict[str, Any]]:
        items, error = read_partition_items(self.source, partition)  # transient errors: retried whole
        rows = [self._row(item) for item in items]
        if error is not None and is_transient(error):  # persisting I/O error: the partition fails, no reject
            what = f"reading partition {partition} of {self.source.input_uri}"
            rows = [self._row(Reject(partition, self.source.name, IO_FAILURE, failure_detail(what, error)))]
        elif error is not None:  # a broken metadata file becomes a reject
            log.warning("reading partition %s failed", partition, exc_info=error)
            detail = f"reading partition {partition} of {self.source.input_uri} failed after {len(rows)} rows: {error}"
            rows.append(self._row(Reject(partition, self.source.name, RejectReason.MALFORMED_METADATA, detail)))
        for index, row in enumerate(rows):
            row.update(partition=partition, input_index=index, partition_size=len(rows))
        return rows

    def _row(self, item: AudioRecord | Reject) -> dict[str, Any]:
        if isinstance(item, AudioRecord):
            return {**item.to_row(), "reason": None, "detail": None}
        return {**item.to_row(), "split": self.source.split}

    def __call__(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        """Ray Data ``flat_map`` entry: ``{"partition": id}`` → the partition's rows."""
        return self.read(item["partition"])


def source_dataset(source: Source, partitions: list[str] | None = None, limit: int | None = None) -> ray.data.Dataset:
    """Ray Dataset of a source's metadata rows (:data:`READ_SCHEMA`), one read task per partition.

    With ``limit``, only the first ``limit`` rows in partition order (execution keeps order).
    """
    import ray.data

    partitions = source.partitions() if partitions is None else partitions
    stage = PartitionReadStage(source)
    ds = ray.data.from_items([{"partition": p} for p in partitions], override_num_blocks=max(1, len(partitions)))
    # flat_map, not map_batches: Ray Data does not fuse a row-multiplying op into the batched audio
    # stage, so audio batches spread over all CPUs even when one partition holds most of the rows.
    ds = ds.flat_map(stage, num_cpus=stage.resources.cpus)
    if limit is not None:
        ds.context.execution_options.preserve_order = True
        ds = ds.limit(limit)
    return ds


class PartitionTracker:
    """Which partitions of a stream are complete, from the bookkeeping columns alone (holds no rows).

    Rows carry ``partition``, ``input_index``, ``partition_size`` and (after the audio stage) ``fanout``;
    a partition is complete once every input index has all its outputs. Memory: a counter per
    partition under way and per input still missing outputs, and the ids of partitions seen.
    """

    def __init__(self) -> None:
        self._open: dict[str, tuple[list[int], dict[int, int]]] = {}  # partition → ([size, done], outputs)
        self.seen: set[str] = set()

    def add(self, row: dict[str, Any]) -> bool:
        """Count one output row; True when it completes its partition."""
        partition = row["partition"]
        self.seen.add(partition)
        counts, outputs = self._open.setdefault(partition, ([int(row["partition_size"]), 0], {}))
        index = int(row["input_index"])
        outputs[index] = outputs.get(index, 0) + 1
        if outputs[index] == int(row.get("fanout") or 1):
            del outputs[index]
            counts[1] += 1
        if counts[1] == counts[0]:
            del self._open[partition]
            return True
        return False


def stream_partitions(ds: ray.data.Dataset) -> Iterator[tuple[str, list[dict[str, Any]], bool]]:
    """``(partition, rows, complete)`` as each partition's rows are all in; incomplete ones at the end.

    ``ds`` holds rows of :func:`source_dataset`, possibly through stages that keep the bookkeeping
    columns (``partition``, ``input_index``, ``partition_size``) and set ``fanout`` (outputs per input).
    A partition is complete when every input index has all its ``fanout`` outputs, whatever the block
    boundaries; rows come back in input order. Partitions that produce no rows never appear.

    Memory: rows of partitions under way are held as Arrow slices (compact, no Python objects), and
    only the partition being yielded becomes Python rows; with partitions bounded in size (sources
    split large files by byte range) the driver's memory does not grow with the corpus.
    """
    tracker = PartitionTracker()
    pending: dict[str, list[pa.Table]] = {}
    for batch in trimming(ds.iter_batches(batch_size=None, batch_format="pyarrow")):
        book = batch.select([c for c in ("partition", "input_index", "partition_size", "fanout")
                             if c in batch.column_names]).to_pylist()
        rows_of: dict[str, list[int]] = {}
        finished: list[str] = []
        for index, row in enumerate(book):
            rows_of.setdefault(row["partition"], []).append(index)
            if tracker.add(row):
                finished.append(row["partition"])
        for partition, indices in rows_of.items():
            pending.setdefault(partition, []).append(batch.take(indices))
        for partition in finished:
            yield partition, _in_input_order(pending.pop(partition)), True
    for partition, tables in pending.items():
        yield partition, _in_input_order(tables), False


def _in_input_order(tables: list[pa.Table]) -> list[dict[str, Any]]:
    rows = pa.concat_tables(tables, promote_options="default").to_pylist()
    return sorted(rows, key=lambda row: int(row["input_index"]))  # stable: arrival order within an input


def _parquet_bytes(rows: list[dict[str, Any]], schema: pa.Schema) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink)
    return sink.getvalue().to_pybytes()


def _tally(rows: list[dict[str, Any]]) -> Tally:
    tally = Tally()
    for row in rows:
        if row.get("reason") is None:
            tally.add_record(row.get("split"), row.get("duration_s"))
        else:
            tally.add_reject(row.get("split"), row["reason"])
    return tally


def _write_partition(
    layout: OutputLayout, partition: str, rows: list[dict[str, Any]], complete: bool, fingerprint: str
) -> dict[str, Any]:
    """Write a partition's parts (or remove stale ones), then its marker; returns the marker."""
    seen: set[str] = set()
    for row in rows:
        if row.get("reason") is None and (problem := key_problem(row["key"])) is not None:
            row.update(reason=RejectReason.INVALID_KEY.value, detail=f"key {row['key']!r} in {partition}: {problem}")
        if row.get("reason") is None:
            if row["key"] in seen:
                row.update(reason=RejectReason.DUPLICATE_KEY.value, detail=f"key {row['key']} repeated in {partition}")
            seen.add(row["key"])
    kept, rejects = split_outputs(rows)
    parts: dict[str, list[dict[str, Any]]] = {}
    for kind, part_rows, schema in (("records", kept, RECORD_SCHEMA), ("rejects", rejects, REJECT_SCHEMA)):
        uri = layout.part(kind, partition)
        parts[kind] = []
        if part_rows:
            data = _parquet_bytes(part_rows, schema)
            storage.atomic_write_bytes(uri, data)
            parts[kind].append({"name": uri.rsplit("/", 1)[-1], "rows": len(part_rows),
                                "sha1": hashlib.sha1(data).hexdigest()[:16]})
        else:
            storage.remove(uri)
    marker = {"partition": partition, "complete": complete, "fingerprint": fingerprint, "parts": parts,
              "tally": _tally(rows).to_dict()}
    storage.atomic_write_bytes(layout.marker(partition), json.dumps(marker, indent=1).encode())
    return marker


def _rows(marker: dict[str, Any]) -> int:
    """Records and rejects of the partition a done-marker describes."""
    return int(marker["tally"]["records"]) + int(marker["tally"]["rejects"])


def load_markers(layout: OutputLayout, fingerprint: str) -> dict[str, dict[str, Any]]:
    """The done-markers under ``layout`` written with settings ``fingerprint``, by partition id."""
    markers = {}
    for uri in storage.glob(layout.progress, "*.json"):
        marker = json.loads(storage.read_bytes(uri))
        if marker.get("fingerprint") == fingerprint:
            markers[marker["partition"]] = marker
    return markers


def _summary(
    config: IngestConfig, partitions: list[str], markers: dict[str, dict[str, Any]], skipped: int, dry: bool
) -> dict[str, Any]:
    total = Tally()
    complete = partial = 0
    for partition in partitions:
        marker = markers.get(partition)
        if marker is None:
            continue
        total.merge(Tally.from_dict(marker["tally"]))
        complete += bool(marker["complete"])
        partial += not marker["complete"]
    return {
        "source": config.source,
        "input_uri": config.input_uri,
        "output_uri": config.output_uri,
        "split": config.split,
        "limit": config.limit,
        "dry_run": dry,
        "partitions": {"total": len(partitions), "complete": complete, "partial": partial, "skipped": skipped},
        **total.to_dict(),
        "stage": asdict(config.stage),
    }


PartitionCallback = Callable[[str, Tally], None]


@holding_lease
def run_ingest(
    config: IngestConfig,
    on_partition: PartitionCallback | None = None,
    source: Source | None = None,
    partitions: list[str] | None = None,
) -> dict[str, Any]:
    """Run (or resume) an ingest; returns the summary also written to ``OUTPUT_URI/summary.json``.

    ``on_partition(partition, tally)`` is called on the driver as each partition is written.
    ``source`` overrides the registered source named by ``config.source`` (an unregistered reader);
    ``partitions`` are the source's partitions when the caller has listed them already.
    """
    if config.output_uri is None:
        raise ValueError("run_ingest needs an output_uri")
    source = source or config.make_source()
    layout = OutputLayout(config.output_uri)
    fingerprint = config.fingerprint(source)
    partitions = source.partitions() if partitions is None else partitions
    markers = load_markers(layout, fingerprint)
    todo = [p for p in partitions if not (p in markers and markers[p]["complete"])]
    skipped = len(partitions) - len(todo)
    log.info("%s: %d partitions, %d already done", config.source, len(partitions), skipped)

    def finish(partition: str, rows: list[dict[str, Any]], complete: bool) -> None:
        markers[partition] = _write_partition(layout, partition, rows, complete, fingerprint)
        if on_partition is not None:
            on_partition(partition, Tally.from_dict(markers[partition]["tally"]))

    failures = PartitionFailures()
    if todo:
        ensure_ray(config.ray)
        stage = AudioStage(config.stage, batch_size=config.audio_batch_size)
        size = PassSize(config.records_per_pass, len(todo) if config.limit is not None else config.partitions_per_pass)
        passes = Passes(todo, size, known=(_rows(marker) for marker in markers.values() if marker["complete"]))
        finished, seen_inputs = set(), 0
        for group in passes:  # one Ray Data execution per pass (module docstring)
            ds = apply_audio_stage(source_dataset(source, group, config.limit), stage)
            for partition, rows, complete in stream_partitions(ds):
                seen_inputs += len({row["input_index"] for row in rows})
                if not complete and config.limit is None:
                    raise RuntimeError(f"partition {partition}: the stream ended before all of its rows arrived")
                rows, failed = failures.take(partition, rows)
                finish(partition, rows, complete and not failed)  # a failed partition is redone next run
                finished.add(partition)
                if markers[partition]["complete"]:
                    passes.finished(_rows(markers[partition]))
        if config.limit is None or seen_inputs < config.limit:
            # every partition was read in full: those that produced no rows are empty
            for partition in todo:
                if partition not in finished:
                    finish(partition, [], True)
    summary = _summary(config, partitions, markers, skipped, dry=False)
    summary["fingerprint"] = fingerprint  # the settings whose complete markers make up this output
    summary["failed_partitions"] = failures.as_dict()
    storage.atomic_write_bytes(layout.summary, json.dumps(summary, indent=1).encode())
    return summary


def dry_run(
    config: IngestConfig,
    on_partition: PartitionCallback | None = None,
    source: Source | None = None,
    partitions: list[str] | None = None,
) -> dict[str, Any]:
    """Counts and hours from metadata alone (no audio read or decoded, nothing written).

    Records whose metadata duration falls outside the stage's min/max duration count as the rejects
    they would become (``too_short``/``too_long``); hours are metadata durations of the rest.
    """
    source = source or config.make_source()
    partitions = source.partitions() if partitions is None else partitions
    filters = config.stage.filters
    longest = filters.max_duration_s if config.stage.window_s is None else None  # windows are checked one by one
    markers: dict[str, dict[str, Any]] = {}
    if partitions:
        ensure_ray(config.ray)
        for partition, rows, complete in stream_partitions(source_dataset(source, partitions, config.limit)):
            tally = Tally()
            for row in rows:
                duration, split = row.get("duration_s"), row.get("split")
                if row.get("reason") is not None:
                    tally.add_reject(split, row["reason"])
                elif duration is not None and filters.min_duration_s is not None and duration < filters.min_duration_s:
                    tally.add_reject(split, RejectReason.TOO_SHORT.value)
                elif duration is not None and longest is not None and duration > longest:
                    tally.add_reject(split, RejectReason.TOO_LONG.value)
                else:
                    tally.add_record(split, duration)
            markers[partition] = {"partition": partition, "complete": complete, "tally": tally.to_dict()}
            if on_partition is not None:
                on_partition(partition, tally)
    return _summary(config, partitions, markers, skipped=0, dry=True)


def read_table(output_uri: str, kind: str = "records") -> pa.Table:
    """All parts of ``records`` or ``rejects`` under an ingest output as one Arrow table."""
    import pyarrow.dataset as pads

    schema = {"records": RECORD_SCHEMA, "rejects": REJECT_SCHEMA}[kind]
    uri = storage.join(output_uri, kind)
    if not storage.glob(uri, "*.parquet"):
        return schema.empty_table()
    fs, path = storage.pyarrow_filesystem(uri)
    return pads.dataset(path, format="parquet", filesystem=fs, schema=schema).to_table()


def read_records(output_uri: str) -> Iterator[AudioRecord]:
    """The records of an ingest output, sorted by key."""
    table = read_table(output_uri, "records").sort_by("key")
    for row in table.to_pylist():
        yield AudioRecord.from_row(row)


def records_dataset(output_uri: str) -> ray.data.Dataset:
    """Ray Dataset over ``OUTPUT_URI/records`` (RECORD_SCHEMA rows), ready for :func:`apply_audio_stage`."""
    import ray.data

    fs, path = storage.pyarrow_filesystem(storage.join(output_uri, "records"))
    return ray.data.read_parquet(path, filesystem=fs, schema=RECORD_SCHEMA)
