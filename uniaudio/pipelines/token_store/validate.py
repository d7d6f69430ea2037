"""``uniaudio shards validate``: check a store's index against its tars, and every sample's tokens.

Each shard is read once, streaming: its sha256 and size are computed while the tar is parsed.
Every problem found is reported (not just the first), each naming the shard, and the key or member.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from uniaudio.core import storage
from uniaudio.core.ustar import StoreReadError, is_shard_name, iter_members, split_member
from uniaudio.pipelines.token_store.format import INDEX_NAME, StoreSpec
from uniaudio.pipelines.token_store.index import ShardEntry, read_index

__all__ = ["Problem", "validate_store"]

REQUIRED_META = ("key", "source", "duration_s", "origin", "codec")


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class _HashingReader(io.RawIOBase):
    """Read-through wrapper counting bytes and hashing them (so one pass both parses and verifies)."""

    def __init__(self, f) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.f.read(len(b))
        n = len(data)
        b[:n] = data
        self.sha.update(data)
        self.size += n
        return n

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


@dataclass
class _ShardTally:
    samples: int = 0
    duration_s: float = 0.0
    reason_tokens: int = 0
    recon_tokens: int = 0


def _check_tokens(name: str, data: bytes, spec: StoreSpec, card: int, rate: float, tol: float,
                  duration: float | None, where: str) -> tuple[list[Problem], int]:
    problems: list[Problem] = []
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        return [Problem(where, f"{name} is not a readable .npy array ({e})")], 0
    if arr.dtype != np.uint16:
        problems.append(Problem(where, f"{name} has dtype {arr.dtype}, expected uint16"))
    if arr.ndim != 2 or arr.shape[0] != spec.codebooks:
        problems.append(Problem(where, f"{name} has shape {arr.shape}, expected ({spec.codebooks}, T)"))
        return problems, int(arr.size)
    if duration is not None and abs(arr.shape[1] - rate * duration) > tol:
        problems.append(Problem(where, f"{name} has T={arr.shape[1]} frames but duration_s={duration} "
                                       f"implies {rate * duration:.2f} ± {tol}"))
    if arr.size and np.issubdtype(arr.dtype, np.integer):
        top = int(arr.max())
        if top >= card or int(arr.min()) < 0:
            problems.append(Problem(where, f"{name} holds token id {top if top >= card else int(arr.min())} "
                                           f"outside [0, {card})"))
    return problems, int(arr.size)


def _check_sample(key: str, members: dict[str, bytes], spec: StoreSpec, where: str,
                  tally: _ShardTally) -> list[Problem]:
    problems: list[Problem] = []
    for need in ("reason.npy", "recon.npy", "json"):
        if need not in members:
            problems.append(Problem(where, f"sample {key!r} is missing member {key}.{need}"))
    duration = None
    if "json" in members:
        try:
            meta = json.loads(members["json"])
            absent = [f for f in REQUIRED_META if f not in meta]
            if absent:
                problems.append(Problem(where, f"{key}.json lacks {', '.join(absent)}"))
            if meta.get("key") not in (None, key):
                problems.append(Problem(where, f"{key}.json names key {meta.get('key')!r}"))
            duration = float(meta["duration_s"]) if meta.get("duration_s") is not None else None
        except (ValueError, TypeError) as e:
            problems.append(Problem(where, f"{key}.json is not valid JSON metadata ({e})"))
    tally.samples += 1
    tally.duration_s += duration or 0.0
    for ext, card, rate, tol, attr in (
        ("reason.npy", spec.reason_card, spec.reason_hz, spec.reason_tolerance, "reason_tokens"),
        ("recon.npy", spec.recon_card, spec.recon_hz, spec.recon_tolerance, "recon_tokens"),
    ):
        if ext in members:
            found, size = _check_tokens(f"{key}.{ext}", members[ext], spec, card, rate, tol, duration, where)
            problems += found
            setattr(tally, attr, getattr(tally, attr) + size)
    for ext, data in members.items():
        if ext.endswith(".npy") and ext not in ("reason.npy", "recon.npy"):
            try:
                np.load(io.BytesIO(data), allow_pickle=False)
            except ValueError as e:
                problems.append(Problem(where, f"{key}.{ext} is not a readable .npy array ({e})"))
    return problems


def _walk_shard(uri: str, spec: StoreSpec, seen: dict[str, str]) -> tuple[list[Problem], _ShardTally, int, str]:
    name = uri.rsplit("/", 1)[-1]
    problems: list[Problem] = []
    tally = _ShardTally()
    with storage.open_uri(uri, "rb") as raw:
        reader = _HashingReader(raw)
        stream = io.BufferedReader(reader, buffer_size=1 << 20)
        finished_keys: set[str] = set()
        current: str | None = None
        members: dict[str, bytes] = {}

        def close_sample() -> None:
            if current is None:
                return
            problems.extend(_check_sample(current, members, spec, name, tally))
            finished_keys.add(current)
            if current in seen:
                problems.append(Problem(name, f"duplicate key {current!r} (also in {seen[current]})"))
            else:
                seen[current] = name

        try:
            for member, data in iter_members(stream, name):
                key, ext = split_member(member)
                if key != current:
                    close_sample()
                    if key in finished_keys:
                        problems.append(Problem(name, f"members of {key!r} are not adjacent ({member} "
                                                      "comes after another sample)"))
                    current, members = key, {}
                if ext in members:
                    problems.append(Problem(name, f"member {member} appears twice"))
                members[ext] = data
            close_sample()
        except (StoreReadError, ValueError) as e:
            problems.append(Problem(name, f"unreadable: {e}".replace(f"{name}: ", "")))
        stream.read()
        reader.drain()
    return problems, tally, reader.size, reader.sha.hexdigest()


def _compare(entry: ShardEntry, tally: _ShardTally, size: int, sha: str) -> list[Problem]:
    problems = []
    if size != entry.bytes:
        problems.append(Problem(entry.name, f"size is {size} bytes, index says {entry.bytes}"))
    if sha != entry.sha256:
        problems.append(Problem(entry.name, f"sha256 is {sha}, index says {entry.sha256}"))
    if tally.samples != entry.samples:
        problems.append(Problem(entry.name, f"holds {tally.samples} samples, index says {entry.samples}"))
    if abs(tally.duration_s - entry.duration_s) > 0.01 + 1e-6 * entry.duration_s:
        problems.append(Problem(entry.name, f"holds {tally.duration_s:.3f} s of audio, index says "
                                            f"{entry.duration_s}"))
    for attr in ("reason_tokens", "recon_tokens"):
        if getattr(tally, attr) != getattr(entry, attr):
            problems.append(Problem(entry.name, f"holds {getattr(tally, attr)} {attr.replace('_', ' ')}, "
                                                f"index says {getattr(entry, attr)}"))
    return problems


def validate_store(
    store_uri: str,
    spec: StoreSpec | None = None,
    on_shard: Callable[[str], None] | None = None,
) -> list[Problem]:
    """Every problem found in the store; an empty list means it is sound."""
    spec = spec or StoreSpec()
    try:
        index = read_index(store_uri)
    except (FileNotFoundError, ValueError) as e:
        return [Problem(INDEX_NAME, str(e))]
    problems: list[Problem] = []
    listed = {s.name for s in index.shards}
    on_disk = {u.rsplit("/", 1)[-1] for u in storage.glob(store_uri, "shard-*.tar")}
    for extra in sorted(on_disk - listed):
        if is_shard_name(extra):
            problems.append(Problem(extra, "shard exists but is not listed in index.json"))
    if len(listed) != len(index.shards):
        problems.append(Problem(INDEX_NAME, "lists a shard name more than once"))
    seen: dict[str, str] = {}
    for entry in index.shards:
        if on_shard:
            on_shard(entry.name)
        uri = storage.join(store_uri, entry.name)
        if entry.name not in on_disk:
            problems.append(Problem(entry.name, "listed in index.json but missing"))
            continue
        found, tally, size, sha = _walk_shard(uri, spec, seen)
        problems += found + _compare(entry, tally, size, sha)
    return problems
