"""Training throughput: the Ray Train + DeepSpeed loop against a plain single-process PyTorch loop, the data
loader against what the trainer consumes, and packing efficiency, all in one run.

1. Writes random sentence stores (ASR + TTS + text-only; :mod:`uniaudio.testing.sentence_stores`).
2. **Loader**: one rank's :class:`~uniaudio.train.loader.TrainLoader` alone (shard reading, sequence
   layout, CFG dropout, packing, collation): tokens/s.
3. **Plain loop**: the same model and the same micro-batches (the loader's, pre-built), AdamW, clipping,
   one process, no Ray, no DeepSpeed: tokens/s after warm-up.
4. **Ray Train + DeepSpeed**: ``run_stage`` with one worker (ZeRO-2, fp32 on CPU / bf16 on GPU) over the
   same stores and recipe: tokens/s from its ``metrics.jsonl`` (steady-state log windows; start-up
   excluded), packing efficiency, MFU on a GPU.

Ratios: overhead = plain / Ray tokens/s (goal <= 1.3 on CPU); loader = loader / Ray tokens/s (goal >= 5);
packing efficiency = real tokens / tokens computed (goal >= 95 %).

Examples:
    python bench/train_bench.py                       # tiny model, CPU, context 512
    python bench/train_bench.py --model 1b --context 2048 --rows 4 --gpus 1 --steps 30   # on an H100
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from uniaudio.model.losses import compute_loss
from uniaudio.model.network import UniAudioModel
from uniaudio.testing.sentence_stores import write_random_store
from uniaudio.train.engine import ModelSource, build_model, optimizer_groups, trainable_groups
from uniaudio.train.loader import LoaderConfig, StoreSpec, TrainLoader
from uniaudio.train.metrics import read_metrics
from uniaudio.train.recipe import load_recipe
from uniaudio.train.run import TrainJob, plan_stage, run_stage
from uniaudio.train.stores import load_shard


def write_stores(root: Path, samples: int, scale: int) -> list[str]:
    return [write_random_store(str(root / "asr"), "asr", samples, max(samples // 4, 1), seed=1, scale=scale),
            write_random_store(str(root / "tts"), "tts", samples, max(samples // 4, 1), seed=2, scale=scale),
            write_random_store(str(root / "text"), "text-only", samples // 2, max(samples // 8, 1), seed=3,
                               scale=scale)]


def loader_for(plan, model_cfg, rank: int = 0, world: int = 1) -> TrainLoader:
    r = plan.recipe
    specs = [StoreSpec(**s) for s in plan.worker_stores()]
    cfg = LoaderConfig(context=r.context, rows=r.batch.rows, lookahead=r.batch.lookahead, tasks=r.tasks,
                       cfg_dropout=r.cfg_dropout, seed=r.seed, layout=model_cfg.tokens, aux=model_cfg.aux_decoder)
    return TrainLoader(specs, cfg, rank, world, load_shard)


def measure_loader(plan, model_cfg, micro_batches: int) -> tuple[float, float]:
    loader = loader_for(plan, model_cfg)
    loader.next()  # first shard reads
    t0 = time.perf_counter()
    tokens = computed = 0
    for _ in range(micro_batches):
        mb = loader.next()
        tokens += mb.tokens
        computed += mb.batch.tokens.shape[0] * mb.batch.tokens.shape[1]
    return tokens / (time.perf_counter() - t0), tokens / computed


def measure_plain(plan, job, steps: int, warmup: int, device: torch.device) -> float:
    """The plain loop: same model, recipe groups, batches and optimiser settings; no Ray, no DeepSpeed."""
    recipe = plan.recipe
    model: UniAudioModel = build_model(plan.model, recipe, seed=recipe.seed)
    model.set_trainable(trainable_groups(model, recipe))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = model.to(device=device, dtype=dtype)
    opt = torch.optim.AdamW(optimizer_groups(model, recipe.optimizer.weight_decay), lr=recipe.optimizer.lr,
                            betas=recipe.optimizer.betas)
    loader = loader_for(plan, model.config)
    accumulation = plan.accumulation
    batches = [[loader.next() for _ in range(accumulation)] for _ in range(steps + warmup)]
    cfg = model.config
    times, tokens = [], []
    for i, micro in enumerate(batches):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for mb in micro:
            batch = mb.batch.to(device)
            loss = compute_loss(model(batch), batch, cfg.loss, cfg.tokens.audio)
            (loss.total / accumulation).backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad],
                                       recipe.optimizer.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            tokens.append(sum(mb.tokens for mb in micro))
    return sum(tokens) / sum(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--stage", type=int, default=3)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--accumulation", type=int, default=1)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--scale", type=int, default=4, help="multiplies sample lengths")
    ap.add_argument("--gpus", type=int, default=0, help="GPUs for the Ray worker (0: CPU with gloo)")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if args.gpus else "cpu")
    device = torch.device("cuda" if args.gpus else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(1)  # the Ray worker has one CPU slot: give the plain loop the same

    root = Path(args.workdir or tempfile.mkdtemp(prefix="train-bench-"))
    stores = write_stores(root / "stores", args.samples, args.scale)
    sets = [f"context={args.context}", f"batch.rows={args.rows}", "log_every=5", f"steps={args.steps + args.warmup}",
            f"batch.tokens_per_step={args.accumulation * args.rows * args.context}", "checkpoint_every=100000",
            "schedule.kind=constant", "schedule.warmup_steps=0", "max_failures=0"]
    recipe = load_recipe(args.stage, overrides=sets)
    job = TrainJob(stage=args.stage, data=tuple(stores), output=str(root / "run"),
                   model=ModelSource(preset=args.model), workers=1, gpus_per_worker=args.gpus)
    plan = plan_stage(job, recipe)
    model_cfg = plan.model.config(recipe)

    loader_tps, packing = measure_loader(plan, model_cfg, micro_batches=50)
    plain_tps = measure_plain(plan, job, args.steps, args.warmup, device)
    t0 = time.perf_counter()
    run_stage(job, plan)
    wall = time.perf_counter() - t0
    records = read_metrics(job.output)
    steady = [r for r in records if r["step"] > args.warmup]
    ray_tps = sum(r["tokens"] for r in steady) / sum(r["tokens"] / r["tokens_per_s"] for r in steady)
    mfu = [r["mfu"] for r in steady if r["mfu"] is not None]
    result = {
        "model": args.model, "device": torch.cuda.get_device_name() if args.gpus else "cpu",
        "context": args.context, "rows": args.rows, "accumulation": plan.accumulation,
        "plain_tokens_per_s": round(plain_tps), "ray_tokens_per_s": round(ray_tps),
        "overhead": round(plain_tps / ray_tps, 3), "loader_tokens_per_s": round(loader_tps),
        "loader_over_consumption": round(loader_tps / ray_tps, 1),
        "packing_efficiency_loader": round(packing, 4),
        "packing_efficiency_run": round(statistics.mean(r["packing_efficiency"] for r in steady), 4),
        "mfu": round(statistics.mean(mfu), 4) if mfu else None, "ray_wall_s_incl_startup": round(wall, 1),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
