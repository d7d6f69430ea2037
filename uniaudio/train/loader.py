"""The per-rank training data loader: mixed, packed, token-budgeted, deterministic and exactly resumable.

Each rank owns one :class:`~uniaudio.train.stream.RankStream` per store (disjoint parts of every store). A
seeded generator picks the store of each draw by the mixture weights; a draw whose task the recipe does not
train, or that is longer than the context, is skipped and counted. Samples become sequences
(:func:`~uniaudio.train.samples.to_sequence`; CFG dropout decided from the sample's reference and the seed,
so a re-drawn sample gets the same decision) and are packed into micro-batches of ``rows`` rows of the
context length by first fit in draw order; up to ``lookahead`` samples that did not fit wait, in order, for
the next micro-batch, which tries them first. A micro-batch closes when its rows are full or the waiting
list overflows.

:meth:`TrainLoader.state` (JSON) is the whole position: every stream's position, the mixing generator's
state, the waiting samples' references and counters, plus a running digest of the keys consumed. A loader
built with that state produces exactly the micro-batches the original would have produced next; a different
world size is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from uniaudio.core.token_space import TokenLayout
from uniaudio.model.config import AuxDecoderConfig
from uniaudio.model.sequence import Batch, TokenSequence, collate_packed
from uniaudio.train.samples import to_sequence
from uniaudio.train.stream import Drawn, RankStream, ShardLoader, seeded_rng

STATE_VERSION = 1


@dataclass(frozen=True)
class LoaderConfig:
    """What the loader needs from the recipe and the model."""

    context: int
    rows: int
    lookahead: int
    tasks: tuple[str, ...]
    cfg_dropout: float
    seed: int
    layout: TokenLayout
    aux: AuxDecoderConfig | None = None


@dataclass(frozen=True)
class StoreSpec:
    """One store as the loader reads it: URI, shard names and mixture weight."""

    uri: str
    shards: tuple[str, ...]
    weight: float


@dataclass
class MicroBatch:
    """A packed micro-batch, the keys and sequences it holds and its real token count."""

    batch: Batch
    keys: list[str]
    sequences: list[TokenSequence]
    tokens: int
    samples: int


@dataclass
class _Item:
    drawn: Drawn
    seq: TokenSequence


@dataclass
class LoaderCounters:
    samples: int = 0
    micro_batches: int = 0
    tokens: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    digest: str = ""


class TrainLoader:
    """Micro-batches for ``rank`` of ``world`` (see the module docstring)."""

    def __init__(self, stores: list[StoreSpec], config: LoaderConfig, rank: int, world: int,
                 load_shard: ShardLoader, state: dict[str, Any] | None = None) -> None:
        if not stores:
            raise ValueError("TrainLoader: no stores")
        weights = np.array([s.weight for s in stores], dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"TrainLoader: mixture weights must be >= 0 with a positive sum, got {weights.tolist()}")
        self.stores, self.config, self.rank, self.world = stores, config, rank, world
        self.weights = weights / weights.sum()
        if state is not None and (state.get("version") != STATE_VERSION or state.get("world") != world
                                  or len(state.get("streams", [])) != len(stores)):
            raise ValueError(f"data state was saved by {state.get('world')} ranks over {len(state.get('streams', []))} "
                             f"stores; this run has {world} ranks over {len(stores)} stores: resume with the "
                             "same --workers and --data")
        streams = state["streams"] if state else [None] * len(stores)
        self.streams = [RankStream(i, s.uri, list(s.shards), rank, world, config.seed, load_shard, st)
                        for i, (s, st) in enumerate(zip(stores, streams, strict=True))]
        self.mixer = np.random.Generator(np.random.PCG64())
        if state:
            self.mixer.bit_generator.state = state["mixer"]
            self.counters = LoaderCounters(**state["counters"])
            self.pending = [self._item(self.streams[ref[0]].read_ref(tuple(ref))) for ref in state["pending"]]
        else:
            self.mixer = np.random.Generator(np.random.PCG64([config.seed & 0xFFFFFFFF, rank]))
            self.counters = LoaderCounters()
            self.pending: list[_Item] = []

    def state(self) -> dict[str, Any]:
        """The loader's position (JSON-ready; see the module docstring)."""
        return {
            "version": STATE_VERSION,
            "world": self.world,
            "rank": self.rank,
            "streams": [s.state() for s in self.streams],
            "mixer": self.mixer.bit_generator.state,
            "pending": [list(item.drawn.ref) for item in self.pending],
            "counters": self.counters.__dict__.copy(),
        }

    def _item(self, drawn: Drawn) -> _Item:
        store, epoch, shard, index = drawn.ref
        drop = bool(seeded_rng(self.config.seed, store, epoch, shard, index, 7).random() < self.config.cfg_dropout)
        return _Item(drawn, to_sequence(drawn.sample, self.config.layout, self.config.aux, unconditional=drop))

    def _skip(self, reason: str) -> None:
        self.counters.skipped[reason] = self.counters.skipped.get(reason, 0) + 1

    def _draw(self) -> _Item:
        for _ in range(100000):
            store = int(self.mixer.choice(len(self.streams), p=self.weights))
            drawn = self.streams[store].next()
            if drawn.sample.task not in self.config.tasks:
                self._skip(f"task {drawn.sample.task} not in the stage")
                continue
            if drawn.sample.tokens > self.config.context:
                self._skip(f"longer than context {self.config.context}")
                continue
            return self._item(drawn)
        raise ValueError("TrainLoader: 100000 draws in a row were skipped (see the skipped counters: "
                         f"{self.counters.skipped}); the stores hold nothing this stage trains on")

    def next(self) -> MicroBatch:
        """The next micro-batch of ``rows`` packed rows."""
        cfg = self.config
        rows: list[list[_Item]] = []
        free: list[int] = []
        waiting: list[_Item] = []
        queue, self.pending = self.pending, []
        while True:
            item = queue.pop(0) if queue else self._draw()
            n = len(item.seq)
            for r, room in enumerate(free):
                if n <= room:
                    rows[r].append(item)
                    free[r] -= n
                    break
            else:
                if len(rows) < cfg.rows:
                    rows.append([item])
                    free.append(cfg.context - n)
                else:
                    waiting.append(item)
            if (len(rows) == cfg.rows and not any(free)) or len(waiting) > cfg.lookahead:
                break
        self.pending = waiting + queue
        items = [it for row in rows for it in row]
        batch = collate_packed([[it.seq for it in row] for row in rows], cfg.context)
        keys = [it.drawn.sample.key for it in items]
        digest = hashlib.sha256(self.counters.digest.encode())
        for key in keys:
            digest.update(key.encode() + b"\n")
        tokens = sum(len(it.seq) for it in items)
        self.counters.digest = digest.hexdigest()
        self.counters.samples += len(items)
        self.counters.micro_batches += 1
        self.counters.tokens += tokens
        return MicroBatch(batch=batch, keys=keys, sequences=[it.seq for it in items], tokens=tokens,
                          samples=len(items))
