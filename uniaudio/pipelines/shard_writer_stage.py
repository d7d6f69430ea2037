"""The shard-writer stage: tokenized rows → token-store shards written and uploaded by Ray actors.

With ``shards build --shard-writers N``, N actors write the store's shards themselves and no token (or
distillation feature) passes through the driver, which only journals what they committed, writes the
done-markers and, last, ``index.json`` (without it, one driver writing every shard caps a build at about
20k token-only or 1.2k feature-carrying samples/s; bench/RESULTS.md).

Contract:

* **inputs**: the tokenize stage's rows (:mod:`uniaudio.pipelines.tokenize_stage`), in batches of up to
  ``ShardLimits.max_samples`` rows;
* **outputs**: one small row per input row, without tokens: the bookkeeping columns the driver needs
  (:data:`PASSED_COLUMNS`), plus

  - ``shard``: the name of the committed shard holding the row's sample; null when the row was not
    written (a reject or failure row, a key an earlier run committed, a key that breaks the key rule:
    ``reason = "invalid_key"``, or a second row with a key already in this call: ``"duplicate_key"``);
  - ``tokens``: the sample's reason + recon token count (0 when not written);
  - ``shard_record``: on the first row of each shard the call wrote, the shard's journal entry as JSON
    (``{"shard": ShardEntry, "keys": [...], "notes": {"codec_fingerprint", "codec", "partitions"}}``);
    null on every other row.

Each call commits every shard it opens (one per ``max_samples`` rows or ``max_bytes`` bytes): Ray Data
has no end-of-stream hook, so no shard may stay open between calls. Shards are named
``shard-<writer>-NNNNNN.tar`` (:func:`~uniaudio.core.ustar.writer_shard_name`), ``<writer>`` a random id
drawn by each actor, so writers of one run, or of two runs, never pick the same name.

Exactly once: an actor uploads a shard but never journals it. The driver journals each shard
(:meth:`~uniaudio.pipelines.token_store.TokenStoreWriter.record`) before it takes the shard's rows, so no
done-marker precedes its samples' journal entry; a shard uploaded but never journaled (the driver died)
is removed by the next run's writer, like any unjournaled shard, and its partitions are redone. Keys an
earlier run committed for the partitions still to do (``skip_keys``) are not written again; a key that
turns up in two shards of one run is dropped from the later one by the driver
(:func:`~uniaudio.pipelines.token_store.writer.rewrite_without`) and becomes a ``duplicate_key`` reject.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from uniaudio.core import storage
from uniaudio.core.keys import key_problem
from uniaudio.core.shard_file import ShardLimits
from uniaudio.core.shard_journal import JournalEntry, record_from_dict
from uniaudio.core.ustar import writer_shard_name
from uniaudio.pipelines.records import RejectReason
from uniaudio.pipelines.token_store import TokenSample, sample_metadata
from uniaudio.pipelines.token_store.index import ShardEntry
from uniaudio.pipelines.token_store.writer import OpenShard
from uniaudio.pipelines.tokenize_stage import token_rows, unpack_tokens

if TYPE_CHECKING:
    import ray.data

__all__ = [
    "PASSED_COLUMNS",
    "ShardWriterConfig",
    "ShardWriterStage",
    "apply_shard_writer_stage",
    "parse_shard_record",
    "token_sample",
]

#: Input columns the stage passes on (what the build driver's bookkeeping reads).
PASSED_COLUMNS = ("partition", "input_index", "partition_size", "fanout", "key", "source", "split",
                  "duration_s", "reason", "detail")
#: Record fields copied from a tokenized row into the sample's ``<key>.json``.
RECORD_META = ("text", "caption", "speaker", "language", "lyrics", "split")


def token_sample(row: dict[str, Any]) -> TokenSample:
    """The token-store sample of one tokenized row (tokens, features, metadata with ``origin``)."""
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
        **{k: row.get(k) for k in RECORD_META},
        **({"source_meta": source_meta} if source_meta else {}),
    )
    return TokenSample(key=row["key"], reason=reason, recon=recon, meta=meta, extras=extras)


@dataclass(frozen=True)
class ShardWriterConfig:
    """Where the actors write and when they close a shard.

    ``cpus_per_writer`` is each actor's Ray CPU reservation: 0 by default, since writing is mostly I/O
    and hashing, and reserved cores are taken from the metadata and decode tasks feeding the codec (on
    the embedded 2-CPU Ray, one read task and one codec actor already hold both, so a writer reserving
    a CPU would leave the read tasks waiting for ever).
    """

    output_uri: str
    limits: ShardLimits = ShardLimits()
    cpus_per_writer: float = 0.0

    def __post_init__(self) -> None:
        if self.cpus_per_writer < 0:
            raise ValueError(f"cpus_per_writer must be >= 0, got {self.cpus_per_writer}")


class ShardWriterStage:
    """``map_batches`` callable: writes each batch's samples into shards it commits before returning."""

    def __init__(self, output_uri: str, max_samples: int, max_bytes: int, skip_keys: list[str] | None = None,
                 writer_id: str | None = None) -> None:
        self.output_uri = output_uri
        self.limits = ShardLimits(max_samples=max_samples, max_bytes=max_bytes)
        self.skip = set(skip_keys or ())
        self.writer_id = writer_id or secrets.token_hex(5)
        self.next_index = 0

    def _open(self) -> OpenShard:
        name = writer_shard_name(self.writer_id, self.next_index)
        self.next_index += 1
        return OpenShard(storage.join(self.output_uri, name), name)

    def process_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write the rows' samples (committing every shard opened); one bookkeeping row per input row."""
        out = [{**{c: row.get(c) for c in PASSED_COLUMNS}, "shard": None, "tokens": 0, "shard_record": None}
               for row in rows]
        shard: OpenShard | None = None
        first_row = 0  # out-row index of the open shard's first sample
        partitions: set[str] = set()
        codec: dict[str, Any] = {}
        written: set[str] = set()
        try:
            for i, (row, o) in enumerate(zip(rows, out, strict=True)):
                if row.get("reason") is not None or row["key"] in self.skip:
                    continue  # rejects and failure rows pass on; committed keys are not written again
                if (problem := key_problem(row["key"])) is not None:
                    o["reason"] = RejectReason.INVALID_KEY.value
                    o["detail"] = f"key {row['key']!r} in {row['partition']}: {problem}"
                    continue
                if row["key"] in written:
                    o["reason"] = RejectReason.DUPLICATE_KEY.value
                    o["detail"] = f"key {row['key']!r} appears twice in the input"
                    continue
                sample = token_sample(row)
                if shard is None:
                    shard, first_row, partitions = self._open(), i, set()
                shard.add(sample)
                written.add(sample.key)
                partitions.add(row["partition"])
                codec = json.loads(row["codec"])
                o["shard"], o["tokens"] = shard.name, int(sample.reason.size + sample.recon.size)
                if len(shard.keys) >= self.limits.max_samples or shard.file.size >= self.limits.max_bytes:
                    out[first_row]["shard_record"] = _commit(shard, partitions, codec)
                    shard = None
            if shard is not None:
                out[first_row]["shard_record"] = _commit(shard, partitions, codec)
                shard = None
        finally:
            if shard is not None:  # an error midway: nothing half-written is left
                shard.abort()
        return out

    def __call__(self, batch: pa.Table) -> pa.Table:
        return pa.Table.from_pylist(self.process_rows(token_rows(batch)), schema=_output_schema(batch.schema))


def _commit(shard: OpenShard, partitions: set[str], codec: dict[str, Any]) -> str:
    notes = {"codec_fingerprint": codec.get("fingerprint"), "codec": codec, "partitions": sorted(partitions)}
    return JournalEntry(shard=shard.finish(), keys=shard.keys, notes=notes).to_json().decode()


def parse_shard_record(text: str) -> JournalEntry[ShardEntry]:
    """The journal entry of a ``shard_record`` column value (the driver journals it as it is)."""
    d = json.loads(text)
    return JournalEntry(record_from_dict(ShardEntry, d["shard"]), list(d["keys"]), d.get("notes") or {})


def _output_schema(input_schema: pa.Schema) -> pa.Schema:
    fields = [input_schema.field(c) if c in input_schema.names else pa.field(c, pa.string())
              for c in PASSED_COLUMNS]
    return pa.schema([*fields, pa.field("shard", pa.string()), pa.field("tokens", pa.int64()),
                      pa.field("shard_record", pa.large_string())])


def apply_shard_writer_stage(ds: ray.data.Dataset, config: ShardWriterConfig, num_writers: int,
                             skip_keys: list[str]) -> ray.data.Dataset:
    """``ds.map_batches(ShardWriterStage)`` on a pool of ``num_writers`` actors, a shard's rows per batch."""
    from ray.data import ActorPoolStrategy

    return ds.map_batches(
        ShardWriterStage,
        fn_constructor_kwargs={"output_uri": config.output_uri, "max_samples": config.limits.max_samples,
                               "max_bytes": config.limits.max_bytes, "skip_keys": skip_keys},
        compute=ActorPoolStrategy(size=num_writers),
        batch_size=config.limits.max_samples,
        batch_format="pyarrow",
        num_cpus=config.cpus_per_writer,
    )
