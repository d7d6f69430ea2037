"""Token store throughput: writer vs a plain sequential write, readers vs a plain read, in one run.

    python bench/store_bench.py [--samples 20000] [--extras] [--workdir DIR]

Samples are token arrays for clips of 2–20 s (about 3.6 KB each, the store's real payload); with
``--extras`` each also carries 12.5 Hz float16 distillation features (768 + 1024 dims), the
heavy-payload case. Every ratio compares with a baseline measured in the same run on the same disk:

* writer: ``TokenStoreWriter`` (encode arrays, tar headers, sha256, atomic commit, journal) vs
  writing the very bytes of the resulting shards with ``open().write()`` + ``fsync``;
* readers: ``iter_store`` (uniaudio), ``webdataset.WebDataset`` + ``np.load`` and Ray Data's
  ``read_webdataset`` (via ``read_store_ray``) vs a plain sequential ``read()`` of the same files,
  and vs the standard library's ``tarfile`` walking the members (the floor for any tar reader).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.token_store import TokenStoreWriter, iter_store, read_store_ray
from uniaudio.testing.tokens import random_sample


def make_samples(n: int, extras: bool) -> list:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        d = float(rng.uniform(2, 20))
        ex = {}
        if extras:
            frames = int(d * 12.5) + 1
            ex = {"wavlm": rng.standard_normal((frames, 768)).astype(np.float16),
                  "musicfm": rng.standard_normal((frames, 1024)).astype(np.float16)}
        out.append(random_sample(f"bench/clip_{i:07d}", d, seed=i, extras=ex, text="a short transcript"))
    return out


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def write_store(samples, store: Path) -> None:
    with TokenStoreWriter(str(store), {"name": "bench", "config": "-", "fingerprint": "bench"},
                          ShardLimits(max_samples=5000, max_bytes=256 << 20)) as w:
        for s in samples:
            w.write(s)


def plain_write(blobs: list[bytes], out: Path) -> None:
    out.mkdir(parents=True)
    for i, blob in enumerate(blobs):
        with open(out / f"f{i}.bin", "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())


def plain_read(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while chunk := f.read(1 << 20):
                n += len(chunk)
    return n


def tarfile_walk(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        with tarfile.open(p, "r|") as tar:
            for m in tar:
                n += len(tar.extractfile(m).read())
    return n


def wds_read(paths: list[Path]) -> int:
    import webdataset as wds

    n = 0
    for row in wds.WebDataset([str(p) for p in paths], shardshuffle=False):
        np.load(io.BytesIO(row["reason.npy"]), allow_pickle=False)
        np.load(io.BytesIO(row["recon.npy"]), allow_pickle=False)
        n += 1
    return n


def ray_read(store: Path) -> int:
    return sum(len(b["key"]) for b in read_store_ray(str(store)).iter_batches(batch_size=1024))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--extras", action="store_true", help="add float16 distillation features to every sample")
    ap.add_argument("--workdir", type=Path, default=None, help="directory on the disk to measure (default: tmp)")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="store-bench-", dir=args.workdir))
    try:
        samples = make_samples(args.samples, args.extras)
        store = work / "store"
        t_writer, _ = timed(lambda: write_store(samples, store))
        shards = sorted(store.glob("shard-*.tar"))
        blobs = [p.read_bytes() for p in shards]
        total = sum(len(b) for b in blobs)
        t_plain_w, _ = timed(lambda: plain_write(blobs, work / "plain"))

        t_plain_r, _ = timed(lambda: plain_read(shards))
        t_tarfile, _ = timed(lambda: tarfile_walk(shards))
        t_iter, n_iter = timed(lambda: sum(1 for _ in iter_store(str(store))))
        t_wds, n_wds = timed(lambda: wds_read(shards))
        assert n_iter == n_wds == len(samples)
        results = {}
        if not args.no_ray:
            from uniaudio.core.ray_runtime import RayConfig, ensure_ray

            ensure_ray(RayConfig())
            ray_read(store)  # warm-up: worker start and imports are not reader throughput
            t_ray, n_ray = timed(lambda: ray_read(store))
            assert n_ray == len(samples)
            results["ray read_webdataset"] = t_ray

        mb = total / 1e6
        print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores; disk: {work}")
        print(f"{len(samples)} samples, {len(shards)} shards, {mb:.1f} MB, extras={args.extras}")
        print(f"{'what':34s} {'s':>8s} {'MB/s':>9s} {'samples/s':>11s} {'ratio':>7s}")

        def row(name: str, t: float, base: float) -> None:
            print(f"{name:34s} {t:8.3f} {mb / t:9.1f} {len(samples) / t:11.0f} {base / t:7.2f}")

        row("plain write (baseline)", t_plain_w, t_plain_w)
        row("TokenStoreWriter", t_writer, t_plain_w)
        row("plain read (baseline)", t_plain_r, t_plain_r)
        row("tarfile walk", t_tarfile, t_plain_r)
        row("iter_store (uniaudio)", t_iter, t_plain_r)
        row("webdataset + np.load", t_wds, t_plain_r)
        for name, t in results.items():
            row(name, t, t_plain_r)
        print("ratios vs tarfile walk: " + ", ".join(
            f"{name} {t_tarfile / t:.2f}" for name, t in
            [("iter_store", t_iter), ("webdataset", t_wds), *results.items()]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
