"""ReasoningCodec encode throughput: audio-hours per device-hour, model FLOP utilisation, Ray vs bare loop.

Random weights are fine for speed: ``--config tiny`` uses the cached tiny set; ``--config official``
builds a random official-size set once in ``--set-dir`` (same formats as the released files; several GB
of disk) unless ``--codec-dir`` points at real checkpoints.

Measurements over the same synthetic clips (``--clips`` × ``--clip-seconds``):

1. ``loop``: :class:`TokenizeStage` called in a plain loop on batches of ``--batch-size`` rows (after one
   warm-up batch) → audio-hours per device-hour = audio seconds / wall seconds. With Ray, the loop runs
   again after the pipeline and the ratios use the faster of the two loop runs;
2. ``mfu``: FLOPs of one batch of windows counted with ``torch.utils.flop_counter`` (Whisper, WavLM,
   MusicFM and the codec layers), × windows / loop wall time / peak. The peak is ``--peak-tflops``, else
   989 TFLOP/s (H100 dense bf16) on CUDA, else a dense fp32 matmul measured in this run (CPU);
3. ``ray``: the same stage through ``ray.data.from_arrow(...).map_batches(TokenizeStage,
   compute=ActorPoolStrategy(size=--actors))``; throughput and its ratio to the loop. ``ray-steady``
   excludes actor start-up (process + model load), estimated as a one-batch run's wall time minus
   one loop batch.

Goals (issue 4): the Ray pipeline ≥ 0.85 of the bare loop; official ≥ 2,000 audio-hours per H100-hour.

Examples:
    python bench/codec_bench.py --config tiny --device cpu
    python bench/codec_bench.py --config official --device cuda --clips 64 --batch-windows 16
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch.utils.flop_counter import FlopCounterMode

from uniaudio.core.ray_runtime import RayConfig, ensure_ray
from uniaudio.pipelines.tokenize_stage import TokenizeStage, TokenizeStageConfig, apply_tokenize_stage
from uniaudio.tokenize.reasoning_codec import OFFICIAL, write_tiny_set
from uniaudio.tokenize.reasoning_codec.windowing import cut_windows

H100_BF16_TFLOPS = 989.0


def synthetic_clips(count: int, seconds: float) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 24_000)) / 24_000
    return [(0.3 * np.sin(2 * np.pi * rng.uniform(100, 600) * t) + 0.02 * rng.standard_normal(t.shape))
            .astype(np.float32) for _ in range(count)]


def table(clips: list[np.ndarray]) -> pa.Table:
    offsets = np.concatenate([[0], np.cumsum([c.shape[0] for c in clips])]).astype(np.int64)
    audio = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(np.concatenate(clips)))
    return pa.table({"key": [f"bench/c{i:05d}" for i in range(len(clips))], "source": ["bench"] * len(clips),
                     "reason": pa.array([None] * len(clips), pa.string()),
                     "detail": pa.array([None] * len(clips), pa.string()),
                     "audio_sample_rate": pa.array([24_000] * len(clips), pa.int32()), "audio": audio})


def official_random_set(root: Path) -> Path:
    """A random official-size checkpoint set (released formats), written once."""
    from transformers import WavLMConfig, WavLMModel, WhisperConfig, WhisperModel

    from uniaudio.tokenize.reasoning_codec.checkpoint import CheckpointSet, released_state_dict
    from uniaudio.tokenize.reasoning_codec.codec import ReasoningCodec
    from uniaudio.tokenize.reasoning_codec.music_encoder import MusicFM25Hz

    paths = CheckpointSet.from_dir(root)
    if paths.codec.is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    # whisper-medium and WavLM base-plus shapes (transformers' defaults are large-v2/base sizes)
    WhisperModel(WhisperConfig(d_model=1024, encoder_layers=24, decoder_layers=1, encoder_attention_heads=16,
                               decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096,
                               num_mel_bins=80)).save_pretrained(paths.whisper)
    WavLMModel(WavLMConfig()).save_pretrained(paths.wavlm)
    torch.save({"model": MusicFM25Hz(OFFICIAL.music).state_dict()}, paths.music_ssl)
    torch.save({"model": released_state_dict(ReasoningCodec(OFFICIAL))}, paths.codec)
    return root


def peak_flops(device: str, given: float | None) -> tuple[float, str]:
    if given:
        return given * 1e12, f"--peak-tflops {given}"
    if device.startswith("cuda"):
        return H100_BF16_TFLOPS * 1e12, "H100 dense bf16"
    a = torch.randn(2048, 2048)
    a @ a
    start = time.perf_counter()
    for _ in range(5):
        a @ a
    return 5 * 2 * 2048**3 / (time.perf_counter() - start), "measured fp32 matmul on this CPU"


def window_flops(stage: TokenizeStage, clip: np.ndarray) -> tuple[float, int]:
    """FLOPs per window (one encoder call of ``batch_windows`` copies of ``clip``'s first window) and
    the clip's window count."""
    tok = stage.tokenizer
    batch_windows = tok.batch_windows
    windows = cut_windows(clip, tok.window_mode).windows
    batch = torch.from_numpy(np.stack([windows[0]] * batch_windows)).to(tok.device)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode(), tok.autocast():
        tok.codec.encode(tok.encoders(batch))
    return counter.get_total_flops() / batch_windows, len(windows)


def run_loop(stage: TokenizeStage, tab: pa.Table, batch_size: int) -> float:
    stage(tab.slice(0, batch_size))  # warm-up
    if stage.tokenizer.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for offset in range(0, tab.num_rows, batch_size):
        stage(tab.slice(offset, batch_size))
    if stage.tokenizer.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run_ray(config: TokenizeStageConfig, tab: pa.Table, actors: int, batch_s: float) -> tuple[float, float]:
    """(wall of the full run, start-up estimate = a one-batch run's wall minus one loop batch)."""
    import ray.data

    start = time.perf_counter()
    first = apply_tokenize_stage(ray.data.from_arrow(tab.slice(0, config.batch_size)), config, actors)
    first.materialize()
    startup = time.perf_counter() - start - batch_s
    start = time.perf_counter()
    out = apply_tokenize_stage(ray.data.from_arrow(tab), config, actors).materialize()
    wall = time.perf_counter() - start
    if out.count() != tab.num_rows:
        raise RuntimeError(f"pipeline returned {out.count()} rows for {tab.num_rows}")
    return wall, startup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=["tiny", "official"], default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--codec-dir", default=None, help="real checkpoint set (default: random weights)")
    parser.add_argument("--set-dir", default="/tmp/uniaudio-official-random", help="where official random "
                        "weights are written")
    parser.add_argument("--window-mode", choices=["tile", "segment"], default="tile")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=4, help="rows per map_batches batch")
    parser.add_argument("--batch-windows", type=int, default=None,
                        help="windows per encoder call (default: 8 on CUDA, 1 on CPU)")
    parser.add_argument("--actors", type=int, default=1)
    parser.add_argument("--cpus-per-actor", type=float, default=float(os.cpu_count() or 1))
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()

    codec_dir = args.codec_dir
    if codec_dir is None and args.config == "official":
        codec_dir = str(official_random_set(Path(args.set_dir)))
    if codec_dir is None:
        codec_dir = str(write_tiny_set(Path(args.set_dir) / "tiny").codec.parent)
    cuda = args.device.startswith("cuda")
    config = TokenizeStageConfig(codec=args.config, codec_dir=codec_dir, device=args.device,
                                 window_mode=args.window_mode, batch_windows=args.batch_windows,
                                 batch_size=args.batch_size, gpus_per_actor=1.0 if cuda else 0.0,
                                 cpus_per_actor=1.0 if cuda else args.cpus_per_actor)
    clips = synthetic_clips(args.clips, args.clip_seconds)
    tab = table(clips)
    audio_s = args.clips * args.clip_seconds

    stage = TokenizeStage(config)
    loop_wall = run_loop(stage, tab, args.batch_size)
    flops_per_window, windows_per_clip = window_flops(stage, clips[0])
    peak, peak_source = peak_flops(args.device, args.peak_tflops)
    achieved = flops_per_window * windows_per_clip * args.clips / loop_wall
    result = {
        "config": args.config, "device": args.device, "window_mode": args.window_mode,
        "device_name": torch.cuda.get_device_name() if cuda else f"CPU x{os.cpu_count()}",
        "torch_threads": torch.get_num_threads(), "audio_seconds": audio_s, "windows": windows_per_clip * args.clips,
        "loop_wall_s": round(loop_wall, 3),
        "loop_audio_hours_per_device_hour": round(audio_s / loop_wall, 2),
        "gflops_per_window": round(flops_per_window / 1e9, 2), "achieved_tflops": round(achieved / 1e12, 4),
        "peak_tflops": round(peak / 1e12, 3), "peak_source": peak_source, "mfu": round(achieved / peak, 4),
    }
    if not args.skip_ray:
        ensure_ray(RayConfig(num_cpus=None if cuda else int(max(args.cpus_per_actor * args.actors, 1))))
        n_batches = -(-args.clips // args.batch_size)
        ray_wall, startup = run_ray(config, tab, args.actors, loop_wall / n_batches)
        loop_after = run_loop(stage, tab, args.batch_size)  # again, so machine load drifts cancel out
        loop_wall = min(loop_wall, loop_after)
        steady = max(ray_wall - startup, 1e-9)
        result |= {"loop_wall_after_ray_s": round(loop_after, 3), "loop_wall_best_s": round(loop_wall, 3),
                   "ray_actors": args.actors, "ray_wall_s": round(ray_wall, 3), "ray_startup_s": round(startup, 3),
                   "ray_audio_hours_per_device_hour": round(audio_s / ray_wall / args.actors, 2),
                   "ray_vs_loop": round(loop_wall / ray_wall / args.actors, 3),
                   "ray_steady_vs_loop": round(loop_wall / steady / args.actors, 3)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
