"""How a Ray Data driver's private memory grows with an execution's wall time (issue 14, bench/RESULTS.md).

One Ray Data execution of ``--tasks`` one-row blocks, each task sleeping ``--task-seconds`` on one CPU, so
the driver runs for ``tasks x task_seconds`` seconds with almost no tasks. Every ``--every`` seconds it
samples its ``RssAnon`` (private memory: Python and C++ heap) and the bytes Python itself has allocated
(``tracemalloc``), and at the end prints the growth per second after ``--warm-up`` seconds for both. When the
``RssAnon`` slope is well above the Python one, the growth is native (Ray's C++ core worker, gRPC), not
Python objects kept alive.

Ray's own per-second bookkeeping can be switched off in the driver to see its share, e.g.
``RAY_task_events_report_interval_ms=0 RAY_enable_metrics_collection=0 python bench/driver_growth_bench.py``.

Run: ``python bench/driver_growth_bench.py`` (10 minutes, one CPU mostly idle; its own Ray under a temporary
``--temp-dir``, so it can run beside another Ray).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import tempfile
import threading
import time
import tracemalloc

import ray
import ray.data


def rss_anon_mib() -> float:
    """This process's private resident memory (``RssAnon`` of /proc/self/status), MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


def _slope_kib_per_s(samples: list[tuple[float, float, float]], column: int, after: float) -> float:
    """KiB per second of ``samples[i][column]`` (MiB) between the first sample at ``after`` s and the last."""
    later = [s for s in samples if s[0] >= after]
    if len(later) < 2:
        raise SystemExit(f"too few samples after {after:.0f} s: raise --tasks or --task-seconds")
    first, last = later[0], later[-1]
    return (last[column] - first[column]) * 1024 / (last[0] - first[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--task-seconds", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--warm-up", type=float, default=120.0, help="seconds left out of the slopes")
    args = parser.parse_args()

    switched = {k: v for k, v in os.environ.items()  # the user's, before Ray sets its own
                if k.startswith("RAY_") and k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    temp_dir = tempfile.mkdtemp(prefix="uniaudio-growth-")
    ray.init(num_cpus=1, include_dashboard=False, _temp_dir=temp_dir,
             runtime_env={"env_vars": {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}})

    task_seconds = args.task_seconds

    def sleep_then_pass(batch: dict) -> dict:
        time.sleep(task_seconds)
        return batch

    ray.data.range(4, override_num_blocks=4).map_batches(lambda b: b, batch_size=None).materialize()  # warm-up
    gc.collect()
    tracemalloc.start()
    start, anon0 = time.monotonic(), rss_anon_mib()
    samples: list[tuple[float, float, float]] = []  # (seconds, RssAnon growth MiB, Python-allocated MiB)
    running = threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            samples.append((time.monotonic() - start, rss_anon_mib() - anon0,
                            tracemalloc.get_traced_memory()[0] / 2**20))
            time.sleep(args.every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    ds = ray.data.range(args.tasks, override_num_blocks=args.tasks).map_batches(sleep_then_pass, batch_size=None)
    for _ in ds.iter_batches(batch_size=None):
        pass
    running.clear()
    sampler.join()
    ray.shutdown()

    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, ray {ray.__version__}; "
          f"RAY_ settings: {switched or 'none'}")
    print(f"{args.tasks} tasks x {args.task_seconds:.0f} s, one at a time; samples every {args.every:.0f} s")
    print("seconds  RssAnon growth MiB  Python-allocated MiB")
    for seconds, anon, traced in samples:
        print(f"{seconds:7.0f}  {anon:18.2f}  {traced:20.2f}")
    anon_rate = _slope_kib_per_s(samples, 1, args.warm_up)
    python_rate = _slope_kib_per_s(samples, 2, args.warm_up)
    print(f"after {args.warm_up:.0f} s: RssAnon {anon_rate:+.2f} KiB/s, Python-allocated {python_rate:+.2f} KiB/s "
          f"({anon_rate * 3600 / 1024:+.1f} MiB per hour of execution)")


if __name__ == "__main__":
    main()
