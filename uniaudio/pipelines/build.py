"""``uniaudio shards build``: a corpus (or an ingest output) → audio stage → ReasoningCodec → token store.

Data flow (Ray Data; the driver only writes)::

    from_items(partitions) ─ flat_map(PartitionReadStage)        metadata, one CPU task per partition
                           ─ map_batches(AudioStage)               decode, 24 kHz mono, cut, filter
                           ─ map_batches(TokenizeStage)            codec actors: GPUs on a cluster, CPU here
                           ─ driver: per finished partition → TokenStoreWriter (shards), rejects part,
                             done-marker once the shard holding its last sample is committed

Output under ``OUTPUT_URI``: the token store (``shard-*.tar``, ``_journal/``, ``index.json``; see
docs/formats.md), ``rejects/part-<h>.parquet`` (``key, source, reason, detail``), ``_progress/<h>.json``
(one done-marker per finished input partition) and ``build-summary.json``.

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
from uniaudio.core.ray_runtime import RayConfig, ensure_ray
from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.audio_stage import AudioStage, AudioStageConfig, apply_audio_stage
from uniaudio.pipelines.ingest import (
    OutputLayout,
    load_markers,
    settings_fingerprint,
    source_dataset,
    stream_partitions,
)
from uniaudio.pipelines.progress import Tally
from uniaudio.pipelines.records import REJECT_SCHEMA, RejectReason
from uniaudio.pipelines.sources import Source, get_source
from uniaudio.pipelines.token_store import DuplicateKeyError, TokenSample, TokenStoreWriter, read_index, sample_metadata
from uniaudio.pipelines.token_store.format import INDEX_NAME
from uniaudio.pipelines.token_store.index import read_journal
from uniaudio.pipelines.tokenize_stage import (
    TokenizeStageConfig,
    apply_tokenize_stage,
    unpack_tokens,
)

__all__ = ["BuildConfig", "run_build"]

log = logging.getLogger(__name__)

SUMMARY_NAME = "build-summary.json"
_RECORD_META = ("text", "caption", "speaker", "language", "lyrics", "split")


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
    tokenize: TokenizeStageConfig = field(default_factory=TokenizeStageConfig)
    #: Codec actors; ``None`` = one per GPU on a GPU cluster (1 GPU each), else one CPU actor.
    workers: int | None = None
    limits: ShardLimits = field(default_factory=ShardLimits)
    audio_batch_size: int = 8
    force: bool = False
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"limit must be positive, got {self.limit}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if not self.stage.keep_audio:
            raise ValueError("shards build tokenizes waveforms: stage.keep_audio must be on")

    def make_source(self) -> Source:
        return get_source(self.source)(self.input_uri, split=self.split, **self.source_options)

    def fingerprint(self) -> str:
        """Hash of what decides a partition's samples; markers written under other settings are redone."""
        codec = {k: v for k, v in asdict(self.tokenize).items()
                 if k in ("codec", "codec_dir", "paths", "window_mode", "distill_features")}
        return settings_fingerprint(source=self.source, input_uri=self.input_uri, split=self.split,
                                    source_options=self.source_options, stage=asdict(self.stage), codec=codec)


def _sample(row: dict[str, Any]) -> TokenSample:
    reason, recon, extras = unpack_tokens(row)
    source_meta = json.loads(row["meta"]) if row.get("meta") else {}
    meta = sample_metadata(
        key=row["key"],
        source=row["source"],
        duration_s=float(row["duration_s"]),
        codec=json.loads(row["codec"]),
        audio_uri=row["audio_uri"],
        member=row.get("member"),
        offset_s=float(row.get("offset_s") or 0.0),
        labels=list(row.get("labels") or []),
        **{k: row.get(k) for k in _RECORD_META},
        **({"source_meta": source_meta} if source_meta else {}),
    )
    return TokenSample(key=row["key"], reason=reason, recon=recon, meta=meta, extras=extras)


def _reject_part(rows: list[dict[str, Any]]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=REJECT_SCHEMA), sink)
    return sink.getvalue().to_pybytes()


class _Driver:
    """Driver-side bookkeeping of one run: writer, rejects, markers, tallies."""

    def __init__(self, config: BuildConfig, layout: OutputLayout, on_partition: Callable[[str, Tally], None] | None):
        self.config = config
        self.layout = layout
        self.fingerprint = config.fingerprint()
        self.on_partition = on_partition
        #: finished partitions (earlier runs and this one) → their tallies
        self.done = {p: Tally.from_dict(m["tally"]) for p, m in load_markers(layout, self.fingerprint).items()
                     if m.get("complete")}
        self.journal = read_journal(config.output_uri)  # shards committed by earlier runs
        self.committed_keys = {k for e in self.journal for k in e.keys}
        self.writer: TokenStoreWriter | None = None
        self.waiting: list[tuple[str, Tally]] = []  # finished partitions whose samples are in the open shard
        self.tally = Tally()
        self.tokens = 0

    def _open_writer(self, codec: dict[str, Any]) -> TokenStoreWriter:
        if self.writer is None:
            self.writer = TokenStoreWriter(self.config.output_uri, codec, self.config.limits, on_commit=self._committed)
        return self.writer

    def _committed(self, *_: Any) -> None:
        for partition, tally in self.waiting:
            self._mark_done(partition, tally)
        self.waiting = []

    def _mark_done(self, partition: str, tally: Tally) -> None:
        marker = {"partition": partition, "fingerprint": self.fingerprint, "complete": True, "tally": tally.to_dict()}
        storage.atomic_write_bytes(self.layout.marker(partition), json.dumps(marker).encode())
        self.done[partition] = tally
        if self.on_partition:
            self.on_partition(partition, tally)

    def partition(self, partition: str, rows: list[dict[str, Any]], complete: bool) -> None:
        tally, rejects, wrote = Tally(), [], False
        for row in rows:
            if row.get("reason") is not None:
                rejects.append({k: row.get(k) for k in REJECT_SCHEMA.names})
                tally.add_reject(row.get("split"), row["reason"])
                continue
            if row["key"] in self.committed_keys:
                tally.add_record(row.get("split"), row.get("duration_s"))
                continue
            writer = self._open_writer(json.loads(row["codec"]))
            sample = _sample(row)
            try:
                writer.write(sample)
            except DuplicateKeyError as e:  # two input records mapped to one key
                rejects.append({"key": row["key"], "source": row["source"],
                                "reason": RejectReason.DUPLICATE_KEY.value, "detail": str(e)})
                tally.add_reject(row.get("split"), RejectReason.DUPLICATE_KEY.value)
                continue
            wrote = True
            self.tokens += sample.reason.size + sample.recon.size
            tally.add_record(row.get("split"), row.get("duration_s"))
        if rejects:
            storage.atomic_write_bytes(self.layout.part("rejects", partition), _reject_part(rejects))
        self.tally.merge(tally)
        if not complete:
            return  # cut short by --limit: its keys are committed, the partition is redone next time
        if wrote:
            self.waiting.append((partition, tally))
        else:
            self._mark_done(partition, tally)

    def close(self) -> None:
        index_uri = storage.join(self.config.output_uri, INDEX_NAME)
        if self.writer is None and self.journal and not storage.exists(index_uri):
            # nothing new, but an earlier run died after its last shard: finish its index
            self._open_writer(self.journal[-1].notes["codec"])
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


def run_build(
    config: BuildConfig,
    on_partition: Callable[[str, Tally], None] | None = None,
    partitions: list[str] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a build; returns the summary also written to ``OUTPUT_URI/build-summary.json``.

    ``partitions`` are the source's partitions when the caller has listed them already.
    """
    if config.force:
        storage.remove(config.output_uri)
    source = config.make_source()
    layout = OutputLayout(config.output_uri)
    partitions = source.partitions() if partitions is None else partitions
    driver = _Driver(config, layout, on_partition)
    todo = [p for p in partitions if p not in driver.done]
    skipped = len(partitions) - len(todo)
    log.info("%s: %d partitions, %d already done", config.source, len(partitions), skipped)
    started = time.perf_counter()
    if todo:
        tokenize, num_actors = _actor_pool(config, ensure_ray(config.ray))
        ds = source_dataset(source, todo, config.limit)
        ds = apply_audio_stage(ds, AudioStage(config.stage, batch_size=config.audio_batch_size))
        ds = apply_tokenize_stage(ds, tokenize, num_actors=num_actors)
        seen = set()
        for partition, rows, complete in stream_partitions(ds):
            driver.partition(partition, rows, complete)
            seen.add(partition)
        if config.limit is None:
            for partition in todo:  # read in full but produced no rows at all
                if partition not in seen:
                    driver.partition(partition, [], True)
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
    }
    storage.atomic_write_bytes(storage.join(config.output_uri, SUMMARY_NAME), json.dumps(summary, indent=1).encode())
    return summary
