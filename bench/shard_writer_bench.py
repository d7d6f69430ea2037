"""Token-store write throughput: the single driver writer against 1 and 2 shard-writer actors, in one run.

    python bench/shard_writer_bench.py [--samples 20000] [--features] [--writers 1,2]

Input: a materialized Ray dataset of tokenized rows exactly as the tokenize stage emits them (2–20 s
clips: (8, 5·d) and (8, 12.5·d) uint16 tokens; with ``--features`` also 768-dim WavLM and 1024-dim MusicFM
float16 features at 12.5 Hz, the ``--distill-features`` payload), so the codec is not timed. Measured on
it, each writing a fresh store:

* the floor: the driver pulling every row and dropping it (what any driver-side writer pays first);
* the driver writer (``shards build`` without ``--shard-writers``): rows (``token_rows``) → ``token_sample`` →
  ``TokenStoreWriter.write``, shards committed and journaled by the driver;
* N shard-writer actors (``--shard-writers N``, :mod:`uniaudio.pipelines.shard_writer_stage`): the actors
  build, hash and commit the shards, the driver receives token-less rows and journals each shard
  (``TokenStoreWriter.record``), as ``run_build`` does.

Prints samples/s and MB/s of store written for each, and the ratio against the driver writer, over the
whole run (actor start-up included) and after the first output (steady state).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time

import numpy as np
import pyarrow as pa

from uniaudio.core.ray_runtime import RayConfig, ensure_ray
from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.shard_writer_stage import (
    ShardWriterConfig,
    apply_shard_writer_stage,
    parse_shard_record,
    token_sample,
)
from uniaudio.pipelines.token_store import TokenStoreWriter, read_index
from uniaudio.pipelines.tokenize_stage import token_rows
from uniaudio.testing.tokens import TEST_CODEC

FEATURE_DIMS = {"distill_wavlm": 768, "distill_music": 1024}


def make_rows(batch: dict, features: bool) -> pa.Table:
    """Tokenize-stage rows for the ids in ``batch`` (deterministic per id)."""
    rows: dict[str, list] = {name: [] for name in ("key", "source", "split", "duration_s", "reason", "detail",
                                                   "partition", "input_index", "partition_size", "fanout",
                                                   "audio_uri", "codec", "reason_tokens", "recon_tokens",
                                                   "reason_frames", "recon_frames")}
    feats: dict[str, list] = {name: [] for name in FEATURE_DIMS}
    for i in batch["id"].tolist():
        rng = np.random.default_rng(i)
        d = float(rng.uniform(2, 20))
        t_r, t_s = int(d * 5) + 1, int(d * 12.5) + 1
        values = {"key": f"bench/clip_{i:08d}", "source": "bench", "split": None, "duration_s": d, "reason": None,
                  "detail": None, "partition": f"p{i // 1000}", "input_index": i % 1000, "partition_size": 1000,
                  "fanout": 1, "audio_uri": f"/corpus/clip_{i}.flac", "codec": json.dumps(TEST_CODEC),
                  "reason_tokens": rng.integers(0, 1024, 8 * t_r, dtype=np.uint16),
                  "recon_tokens": rng.integers(0, 1024, 8 * t_s, dtype=np.uint16),
                  "reason_frames": t_r, "recon_frames": t_s}
        for name, value in values.items():
            rows[name].append(value)
        for name, dim in FEATURE_DIMS.items():
            feats[name].append(rng.standard_normal(dim * t_s).astype(np.float16))
    columns = {name: pa.array(values, type=pa.large_list(pa.uint16())) if name.endswith("_tokens")
               else pa.array(values) for name, values in rows.items()}
    if features:
        for name, dim in FEATURE_DIMS.items():
            columns[name] = pa.array(feats[name], type=pa.large_list(pa.float16()))
            columns[f"{name}_dim"] = pa.array([dim] * len(feats[name]), type=pa.int64())
    return pa.table(columns)


def floor(ds) -> int:
    n = 0
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        n += len(token_rows(batch))
    return n


def driver_writer(ds, uri: str, limits: ShardLimits) -> tuple[float, int]:
    """Write the store from the driver; returns (time of the first row, samples in the first block)."""
    first: tuple[float, int] | None = None
    with TokenStoreWriter(uri, TEST_CODEC, limits) as writer:
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            first = first or (time.perf_counter(), len(batch))
            for row in token_rows(batch):
                writer.write(token_sample(row))
    return first


def actor_writers(ds, uri: str, limits: ShardLimits, writers: int) -> tuple[float, int]:
    """Write the store with ``writers`` actors, journaling in the driver; (first output time, its rows)."""
    first: tuple[float, int] | None = None
    with TokenStoreWriter(uri, TEST_CODEC, limits) as writer:
        out = apply_shard_writer_stage(ds, ShardWriterConfig(uri, limits), writers, skip_keys=[])
        for batch in out.iter_batches(batch_size=None, batch_format="pyarrow"):
            first = first or (time.perf_counter(), len(batch))
            for text in batch.column("shard_record").to_pylist():
                if text:
                    record = parse_shard_record(text)
                    writer.record(record.shard, record.keys, record.notes)
            batch.drop_columns(["shard_record"]).to_pylist()  # the driver's per-row bookkeeping input
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--features", action="store_true", help="with 768 + 1024-dim float16 features")
    parser.add_argument("--writers", default="1,2", help="actor counts to measure, comma-separated")
    parser.add_argument("--shard-samples", type=int, default=1000)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    import ray

    ensure_ray(RayConfig())
    workdir = args.workdir or tempfile.mkdtemp(prefix="shard-writer-bench-")
    limits = ShardLimits(max_samples=args.shard_samples)
    ds = ray.data.range(args.samples, override_num_blocks=max(1, args.samples // 250)).map_batches(
        make_rows, fn_kwargs={"features": args.features}, batch_format="numpy", batch_size=250).materialize()
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; {args.samples} samples, features={args.features}")

    t0 = time.perf_counter()
    n = floor(ds)
    floor_s = time.perf_counter() - t0
    print(f"floor (driver pulls every row, writes nothing): {n / floor_s:,.0f} samples/s")

    results = []
    runs = [("driver writer", None)] + [(f"{w} shard-writer actor(s)", int(w)) for w in args.writers.split(",")]
    for name, writers in runs:
        uri = os.path.join(workdir, name.replace(" ", "_").replace("(", "").replace(")", ""))
        shutil.rmtree(uri, ignore_errors=True)
        t0 = time.perf_counter()
        if writers is None:
            first_at, first_rows = driver_writer(ds, uri, limits)
        else:
            first_at, first_rows = actor_writers(ds, uri, limits, writers)
        end = time.perf_counter()
        totals = read_index(uri).totals
        assert totals["samples"] == args.samples, totals
        steady = (args.samples - first_rows) / (end - first_at) if end > first_at else float("nan")
        results.append((name, end - t0, totals["bytes"], steady))
    base, base_steady = results[0][1], results[0][3]
    print("| writer | seconds (with start-up) | samples/s | MB/s | × driver | samples/s after the first "
          "output | × driver |")
    print("|---|---|---|---|---|---|---|")
    for name, seconds, size, steady in results:
        print(f"| {name} | {seconds:.2f} | {args.samples / seconds:,.0f} | {size / seconds / 1e6:,.1f} | "
              f"{base / seconds:.2f} | {steady:,.0f} | {steady / base_steady:.2f} |")
    print(f"# load after: {os.getloadavg()[0]:.1f}")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
