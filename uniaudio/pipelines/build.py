"""``uniaudio shards build``: a corpus (or an ingest output) → audio stage → ReasoningCodec → token store.

Data flow (Ray Data; the driver only writes)::

    from_items(partitions) ─ flat_map(PartitionReadStage)        metadata, one CPU task per partition
                           ─ map_batches(AudioStage)               decode, 24 kHz mono, cut, filter
                           ─ map_batches(TokenizeStage)            codec actors: GPUs on a cluster, CPU here
                           ─ driver: each row as it arrives → TokenStoreWriter (shards staged on disk,
                             committed when full); per finished partition: rejects part, then its
                             done-marker once the shard holding its last sample is committed

With ``shard_writers`` N > 0 (``--shard-writers N``), N Ray actors write and upload the shards instead
(:mod:`uniaudio.pipelines.shard_writer_stage`) and the driver receives token-less bookkeeping rows; it
journals each shard they committed (:meth:`TokenStoreWriter.record`) before taking its rows, so markers
still follow their shards, and it writes ``index.json`` last. Token bytes then never pass through the
driver, whose write rate no longer caps the number of codec GPUs a build can use.

Output under ``OUTPUT_URI``: the token store (``shard-*.tar``, ``_journal/``, ``index.json``; see
docs/formats.md), ``rejects/part-<h>.parquet`` (``key, source, reason, detail``), ``_progress/<h>.json``
(one done-marker per finished input partition), ``build-settings.json`` (the settings the store was
built with: a run with other settings is refused, :class:`BuildSettingsChanged`, unless ``force``) and
``build-summary.json``. A record whose key breaks the key rule (:func:`uniaudio.core.keys.check_key`)
is an ``invalid_key`` reject.

Memory: the driver holds no partition's samples, so it does not grow with partition size. Ray keeps a
few KB of driver-side state for every task of a Ray Data execution until it ends (measured in
bench/RESULTS.md), so the codec actors take ``tokenize.batch_size`` clips a task
(:data:`~uniaudio.pipelines.tokenize_stage.BUILD_BATCH_ROWS`, 64; the audio stage runs in the same
tasks), and the partitions still to do run in passes of about ``records_per_pass`` records, one
execution each (:mod:`uniaudio.pipelines.passes`): the driver's memory then depends on the pass, not on
the corpus. What Ray's threads free for each block stays resident in glibc's arenas unless handed back,
so the driver's loop also trims the C heap every few seconds (:func:`uniaudio.core.native_heap.trimming`).
Each pass starts its codec actors anew (one model load each), so on a GPU cluster raise
``records_per_pass`` until a pass is many minutes of codec work (measured: +35 MiB of driver memory with
passes of 50,000 records, +46 MiB with passes of 100,000, over a small run).

Resume: a re-run skips partitions with a done-marker of the same settings fingerprint and skips keys
already committed to shards, so a crash at any point neither duplicates nor drops a key. A partition's
marker is written only after every sample it produced sits in a committed shard. ``force`` deletes the
output first.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from uniaudio.core import storage
from uniaudio.core.keys import key_problem
from uniaudio.core.lease import LeaseConfig, holding_lease
from uniaudio.core.native_heap import trimming
from uniaudio.core.ray_runtime import RayConfig, ensure_ray
from uniaudio.core.shard_file import ShardLimits
from uniaudio.core.shard_journal import read_committed
from uniaudio.pipelines.audio_stage import AudioStage, AudioStageConfig, apply_audio_stage
from uniaudio.pipelines.ingest import (
    OutputLayout,
    PartitionTracker,
    load_markers,
    settings_fingerprint,
    source_dataset,
)
from uniaudio.pipelines.io_failures import PartitionFailures
from uniaudio.pipelines.output_guard import clear_output
from uniaudio.pipelines.passes import RECORDS_PER_PASS, Passes, PassSize
from uniaudio.pipelines.progress import Tally
from uniaudio.pipelines.records import REJECT_SCHEMA, RejectReason
from uniaudio.pipelines.shard_writer_stage import (
    ShardWriterConfig,
    apply_shard_writer_stage,
    parse_shard_record,
    token_sample,
)
from uniaudio.pipelines.sources import Source, get_source
from uniaudio.pipelines.sources.base import normalise_uri
from uniaudio.pipelines.token_store import DuplicateKeyError, TokenStoreWriter, read_index
from uniaudio.pipelines.token_store.format import INDEX_NAME
from uniaudio.pipelines.token_store.index import ShardEntry, iter_journal, read_journal_entry
from uniaudio.pipelines.token_store.writer import rewrite_without
from uniaudio.pipelines.tokenize_stage import (
    BUILD_BATCH_ROWS,
    TokenizeStageConfig,
    apply_tokenize_stage,
    stage_codec_meta,
    token_rows,
)

__all__ = ["BuildConfig", "BuildSettingsChanged", "check_settings", "run_build"]

log = logging.getLogger(__name__)

SUMMARY_NAME = "build-summary.json"
SETTINGS_NAME = "build-settings.json"


@dataclass
class BuildConfig:
    """One ``shards build`` run."""

    source: str
    input_uri: str
    output_uri: str
    split: str | None = None
    limit: int | None = None
    source_options: dict[str, Any] = field(default_factory=dict)
    stage: AudioStageConfig = field(default_factory=AudioStageConfig)
    tokenize: TokenizeStageConfig = field(default_factory=lambda: TokenizeStageConfig(batch_size=BUILD_BATCH_ROWS))
    #: Codec actors; ``None`` = one per GPU on a GPU cluster (1 GPU each), else one CPU actor.
    workers: int | None = None
    limits: ShardLimits = field(default_factory=ShardLimits)
    #: Ray actors writing the shards (0: the driver writes them; see uniaudio.pipelines.shard_writer_stage).
    shard_writers: int = 0
    #: Rows per audio-stage block; None: the codec's batch size, so both stages run in the same tasks.
    audio_batch_size: int | None = None
    #: Records per Ray Data execution (:mod:`uniaudio.pipelines.passes`); a run with ``limit`` is one pass.
    records_per_pass: int = RECORDS_PER_PASS
    #: Partitions per pass instead of ``records_per_pass`` (None: passes sized in records).
    partitions_per_pass: int | None = None
    force: bool = False
    ray: RayConfig = field(default_factory=RayConfig)
    #: The writer lease on the output (one writer per store; see uniaudio.core.lease).
    lease: LeaseConfig = field(default_factory=LeaseConfig)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"limit must be positive, got {self.limit}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.shard_writers < 0:
            raise ValueError(f"shard_writers must be >= 0, got {self.shard_writers}")
        PassSize(self.records_per_pass, self.partitions_per_pass)  # validates both
        if not self.stage.keep_audio:
            raise ValueError("shards build tokenizes waveforms: stage.keep_audio must be on")

    def make_source(self) -> Source:
        return get_source(self.source)(self.input_uri, split=self.split, **self.source_options)

    def settings(self, source: Source | None = None) -> dict[str, Any]:
        """What decides a partition's samples, with URIs and paths normalised (``./x``, ``/abs/x`` and ``x/``
        are one input); ``source.input_uri`` is used when given (a source may keep names verbatim)."""
        codec = {k: v for k, v in asdict(self.tokenize).items()
                 if k in ("codec", "codec_dir", "paths", "window_mode", "distill_features")}
        if codec["codec_dir"]:
            codec["codec_dir"] = normalise_uri(codec["codec_dir"])
        codec["paths"] = {k: normalise_uri(v) for k, v in sorted(codec["paths"].items())}
        input_uri = source.input_uri if source is not None else normalise_uri(self.input_uri)
        return {"source": self.source, "input_uri": input_uri, "split": self.split,
                "source_options": self.source_options, "stage": asdict(self.stage), "codec": codec}

    def fingerprint(self, source: Source | None = None) -> str:
        """Hash of :meth:`settings`; markers written under other settings are never taken as done."""
        return settings_fingerprint(**self.settings(source))


class BuildSettingsChanged(ValueError):
    """The output holds a store built with other settings; adding to it would mix old and new samples."""


def check_settings(config: BuildConfig, source: Source) -> None:
    """Refuse (:class:`BuildSettingsChanged`) an output built with other settings; record them on a new one.

    The settings live in ``OUTPUT_URI/build-settings.json`` (``{"fingerprint", "settings"}``), written
    before the first shard; the message names the settings that differ. ``--force`` starts over instead.
    """
    uri = storage.join(config.output_uri, SETTINGS_NAME)
    settings = json.loads(json.dumps(config.settings(source), default=str))
    fingerprint = settings_fingerprint(**settings)
    if storage.exists(uri):
        old = json.loads(storage.read_bytes(uri))
        if old.get("fingerprint") == fingerprint:
            return
        changed = _differences(old.get("settings") or {}, settings)
        raise BuildSettingsChanged(
            f"{config.output_uri} was built with other settings ({'; '.join(changed) or 'fingerprint differs'}); "
            "adding to it would mix old and new samples: write to a new output, or pass --force to rebuild it")
    if next(iter_journal(config.output_uri), None):  # a store from before build-settings.json: markers must agree
        markers = storage.glob(OutputLayout(config.output_uri).progress, "*.json")
        old_prints = {json.loads(storage.read_bytes(marker)).get("fingerprint") for marker in markers}
        if old_prints != {fingerprint}:
            raise BuildSettingsChanged(
                f"{config.output_uri} holds shards built with other or unknown settings (no {SETTINGS_NAME}): "
                "write to a new output, or pass --force to rebuild it")
    storage.atomic_write_bytes(uri, json.dumps({"fingerprint": fingerprint, "settings": settings}, indent=1).encode())


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{name}.")
        elif a != b:
            out.append(f"{prefix}{name}: {a!r} → {b!r}")
    return out


def _reject_part(rows: list[dict[str, Any]]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=REJECT_SCHEMA), sink)
    return sink.getvalue().to_pybytes()


@dataclass
class _Streaming:
    """A partition of this run whose rows are still arriving: its tally and rejects so far."""

    tally: Tally = field(default_factory=Tally)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    failed: bool = False


class _Driver:
    """Driver-side bookkeeping of one run: writer, rejects, markers, tallies.

    Rows are taken one at a time as the stream yields them: a sample goes straight into the writer
    (whose shard is staged on disk and committed when full), so the driver holds no partition's
    samples, only per-partition counters, tallies and rejects. A partition's done-marker is written
    once all its rows are in and the shard holding its last sample is committed. With shard-writer
    actors, rows carry no tokens: :meth:`shard_records` journals the shards the actors committed
    before their rows are taken, so a partition's marker is written as soon as its last row is in.
    """

    def __init__(self, config: BuildConfig, layout: OutputLayout, on_partition: Callable[[str, Tally], None] | None,
                 source: Source, failures: PartitionFailures):
        self.config = config
        self.layout = layout
        self.fingerprint = config.fingerprint(source)
        self.on_partition = on_partition
        self.failures = failures
        #: finished partitions (earlier runs and this one) → their tallies
        self.done = {p: Tally.from_dict(m["tally"]) for p, m in load_markers(layout, self.fingerprint).items()
                     if m.get("complete")}
        # shards committed by earlier runs: their keys (16 bytes each), the partitions each holds (None: not
        # recorded) and their codec; key lists are read again only when writer actors need them
        self.committed_keys, earlier = read_committed(config.output_uri, ShardEntry)
        self.earlier_shards = {e.shard.name: e.notes.get("partitions") for e in earlier}
        self.earlier_codec: dict[str, Any] | None = earlier[-1].notes.get("codec") if earlier else None
        self.writer: TokenStoreWriter | None = None
        self.tracker = PartitionTracker()
        self.streaming: dict[str, _Streaming] = {}
        self.in_open_shard: set[str] = set()  # partitions with a sample in the shard being written
        self.waiting: list[tuple[str, Tally]] = []  # finished partitions whose samples are in the open shard
        self.tally = Tally()
        self.tokens = 0
        self.dropped: dict[str, set[str]] = {}  # worker shard → keys dropped from it (already in the store)

    def skip_keys(self, todo: list[str]) -> list[str]:
        """Keys committed by earlier runs that the partitions in ``todo`` may produce again (for the
        writer actors): those of shards that hold a ``todo`` partition or do not say which they hold."""
        wanted = set(todo)
        shards = [name for name, parts in self.earlier_shards.items() if parts is None or wanted.intersection(parts)]
        return sorted({k for name in shards for k in read_journal_entry(self.config.output_uri, name).keys})

    def shard_records(self, records: list[str]) -> None:
        """Journal shards the writer actors committed (their rows' ``shard_record``), before their rows.

        Keys the store already holds (the same key from two input records) are dropped from the new
        shard first; their rows become ``duplicate_key`` rejects in :meth:`_take`.
        """
        assert self.writer is not None, "open_writer() before the stream starts"
        for text in records:
            record = parse_shard_record(text)
            entry, keys = record.shard, record.keys
            if dup := self.writer.duplicates(keys):
                log.warning("%s: dropping %d key(s) already in the store, e.g. %s", entry.name, len(dup), min(dup))
                self.dropped[entry.name] = dup
                rewritten = rewrite_without(self.config.output_uri, entry.name, dup)
                if rewritten is None:
                    continue
                entry, keys = rewritten
            self.writer.record(entry, keys, record.notes)

    def open_writer(self, codec: dict[str, Any]) -> TokenStoreWriter:
        """The store's writer (opened on first use: it removes shards no journal entry records)."""
        if self.writer is None:
            self.writer = TokenStoreWriter(self.config.output_uri, codec, self.config.limits, on_commit=self._committed)
        return self.writer

    def _committed(self, *_: Any) -> None:
        self.in_open_shard.clear()
        for partition, tally in self.waiting:
            self._mark_done(partition, tally)
        self.waiting = []

    def _mark_done(self, partition: str, tally: Tally) -> None:
        marker = {"partition": partition, "fingerprint": self.fingerprint, "complete": True, "tally": tally.to_dict()}
        storage.atomic_write_bytes(self.layout.marker(partition), json.dumps(marker).encode())
        self.done[partition] = tally
        if self.on_partition:
            self.on_partition(partition, tally)

    def row(self, row: dict[str, Any]) -> None:
        """Take one row of the stream; finishes its partition when it was the last one."""
        partition = row["partition"]
        state = self.streaming.setdefault(partition, _Streaming())
        complete = self.tracker.add(row)
        self._take(partition, state, row)
        if complete:
            self.finish(partition, self.streaming.pop(partition), complete=True)

    def _reject(self, state: _Streaming, row: dict[str, Any], reason: str, detail: str) -> None:
        state.rejects.append({"key": row["key"], "source": row["source"], "reason": reason, "detail": detail})
        state.tally.add_reject(row.get("split"), reason)

    def _take(self, partition: str, state: _Streaming, row: dict[str, Any]) -> None:
        if self.failures.take(partition, [row])[1]:  # a persisting I/O error: no marker, redone next run
            state.failed = True
            return
        if row.get("reason") is not None:
            self._reject(state, row, row["reason"], row.get("detail"))
            return
        if (problem := key_problem(row["key"])) is not None:  # the same rule as ingest: a reject, not a crash
            self._reject(state, row, RejectReason.INVALID_KEY.value, f"key {row['key']!r} in {partition}: {problem}")
            return
        if self.config.shard_writers:  # written by an actor, or not written: a key committed earlier
            if row["key"] in self.dropped.get(row.get("shard") or "", ()):
                self._reject(state, row, RejectReason.DUPLICATE_KEY.value,
                             f"key {row['key']!r} is already in {self.config.output_uri}")
                return
            self.tokens += int(row.get("tokens") or 0)
        elif row["key"] not in self.committed_keys:
            writer = self.open_writer(json.loads(row["codec"]))
            sample = token_sample(row)
            self.in_open_shard.add(partition)  # before write: a shard it fills is committed inside write()
            try:
                writer.write(sample)
            except DuplicateKeyError as e:  # two input records mapped to one key
                self._reject(state, row, RejectReason.DUPLICATE_KEY.value, str(e))
                return
            self.tokens += sample.reason.size + sample.recon.size
        state.tally.add_record(row.get("split"), row.get("duration_s"))

    def finish(self, partition: str, state: _Streaming, complete: bool) -> None:
        """All rows of ``partition`` this run will see are in: rejects part, then marker (or not)."""
        if state.rejects:
            storage.atomic_write_bytes(self.layout.part("rejects", partition), _reject_part(state.rejects))
        self.tally.merge(state.tally)
        if not complete or state.failed:
            return  # cut short by --limit, or failed: its keys are committed, the partition is redone next time
        if partition in self.in_open_shard:
            self.waiting.append((partition, state.tally))
        else:
            self._mark_done(partition, state.tally)

    def end_of_stream(self, todo: list[str], read_in_full: bool) -> None:
        """Partitions still open were cut short; with ``read_in_full``, unseen ones had no rows at all."""
        for partition, state in self.streaming.items():
            self.finish(partition, state, complete=False)
        self.streaming.clear()
        if read_in_full:
            for partition in todo:
                if partition not in self.tracker.seen:
                    self.finish(partition, _Streaming(), complete=True)

    def close(self) -> None:
        index_uri = storage.join(self.config.output_uri, INDEX_NAME)
        if self.writer is None and self.earlier_codec is not None and not storage.exists(index_uri):
            # nothing new, but an earlier run died after its last shard: finish its index
            self.open_writer(self.earlier_codec)
        if self.writer is not None:
            self.writer.close(extra={"source": self.config.source, "input_uri": self.config.input_uri,
                                     "split": self.config.split})
        self._committed()


def _actor_pool(config: BuildConfig, resources: dict[str, float]) -> tuple[TokenizeStageConfig, int]:
    """Codec actors: as configured, or (``workers=None``) one per GPU, else a single 1-CPU actor.

    On CPU the single actor leaves the other cores to the metadata and audio tasks feeding it (an actor
    holding every core would starve them).
    """
    if config.workers is not None:
        return config.tokenize, config.workers
    gpus = resources.get("GPU", 0)
    if gpus >= 1:
        per_actor = config.tokenize.gpus_per_actor or 1.0
        return replace(config.tokenize, gpus_per_actor=per_actor), max(1, int(gpus // per_actor))
    return config.tokenize, 1


def _run_pass(config: BuildConfig, source: Source, driver: _Driver, partitions: list[str],
              tokenize: TokenizeStageConfig, num_actors: int) -> None:
    """One Ray Data execution over ``partitions``: every row into the driver, then their ends of stream."""
    ds = source_dataset(source, partitions, config.limit)
    ds = apply_audio_stage(ds, AudioStage(config.stage, batch_size=config.audio_batch_size or tokenize.batch_size))
    ds = apply_tokenize_stage(ds, tokenize, num_actors=num_actors)
    if config.shard_writers:
        ds = apply_shard_writer_stage(ds, ShardWriterConfig(config.output_uri, config.limits),
                                      config.shard_writers, driver.skip_keys(partitions))
    for batch in trimming(ds.iter_batches(batch_size=None, batch_format="pyarrow")):  # one block at a time
        if config.shard_writers:
            driver.shard_records([r for r in batch.column("shard_record").to_pylist() if r])
            batch = batch.drop_columns(["shard_record"])
        for row in (batch.to_pylist() if config.shard_writers else token_rows(batch)):
            driver.row(row)
    driver.end_of_stream(partitions, read_in_full=config.limit is None)


@holding_lease
def run_build(
    config: BuildConfig,
    on_partition: Callable[[str, Tally], None] | None = None,
    partitions: list[str] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a build; returns the summary also written to ``OUTPUT_URI/build-summary.json``.

    ``partitions`` are the source's partitions when the caller has listed them already.
    """
    if config.force:
        clear_output(config.output_uri, config.input_uri)  # refuses inputs, bucket roots, non-store dirs
    source = config.make_source()
    layout = OutputLayout(config.output_uri)
    partitions = source.partitions() if partitions is None else partitions
    check_settings(config, source)
    failures = PartitionFailures()
    driver = _Driver(config, layout, on_partition, source, failures)
    todo = [p for p in partitions if p not in driver.done]
    skipped = len(partitions) - len(todo)
    log.info("%s: %d partitions, %d already done", config.source, len(partitions), skipped)
    started = time.perf_counter()
    if todo:
        tokenize, num_actors = _actor_pool(config, ensure_ray(config.ray))
        if config.shard_writers:
            driver.open_writer(stage_codec_meta(config.tokenize))  # before any actor writes: clears unjournaled
        size = PassSize(config.records_per_pass, len(todo) if config.limit is not None else config.partitions_per_pass)
        passes = Passes(todo, size, known=(tally.records + tally.num_rejects for tally in driver.done.values()))
        for group in passes:  # one Ray Data execution per pass (module docstring)
            _run_pass(config, source, driver, group, tokenize, num_actors)
            for partition in group:
                if (tally := driver.done.get(partition)) is not None:
                    passes.finished(tally.records + tally.num_rejects)
    driver.close()
    elapsed = time.perf_counter() - started
    total = Tally()
    for partition in partitions:
        if partition in driver.done:
            total.merge(driver.done[partition])
    index = read_index(config.output_uri) if storage.exists(storage.join(config.output_uri, INDEX_NAME)) else None
    summary = {
        "source": config.source,
        "input_uri": config.input_uri,
        "output_uri": config.output_uri,
        "split": config.split,
        "partitions": {"total": len(partitions), "done": sum(p in driver.done for p in partitions),
                       "skipped": skipped},
        "store": index.totals if index else None,
        "codec": index.codec if index else None,
        "this_run": {**driver.tally.to_dict(), "tokens": int(driver.tokens), "seconds_wall": round(elapsed, 3),
                     "audio_hours_per_second": round(driver.tally.hours / elapsed, 6) if elapsed > 0 else None},
        **total.to_dict(),
        "failed_partitions": failures.as_dict(),
    }
    storage.atomic_write_bytes(storage.join(config.output_uri, SUMMARY_NAME), json.dumps(summary, indent=1).encode())
    return summary
