"""Audio stage throughput: seconds of audio per CPU-second, decode + resample of 16 kHz FLAC to 24 kHz.

Three measurements over the same synthetic FLAC files (written once to a temporary directory):

1. ``bare``: a plain loop of ``soundfile.read`` + ``soxr.resample`` (the floor), CPU time of this process;
2. ``stage-loop``: :class:`AudioStage` (decode, filters, mono, resample) in a plain loop, CPU time;
3. ``stage-ray``: the same stage through Ray Data ``map_batches`` on ``--cpus`` CPU tasks. Its CPU cost
   is the CPU time, over the run, of this process (driver, streaming executor) and of the processes of
   the embedded Ray cluster (raylet, GCS, task workers: descendants of this process, read with psutil)
   except Ray Data's own bookkeeping actors (``_StatsActor``, ``_AutoscalingCoordinatorActor``);
   ``stage-ray-cluster`` counts those too, ``stage-ray-wall`` charges wall time x CPUs (an upper bound
   that also counts any other load on the machine).

The ``-ingest`` rows run the stage as ``uniaudio ingest`` does (``keep_audio=False``: decode and filters,
no resampling, no waveforms out), so they are not a like-for-like comparison with ``bare``.

Ray start-up is excluded (one warm-up pass runs first). Goal (issue 3): at least 200x real time per
core, and the Ray stage within 25% of the bare loop. Run: ``python bench/ingest_bench.py``.

``--scale 5000,40000`` (issue 14) measures instead the driver's memory against corpus size: one NeMo
manifest of N lines (a few short clips reused under N ids through hard links), then ``ingest`` and
``shards build`` of it, each in a fresh process (the tiny codec in ``segment`` mode, 8 windows per
call: ``tile`` mode runs every 0.6 s clip as a 30 s window, ~1 clip/s on a CPU core); reported per command and N: the
driver's peak RSS (``ru_maxrss``), its RSS once Ray is up, the growth from the smallest N, the
partitions, the seconds and the 1-minute load average before and after. Goal: peak RSS flat (under
25 MiB more) from 5,000 to 40,000 records. ``--scale 200000`` is the issue's 200k-record corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import soxr

from uniaudio.core.ray_runtime import RayConfig, ensure_ray
from uniaudio.pipelines.audio_stage import AudioStage, AudioStageConfig, apply_audio_stage
from uniaudio.pipelines.records import RECORD_SCHEMA, AudioRecord
from uniaudio.testing.audio import write_audio


def _write_corpus(root: Path, clips: int, seconds: float) -> list[Path]:
    return [write_audio(root / f"c{i:04d}.flac", seconds, 16000, seed=i, f0=150 + i % 50) for i in range(clips)]


def bench_bare(paths: list[Path]) -> float:
    start = time.process_time()
    for path in paths:
        data, sr = sf.read(path, dtype="float32")
        soxr.resample(data, sr, 24000, quality="HQ")
    return time.process_time() - start


def _rows(paths: list[Path]) -> list[dict]:
    return [AudioRecord(key=f"bench/c{i:04d}", source="bench", audio_uri=str(p)).to_row() for i, p in enumerate(paths)]


def bench_stage_loop(paths: list[Path], batch_size: int) -> float:
    stage = AudioStage(AudioStageConfig(), batch_size=batch_size)
    rows = _rows(paths)
    start = time.process_time()
    for i in range(0, len(rows), batch_size):
        outputs = stage.process_batch(rows[i : i + batch_size])
        assert all(out["reason"] is None for out in outputs), outputs[0]["detail"]
    return time.process_time() - start


_RAY_DATA_ACTORS = ("_StatsActor", "_AutoscalingCoordinatorActor")


def _cpu_snapshot() -> dict[tuple[int, str], float]:
    """CPU seconds of this process and each descendant (the embedded Ray cluster), by (pid, name)."""
    import psutil

    me = psutil.Process()
    snapshot = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            times, name = proc.cpu_times(), proc.name()
        except psutil.NoSuchProcess:
            continue
        snapshot[(proc.pid, name)] = times.user + times.system
    return snapshot


def bench_stage_ray(paths: list[Path], batch_size: int, cpus: int, keep_audio: bool = True) -> dict[str, float]:
    """CPU cost of one warm Ray Data run of the stage, three ways (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import ray.data

    ensure_ray(RayConfig(num_cpus=cpus))
    table = pa.Table.from_pylist(_rows(paths), schema=RECORD_SCHEMA)
    stage = AudioStage(AudioStageConfig(keep_audio=keep_audio), batch_size=batch_size)
    suffix = "" if keep_audio else "-ingest"

    def run() -> dict[str, float]:
        ds = apply_audio_stage(ray.data.from_arrow(table), stage)
        before, wall0 = _cpu_snapshot(), time.perf_counter()
        batches = ds.iter_batches(batch_size=None, batch_format="pyarrow")
        kept = sum(pc.sum(pc.is_null(batch["reason"])).as_py() for batch in batches)
        wall, after = time.perf_counter() - wall0, _cpu_snapshot()
        assert kept == len(paths), f"{len(paths) - kept} clips rejected"
        used = {key: after[key] - before.get(key, 0.0) for key in after}
        background = sum(v for (_, name), v in used.items() if any(a in name for a in _RAY_DATA_ACTORS))
        total = sum(used.values())
        return {f"stage-ray{suffix}": total - background, f"stage-ray-cluster{suffix}": total,
                f"stage-ray-wall{suffix}": wall * cpus}

    run()  # warm-up: worker processes import numpy/soundfile/soxr once
    return run()


def _write_manifest(root: Path, records: int, clips: int = 8, seconds: float = 0.6) -> Path:
    """A NeMo manifest of ``records`` lines over ``clips`` synthetic clips, each reused via hard links."""
    sources = [write_audio(root / "src" / f"s{i}.wav", seconds, 16000, seed=i) for i in range(clips)]
    (root / "clips").mkdir(exist_ok=True)
    manifest = root / "manifest.jsonl"
    with manifest.open("w") as f:
        for i in range(records):
            link = root / "clips" / f"{i:07d}.wav"
            if not link.exists():
                os.link(sources[i % clips], link)
            f.write(json.dumps({"audio_filepath": f"clips/{i:07d}.wav", "duration": seconds, "text": f"clip {i}"}))
            f.write("\n")
    return manifest


def _rss_parts_mib() -> dict[str, float]:
    """The driver's resident memory by kind (``/proc/self/status``): private (anon), file, shared memory."""
    fields = {"RssAnon": "anon", "RssFile": "file", "RssShmem": "shmem"}
    parts = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in fields:
            parts[fields[name]] = round(int(value.split()[0]) / 1024, 1)
    return parts


class _PeakSampler:
    """Largest value of each :func:`_rss_parts_mib` field, sampled every 0.2 s in a thread."""

    def __init__(self) -> None:
        import threading

        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for name, value in _rss_parts_mib().items():
                self.peak[name] = max(self.peak.get(name, 0.0), value)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return self.peak


def scale_run(command: str, manifest: Path, out: Path, cpus: int, passes: int | None = None,
              records_per_pass: int | None = None, codec_batch: int | None = None,
              audio_batch: int | None = None) -> dict[str, float]:
    """One ``ingest`` or ``shards build`` of ``manifest`` in this process; the driver's memory (MiB)."""
    import psutil

    from uniaudio.pipelines.build import BuildConfig, run_build
    from uniaudio.pipelines.ingest import IngestConfig, run_ingest
    from uniaudio.pipelines.tokenize_stage import BUILD_BATCH_ROWS, TokenizeStageConfig

    ray = RayConfig(num_cpus=cpus)
    pass_size = {"partitions_per_pass": passes} | ({"records_per_pass": records_per_pass} if records_per_pass else {})
    ensure_ray(ray)
    after_init = psutil.Process().memory_info().rss
    start, load_before, sampler = time.perf_counter(), os.getloadavg()[0], _PeakSampler()
    if command == "ingest":
        summary = run_ingest(IngestConfig(source="manifest", input_uri=str(manifest), output_uri=str(out), ray=ray,
                                          **pass_size))
        records = summary["records"]
    else:
        tokenize = TokenizeStageConfig(window_mode="segment", batch_windows=8,  # see the module docstring
                                       batch_size=codec_batch or BUILD_BATCH_ROWS)
        summary = run_build(BuildConfig(source="manifest", input_uri=str(manifest), output_uri=str(out), ray=ray,
                                        tokenize=tokenize, **pass_size,
                                        audio_batch_size=audio_batch or BuildConfig.audio_batch_size))
        records = summary["store"]["samples"]
    return {"records": records, "partitions": summary["partitions"].get("total"),
            "seconds": round(time.perf_counter() - start, 1),
            "load_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "rss_after_ray_init_mib": round(after_init / 2**20, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_rss_by_kind_mib": sampler.stop()}


def scale_main(args: argparse.Namespace) -> None:
    sizes = sorted(int(n) for n in args.scale.split(","))
    results: dict[str, dict[int, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for n in sizes:
            manifest = _write_manifest(Path(tmp) / f"n{n}", n)
            for command in args.commands.split(","):
                out = Path(tmp) / f"out-{command}-{n}"
                proc = subprocess.run([sys.executable, __file__, "--scale-run", command, str(manifest), str(out),
                                       "--cpus", str(args.cpus)]
                                      + (["--partitions-per-pass", str(args.partitions_per_pass)]
                                         if args.partitions_per_pass else [])
                                      + (["--records-per-pass", str(args.records_per_pass)]
                                         if args.records_per_pass else [])
                                      + (["--codec-batch", str(args.codec_batch)] if args.codec_batch else [])
                                      + (["--audio-batch", str(args.audio_batch)] if args.audio_batch else []),
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    sys.exit(f"{command} of {n} records failed:\n{proc.stderr[-4000:]}")
                results.setdefault(command, {})[n] = json.loads(proc.stdout.strip().splitlines()[-1])
                print(command, n, results[command][n], flush=True)
    for runs in results.values():
        base, base_anon = runs[sizes[0]]["peak_rss_mib"], runs[sizes[0]]["peak_rss_by_kind_mib"]["anon"]
        for run in runs.values():
            run["peak_growth_mib"] = round(run["peak_rss_mib"] - base, 1)
            run["peak_anon_growth_mib"] = round(run["peak_rss_by_kind_mib"]["anon"] - base_anon, 1)
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=480)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each clip")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cpus", type=int, default=2, help="Ray CPUs for the stage-ray run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--tmp", type=Path, help="directory for the synthetic FLAC files (default: system temp)")
    parser.add_argument("--scale", help="driver memory mode: comma-separated manifest sizes, e.g. 5000,40000")
    parser.add_argument("--commands", default="ingest,build", help="with --scale: ingest and/or build")
    parser.add_argument("--partitions-per-pass", type=int,
                        help="with --scale: fixed partitions per execution (default: passes sized in records)")
    parser.add_argument("--records-per-pass", type=int, help="with --scale: records per execution (default: the "
                        "command's)")
    parser.add_argument("--audio-batch", type=int, help="with --scale: rows per audio-stage block (build)")
    parser.add_argument("--codec-batch", type=int,
                        help="with --scale: clips per codec call (build; default: the stage's)")
    parser.add_argument("--scale-run", nargs=3, metavar=("COMMAND", "MANIFEST", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_run:
        command, manifest, out = args.scale_run
        print(json.dumps(scale_run(command, Path(manifest), Path(out), args.cpus, args.partitions_per_pass,
                                   args.records_per_pass, args.codec_batch, args.audio_batch)))
        return
    if args.scale:
        scale_main(args)
        return

    audio_s = args.clips * args.seconds
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        paths = _write_corpus(Path(tmp), args.clips, args.seconds)
        cpu = {"bare": bench_bare(paths), "stage-loop": bench_stage_loop(paths, args.batch_size)}
        cpu.update(bench_stage_ray(paths, args.batch_size, args.cpus))
        cpu.update(bench_stage_ray(paths, args.batch_size, args.cpus, keep_audio=False))
    results = {
        "audio_seconds": audio_s,
        "clips": args.clips,
        "cpus_ray": args.cpus,
        "cpu_seconds": {k: round(v, 3) for k, v in cpu.items()},
        "x_realtime_per_core": {k: round(audio_s / v, 1) for k, v in cpu.items()},
        "overhead_vs_bare": {k: round(v / cpu["bare"] - 1, 3) for k, v in cpu.items() if k != "bare"},
    }
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
