"""One rank's endless, deterministic walk through one sentence store, with a position it can resume from.

The store's shards are cut into *units*: with ``n`` shards and ``W`` ranks, ``m = ceil(W / n)`` units per
shard, unit ``(shard, j)`` holding the shard's samples whose index ``≡ j (mod m)``. Rank ``r`` owns units
``r, r + W, r + 2W, …`` of that list, so ranks read disjoint samples however many shards there are (a
store with fewer shards than ranks is split by sample index; every rank then reads the small shards it
needs whole, which is cheap for token data). Each epoch visits the rank's units in an order shuffled from
``(seed, store, rank, epoch)``, and each unit's samples in an order shuffled from ``(seed, store, epoch,
shard, j)``. The position ``(epoch, unit, offset)`` is all the state there is: :meth:`RankStream.state`
and ``RankStream(..., state=...)`` resume exactly, and :func:`sample_ref` names a drawn sample so it can
be read again on its own (:meth:`RankStream.read_ref`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from uniaudio.train.samples import StoreSample


@dataclass(frozen=True)
class Drawn:
    """A sample drawn from a store: its reference ``(store, epoch, shard, index)`` and contents."""

    ref: tuple[int, int, int, int]
    sample: StoreSample


ShardLoader = Callable[[str, str], list[StoreSample]]
"""Reads one shard of a store: ``(store_uri, shard_name) → samples in shard order``."""


def seeded_rng(*seed: int) -> np.random.Generator:
    """A generator that is a pure function of the integers given."""
    return np.random.default_rng([int(s) & 0xFFFFFFFF for s in seed])


def units_per_shard(n_shards: int, world: int) -> int:
    """``m = ceil(W / n)``: the units each shard is cut into (see the module docstring)."""
    return math.ceil(world / n_shards)


def rank_units(n_shards: int, rank: int, world: int) -> list[tuple[int, int]]:
    """The units ``(shard, j)`` that ``rank`` of ``world`` owns, in store order."""
    m = units_per_shard(n_shards, world)
    return [(s, j) for s in range(n_shards) for j in range(m)][rank::world]


def owned_samples(shard_samples: Sequence[int], rank: int, world: int) -> int:
    """How many samples of a store with these per-shard sample counts ``rank`` of ``world`` reads per epoch."""
    m = units_per_shard(len(shard_samples), world)
    return sum(len(range(j, shard_samples[s], m)) for s, j in rank_units(len(shard_samples), rank, world))


class RankStream:
    """Samples of store ``store_index`` for ``rank`` of ``world`` (see the module docstring)."""

    def __init__(self, store_index: int, uri: str, shards: list[str], rank: int, world: int, seed: int,
                 load_shard: ShardLoader, state: dict[str, Any] | None = None) -> None:
        if not shards:
            raise ValueError(f"{uri}: the store has no shards")
        self.store_index, self.uri, self.shards = store_index, uri, shards
        self.rank, self.world, self.seed = rank, world, seed
        self._load_shard = load_shard
        self.per_shard = units_per_shard(len(shards), world)
        self.units = rank_units(len(shards), rank, world)
        state = state or {"epoch": 0, "unit": 0, "offset": 0}
        self.epoch, self.unit, self.offset = int(state["epoch"]), int(state["unit"]), int(state["offset"])
        self._cache: tuple[int, list[StoreSample]] | None = None
        self._order: list[tuple[int, int]] = []
        self._members: list[int] = []
        self._prepare_epoch()
        self._prepare_unit()

    def state(self) -> dict[str, int]:
        """The position of the next sample (JSON-ready)."""
        return {"epoch": self.epoch, "unit": self.unit, "offset": self.offset}

    def _prepare_epoch(self) -> None:
        perm = seeded_rng(self.seed, self.store_index, self.rank, self.epoch).permutation(len(self.units))
        self._order = [self.units[i] for i in perm]

    def _shard(self, shard: int) -> list[StoreSample]:
        if self._cache is None or self._cache[0] != shard:
            self._cache = (shard, self._load_shard(self.uri, self.shards[shard]))
        return self._cache[1]

    def _prepare_unit(self) -> None:
        shard, j = self._order[self.unit]
        n = len(self._shard(shard))
        members = np.arange(j, n, self.per_shard)
        perm = seeded_rng(self.seed, self.store_index, self.epoch, shard, j).permutation(len(members))
        self._members = [int(i) for i in members[perm]]

    def next(self) -> Drawn:
        """The next sample (moving to the next unit and epoch as needed); ``ValueError`` if the rank's part
        of the store is empty."""
        visited = 0
        while self.offset >= len(self._members):
            visited += 1
            if visited > len(self.units) + 1:
                raise ValueError(f"{self.uri}: rank {self.rank} of {self.world} owns no samples of this store")
            self.offset = 0
            self.unit += 1
            if self.unit >= len(self._order):
                self.unit = 0
                self.epoch += 1
                self._prepare_epoch()
            self._prepare_unit()
        shard = self._order[self.unit][0]
        index = self._members[self.offset]
        self.offset += 1
        return Drawn((self.store_index, self.epoch, shard, index), self._shard(shard)[index])

    def read_ref(self, ref: tuple[int, int, int, int]) -> Drawn:
        """The sample a reference names (re-reading its shard), as it was drawn."""
        _, _, shard, index = ref
        return Drawn(tuple(int(x) for x in ref), self._shard(shard)[index])  # type: ignore[arg-type]


def sample_ref(drawn: Drawn) -> list[int]:
    """JSON form of a drawn sample's reference."""
    return list(drawn.ref)
