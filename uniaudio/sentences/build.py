"""``uniaudio sentences build``: run a registered builder over its units on Ray Data into a sentence store.

Flow: the driver checks the inputs (complete token stores of **one** codec fingerprint, the text tokenizer,
``--pool`` overrides), asks the builder for its units (deterministic), and opens the output with a
fingerprint of everything that decides its content (kind, inputs, tokenizer and codec fingerprints,
options). Units not completed by an earlier run are mapped by Ray Data, in order (``preserve_order``),
one task per unit: the worker reads the unit's input shards, runs :meth:`build_unit`, and returns each
sentence's encoded members plus one end-of-unit row with the unit's skip counts. The driver writes
sentences in unit order and commits a shard whenever it is full; each shard's journal entry lists the
units finished and the records skipped since the previous one. A rerun after a crash or kill therefore
skips finished units and drops sentences already committed, so every sentence is in the store exactly
once, and the summary (skips included) counts each unit once. ``--limit N`` stops after N sentences.
The build holds the output's writer lease (:func:`uniaudio.core.lease.writer_lease`), so a second
build of the same store is refused while the first runs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from uniaudio.core.lease import LeaseConfig, writer_lease
from uniaudio.core.ray_runtime import RayConfig, ensure_ray
from uniaudio.core.shard_file import ShardLimits
from uniaudio.sentences.registry import BuildContext, BuildOptions, Skip, get_builder
from uniaudio.sentences.sentence import Sentence
from uniaudio.sentences.sources import codec_of_inputs, list_input_shards, read_input_shard
from uniaudio.sentences.store import SentenceStoreWriter
from uniaudio.tokenize.text_tokenizer import TextTokenizer

__all__ = ["BuildRequest", "BuildSummary", "build_sentences"]


@dataclass(frozen=True)
class BuildRequest:
    """One ``sentences build``: kind, output, inputs and options (validated on construction)."""

    kind: str
    output_uri: str
    tokens: tuple[str, ...] = ()
    text: tuple[dict[str, Any], ...] = ()
    pools: dict[str, str] = field(default_factory=dict)
    tokenizer: str | None = None
    max_tokens: int = 2048
    seed: int = 0
    limit: int | None = None
    shard_samples: int = 4096
    overwrite: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific options (e.g. "codec"), JSON-able
    lease: LeaseConfig = field(default_factory=LeaseConfig)  # the writer lease on the output (core.lease)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}")
        if self.shard_samples < 1:
            raise ValueError(f"--shard-samples must be >= 1, got {self.shard_samples}")


@dataclass
class BuildSummary:
    """What a build wrote (whole store, earlier runs included) and what it skipped, by reason."""

    units: int = 0
    units_done: int = 0
    units_resumed: int = 0
    sentences: int = 0
    tokens: int = 0
    shards: int = 0
    skipped: Counter = field(default_factory=Counter)
    tasks: dict[str, dict[str, int]] = field(default_factory=dict)
    strategies: dict[str, dict[str, int]] = field(default_factory=dict)
    dry_run: bool = False


def _run_unit(batch: dict[str, Any], kind: str, options: str, codec_fingerprint: str | None) -> pa.Table:
    """Worker side: one unit → rows of encoded sentences, then an end row with the skip counts."""
    builder = get_builder(kind)
    opts = BuildOptions(**json.loads(options))
    rows: dict[str, list] = {k: [] for k in ("unit", "end", "key", "task", "strategy", "num_tokens",
                                             "names", "data", "skipped")}
    for unit_json in batch["unit"]:
        unit = json.loads(str(unit_json))
        samples = [s for shard in unit.get("shards", []) for s in read_input_shard(shard)]
        ctx = BuildContext(opts, unit["id"], codec_fingerprint)
        skipped: Counter = Counter()
        for item in builder.build_unit(unit, samples, ctx):
            if isinstance(item, Skip):
                skipped[item.reason] += 1
                continue
            if not isinstance(item, Sentence):
                raise TypeError(f"builder {kind!r} yielded {type(item).__name__}, not Sentence or Skip")
            n = item.num_tokens
            if n > opts.max_tokens:
                raise ValueError(f"builder {kind!r} made {item.key!r} of {n} tokens, over --max-tokens "
                                 f"{opts.max_tokens}")
            members = item.members()
            _append(rows, unit["id"], False, item.key, item.task, item.strategy, n,
                    [m[0] for m in members], [m[1] for m in members], "{}")
        _append(rows, unit["id"], True, "", "", None, 0, [], [], json.dumps(dict(skipped)))
    return pa.table({**rows, "names": pa.array(rows["names"], pa.list_(pa.string())),
                     "data": pa.array(rows["data"], pa.list_(pa.binary())),
                     "strategy": pa.array(rows["strategy"], pa.string())})


def _append(rows: dict[str, list], *values: Any) -> None:
    for name, value in zip(rows, values, strict=True):
        rows[name].append(value)


def build_sentences(request: BuildRequest, ray_config: RayConfig | None = None, dry_run: bool = False,
                    on_progress: Callable[[BuildSummary], None] | None = None) -> BuildSummary:
    """Build (or resume) the store of ``request``; returns the summary (also in ``index.json``).

    Errors a user can fix raise ``ValueError``/``FileNotFoundError``/``FileExistsError`` with the reason.
    """
    import ray.data

    builder = get_builder(request.kind)
    if builder.needs_tokens and not request.tokens:
        raise ValueError(f"{request.kind} builds from token stores: give at least one --tokens URI")
    codec = codec_of_inputs(list(request.tokens)) if request.tokens else {}
    shards = list_input_shards(list(request.tokens), request.pools) if request.tokens else []
    tokenizer = TextTokenizer.load(request.tokenizer)
    options = BuildOptions(kind=request.kind, max_tokens=request.max_tokens, seed=request.seed,
                           tokenizer=tokenizer.path if request.tokenizer else None,
                           extra={**request.extra, "text": list(request.text)})
    builder.check(options, codec)
    units = builder.units(shards, options)
    summary = BuildSummary(units=len(units), dry_run=dry_run)
    if dry_run:
        return summary
    fingerprint = {"kind": request.kind, "tokens": list(request.tokens), "text": list(request.text),
                   "pools": request.pools, "tokenizer": tokenizer.fingerprint,
                   "codec": codec.get("fingerprint"), "max_tokens": request.max_tokens, "seed": request.seed,
                   "limit": request.limit, **({"extra": request.extra} if request.extra else {})}
    with writer_lease(request.output_uri, request.lease), \
            SentenceStoreWriter(request.output_uri, fingerprint, ShardLimits(max_samples=request.shard_samples),
                                overwrite=request.overwrite) as writer:
        done = {u for n in writer.notes for u in n.get("units", [])}
        for n in writer.notes:
            summary.skipped.update(n.get("skipped", {}))
        summary.units_done = summary.units_resumed = len(done)
        summary.sentences = len(writer.committed_keys)
        summary.tokens = sum(s.tokens for s in writer.shards)
        pending_units: list[str] = []
        pending_skips: Counter = Counter()
        todo = [u for u in units if u["id"] not in done]
        if todo and (request.limit is None or summary.sentences < request.limit):
            ensure_ray(ray_config)
            ds = ray.data.from_items([{"unit": json.dumps(u)} for u in todo], override_num_blocks=len(todo))
            ds.context.execution_options.preserve_order = True
            ds = ds.map_batches(
                _run_unit, batch_size=1, batch_format="numpy", zero_copy_batch=True,
                fn_kwargs={"kind": request.kind, "options": json.dumps(asdict(options)),
                           "codec_fingerprint": codec.get("fingerprint")},
                **builder.ray_remote_args(options))
            for row in ds.iter_rows():
                if row["end"]:
                    pending_units.append(row["unit"])
                    skipped = json.loads(row["skipped"])
                    pending_skips.update(skipped)
                    summary.skipped.update(skipped)
                    summary.units_done += 1
                elif row["key"] not in writer.committed_keys:
                    writer.write_members(row["key"], row["task"], row["strategy"], int(row["num_tokens"]),
                                         list(zip(row["names"], row["data"], strict=True)))
                    summary.sentences += 1
                    summary.tokens += int(row["num_tokens"])
                    if writer.full():
                        writer.commit({"units": pending_units, "skipped": dict(pending_skips)})
                        pending_units, pending_skips = [], Counter()
                if on_progress is not None:
                    on_progress(summary)
                if request.limit is not None and summary.sentences >= request.limit:
                    break
        index = writer.close(
            {"units": pending_units, "skipped": dict(pending_skips)},
            kind=request.kind, task=request.kind, strategy=builder.strategy,
            tokenizer=tokenizer.describe(), codec=codec or None, codec_fingerprint=codec.get("fingerprint"),
            inputs={"tokens": list(request.tokens), "text": list(request.text), "pools": request.pools},
            options={"max_tokens": request.max_tokens, "seed": request.seed, "limit": request.limit,
                     **({"extra": request.extra} if request.extra else {})},
            units={"total": len(units), "done": summary.units_done},
            skipped=dict(sorted(summary.skipped.items())))
    summary.shards = index["totals"]["shards"]
    summary.sentences, summary.tokens = index["totals"]["samples"], index["totals"]["tokens"]
    summary.tasks, summary.strategies = index["tasks"], index["strategies"]
    return summary
