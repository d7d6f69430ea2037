"""The training loop every Ray Train worker runs (``TorchTrainer(train_loop_per_worker=train_loop)``).

Per optimizer step a rank takes ``A`` micro-batches from its :class:`~uniaudio.train.loader.TrainLoader`,
counts their scored tokens, all-reduces the counts and passes ``counts / (W · A)`` to every micro-batch's
loss, so the step's gradient is that of (all sums) / (all counts) whatever the distribution of tokens over
ranks and micro-batches (:func:`~uniaudio.model.losses.compute_loss`). DeepSpeed accumulates, clips, steps
the optimizer and the lr schedule. Every ``log_every`` steps rank 0 writes a metrics line; every
``checkpoint_every`` steps and at the end every rank writes its checkpoint part and calls
``ray.train.report`` with it (a barrier: all ranks report the same number of times).

A worker resumes from ``ray.train.get_checkpoint()`` (the latest checkpoint of the run, after a failure or
with ``--resume``): DeepSpeed state, scheduler, RNG and data position, so the run continues with exactly the
batches it would have seen.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from uniaudio.core import storage
from uniaudio.model.flops import batch_flops
from uniaudio.model.losses import compute_loss, count_names, scored_counts
from uniaudio.train import checkpoints
from uniaudio.train.engine import ModelSource, build_engine, build_model
from uniaudio.train.loader import LoaderConfig, StoreSpec, TrainLoader
from uniaudio.train.metrics import MetricsLog, StepTotals, peak_flops
from uniaudio.train.recipe import StageRecipe
from uniaudio.train.stores import load_shard

WORKERS_NAME = "_workers"


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train entry point; ``config`` is :meth:`uniaudio.train.run.TrainJob.worker_config`."""
    import ray.train
    import torch.distributed as dist

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    recipe = StageRecipe.from_dict(config["recipe"])
    source = ModelSource(**config["model"])
    output = config["output"]
    max_steps = min(int(config.get("max_steps") or recipe.steps), recipe.steps)
    device = ray.train.torch.get_device()
    use_gpu = device.type == "cuda"
    _announce(output, rank, device)

    model = build_model(source, recipe, seed=recipe.seed)
    cfg = model.config
    accumulation = recipe.batch.accumulation(recipe.context, world)
    engine, scheduler = build_engine(model, recipe, accumulation, use_gpu)
    loader_cfg = LoaderConfig(context=recipe.context, rows=recipe.batch.rows, lookahead=recipe.batch.lookahead,
                              tasks=recipe.tasks, cfg_dropout=recipe.cfg_dropout, seed=recipe.seed,
                              layout=cfg.tokens, aux=cfg.aux_decoder)
    stores = [StoreSpec(s["uri"], tuple(s["shards"]), s["weight"]) for s in config["stores"]]

    step, loader_state = 0, None
    ckpt = ray.train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            train_state, loader_state = checkpoints.load_rank_state(Path(d), engine, rank, world)
        step = int(train_state["step"])
    torch.manual_seed(recipe.seed * 1000003 + rank + step)
    loader = TrainLoader(stores, loader_cfg, rank, world, load_shard, state=loader_state)
    log = MetricsLog(output, resume_step=step) if rank == 0 else None
    totals = StepTotals(len(count_names(cfg.aux_decoder)), cfg.tokens.audio.n_codebooks)
    peak = peak_flops(device)
    window_start, window_steps = time.perf_counter(), 0
    started = time.perf_counter()

    while step < max_steps:
        micro = [loader.next() for _ in range(accumulation)]
        local = [scored_counts(mb.batch, cfg.aux_decoder) for mb in micro]
        counts = torch.stack(local).sum(0).to(device)
        dist.all_reduce(counts)
        scaled = counts / (world * accumulation)
        for mb, mb_counts in zip(micro, local, strict=True):
            batch = mb.batch.to(device)
            out = engine(batch)
            loss = compute_loss(out, batch, cfg.loss, cfg.tokens.audio, counts=scaled)
            engine.backward(loss.total)
            engine.step()
            totals.add(loss.sums, mb_counts, loss.metrics, tokens=mb.tokens,
                       computed=batch.tokens.shape[0] * batch.tokens.shape[1], flops=batch_flops(cfg, mb.batch),
                       samples=mb.samples)
        step += 1
        window_steps += 1
        if step % recipe.log_every == 0 or step == max_steps:
            reduced = totals.reduce()
            if log is not None:
                elapsed = time.perf_counter() - window_start
                rec = totals.record(reduced, cfg.loss.text_weight, cfg.loss.audio_weight, cfg.loss.aux_weight)
                rec["loss_audio_count"] = float(reduced[len(count_names(cfg.aux_decoder)) + 1])
                log.write(_line(step, recipe, rec, scheduler, engine, elapsed, world, peak,
                                time.perf_counter() - started, window_steps))
            totals = StepTotals(totals.n_counts, totals.n_codebooks)
            window_start, window_steps = time.perf_counter(), 0
        if step % recipe.checkpoint_every == 0 or step == max_steps:
            _checkpoint(engine, rank, world, step, loader, recipe, cfg.to_dict(), config)


def _line(step: int, recipe: StageRecipe, rec: dict[str, float], scheduler: Any, engine: Any, elapsed: float,
          world: int, peak: float | None, total_elapsed: float, steps: int) -> dict[str, Any]:
    flops = rec.pop("flops")
    grad_norm = engine.get_global_grad_norm()
    return {
        "step": step, "stage": recipe.stage, **{k: rec[k] for k in ("loss", "loss_text", "loss_audio")},
        **({"loss_aux": rec["loss_aux"]} if "loss_aux" in rec else {}),
        **{k: v for k, v in rec.items() if k.endswith("_acc")},
        "lr": float(scheduler.get_last_lr()[0]),
        "tokens_per_s": rec["tokens"] / elapsed if elapsed else 0.0,
        "mfu": flops / elapsed / (world * peak) if peak and elapsed else None,
        "packing_efficiency": rec["packing_efficiency"],
        "samples": int(rec["samples"]), "tokens": int(rec["tokens"]), "steps_in_window": steps,
        "grad_norm": float(grad_norm) if grad_norm is not None else None,
        "elapsed_s": round(total_elapsed, 3),
    }


def _checkpoint(engine: Any, rank: int, world: int, step: int, loader: TrainLoader, recipe: StageRecipe,
                model_config: dict[str, Any], config: dict[str, Any]) -> None:
    import ray.train

    with tempfile.TemporaryDirectory(prefix="uniaudio-ckpt-") as tmp:
        train_state = {"step": step, "stage": recipe.stage, "world_size": world, "recipe": recipe.to_dict(),
                       "model_config": model_config, "data": [s["uri"] for s in config["stores"]]}
        checkpoints.save_rank_state(Path(tmp), engine, rank, loader.state(), train_state)
        ray.train.report({"step": step, "samples": loader.counters.samples, "digest": loader.counters.digest},
                         checkpoint=ray.train.Checkpoint.from_directory(tmp))


def _announce(output: str, rank: int, device: torch.device) -> None:
    """``OUTPUT/_workers/rank<r>.json``: where each rank runs (host, pid, device)."""
    info = {"rank": rank, "host": socket.gethostname(), "pid": os.getpid(), "device": str(device),
            "started": time.time()}
    storage.atomic_write_bytes(storage.join(output, WORKERS_NAME, f"rank{rank:04d}.json"), json.dumps(info).encode())
