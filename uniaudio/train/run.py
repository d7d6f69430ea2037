"""Driving a training stage: plan it (stores, mixture, groups, budget), run it on Ray Train, consolidate.

:func:`plan_stage` does everything that needs no workers: it opens the stores, refuses those that do not
fit the model or the stage or would leave a worker without samples, resolves the mixture and the token
budget and counts trainable parameters per group (on the meta device); ``--dry-run`` prints it.
:func:`run_stage` starts a ``TorchTrainer`` (one worker per GPU, or CPU workers with gloo) whose run lives
in ``OUTPUT/ray`` (``RunConfig(name="ray", storage_path=OUTPUT)``): a second run with ``resume`` continues
from its latest checkpoint, a worker failure restarts from it (``FailureConfig(max_failures)``). When the
stage is done, the last checkpoint is consolidated into ``OUTPUT/model.safetensors`` +
``OUTPUT/config.json`` (the stage-1 auxiliary decoder dropped), which the next stage's ``--init`` reads.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from uniaudio.core import storage
from uniaudio.core.ray_runtime import RayConfig, ensure_ray
from uniaudio.model.checkpoint import CONFIG_NAME
from uniaudio.model.network import UniAudioModel
from uniaudio.train import checkpoints
from uniaudio.train.engine import ModelSource, trainable_groups
from uniaudio.train.metrics import read_metrics
from uniaudio.train.recipe import StageRecipe
from uniaudio.train.stores import StoreInfo, check_fits, check_split, mixture_weights, open_store

RUN_NAME = "ray"


class RunStateError(ValueError):
    """The output already holds a run (and no ``--resume``), or ``--resume`` finds nothing to resume."""


@dataclass(frozen=True)
class TrainJob:
    """One stage's command line, resolved: data, output, model source, scale and run options."""

    stage: int
    data: tuple[str, ...]
    output: str
    model: ModelSource
    workers: int = 1
    gpus_per_worker: float = 0.0
    max_steps: int | None = None
    resume: bool = False
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("give at least one --data store")
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.gpus_per_worker < 0:
            raise ValueError(f"--gpus-per-worker must be >= 0, got {self.gpus_per_worker}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"--max-steps must be >= 1, got {self.max_steps}")


@dataclass
class StagePlan:
    """What a stage will do (printed by ``--dry-run``)."""

    recipe: StageRecipe
    model: ModelSource
    stores: list[StoreInfo]
    weights: list[float]
    groups: dict[str, dict[str, Any]]
    accumulation: int
    tokens_per_step: int
    steps: int
    features: bool
    notes: list[str] = field(default_factory=list)

    def worker_stores(self) -> list[dict[str, Any]]:
        return [{"uri": s.uri, "shards": list(s.shards), "weight": w}
                for s, w in zip(self.stores, self.weights, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        total = sum(self.weights)
        return {
            "recipe": self.recipe.to_dict(),
            "mixture": [{**s.to_dict(), "weight": w / total} for s, w in zip(self.stores, self.weights, strict=True)],
            "groups": self.groups, "accumulation": self.accumulation, "tokens_per_step": self.tokens_per_step,
            "steps": self.steps, "notes": self.notes,
        }


def plan_stage(job: TrainJob, recipe: StageRecipe) -> StagePlan:
    """Check the stores against the model and the stage, and size the run (no workers started)."""
    stores = [open_store(uri) for uri in job.data]
    features = {name: dim for s in stores for name, dim in s.features.items()}
    model_source = replace(job.model, aux_targets=features or None)
    cfg = model_source.config(recipe)
    for info in stores:
        check_fits(info, cfg)
    weights = mixture_weights(stores, recipe)
    for info, weight in zip(stores, weights, strict=True):
        if weight > 0:  # a store the mixture never draws from needs no samples on every rank
            check_split(info, job.workers)
    with torch.device("meta"):
        model = UniAudioModel(cfg)
    train = set(trainable_groups(model, recipe))
    groups = {g: {"parameters": sum(p.numel() for _, p in params), "trainable": g in train}
              for g, params in model.param_groups().items() if params}
    accumulation = recipe.batch.accumulation(recipe.context, job.workers)
    notes = []
    if recipe.aux_decoder and not features:
        notes.append("no store carries distillation features: stage 1 trains the LM loss alone "
                     "(the auxiliary decoder sees no targets)")
    steps = min(job.max_steps or recipe.steps, recipe.steps)
    return StagePlan(recipe=recipe, model=model_source, stores=stores, weights=weights, groups=groups,
                     accumulation=accumulation,
                     tokens_per_step=accumulation * job.workers * recipe.batch.rows * recipe.context,
                     steps=steps, features=bool(features), notes=notes)


def _run_storage(output: str) -> tuple[Any, str]:
    """``(storage_filesystem, storage_path)`` for ``RunConfig``: local absolute path or S3 bucket/prefix."""
    fs, path = storage.pyarrow_filesystem(output)
    return (fs if storage.is_remote(output) else None), path


def _check_run_state(job: TrainJob) -> None:
    states = storage.glob(storage.join(job.output, RUN_NAME), f"**/{checkpoints.TRAIN_STATE}")
    has_run = bool(states)
    if job.resume and not has_run:
        raise RunStateError(f"{job.output}: no checkpoint to resume from; run without --resume to start")
    if job.resume:
        saved = json.loads(storage.read_bytes(states[-1]))
        if saved.get("world_size") != job.workers or saved.get("stage") != job.stage:
            raise RunStateError(f"{job.output}: the run was started as stage {saved.get('stage')} on "
                                f"{saved.get('world_size')} workers; resume it with the same --stage and --workers")
    if not job.resume and (has_run or storage.exists(storage.join(job.output, CONFIG_NAME))):
        raise RunStateError(f"{job.output} already holds a training run; pass --resume to continue it or pick "
                            "another --output")


def run_stage(job: TrainJob, plan: StagePlan, on_progress: Callable[[dict[str, Any]], None] | None = None
              ) -> dict[str, Any]:
    """Train the stage and write the consolidated model into ``job.output``; returns a summary."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    _check_run_state(job)
    ensure_ray(RayConfig(address=job.ray_address, log_to=job.output))
    recipe = plan.recipe
    use_gpu = job.gpus_per_worker > 0
    scaling = ray.train.ScalingConfig(
        num_workers=job.workers, use_gpu=use_gpu,
        resources_per_worker={"GPU": job.gpus_per_worker} if use_gpu else {"CPU": 1})
    fs, path = _run_storage(job.output)
    run_config = ray.train.RunConfig(
        name=RUN_NAME, storage_path=path, storage_filesystem=fs,
        failure_config=ray.train.FailureConfig(max_failures=recipe.max_failures),
        checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2))
    from uniaudio.train.worker import train_loop

    trainer = TorchTrainer(
        train_loop_per_worker=train_loop,
        train_loop_config={"recipe": recipe.to_dict(), "model": asdict(plan.model), "output": job.output,
                           "stores": plan.worker_stores(), "max_steps": plan.steps},
        scaling_config=scaling, run_config=run_config,
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"))
    started = time.perf_counter()
    result = _fit_with_progress(trainer, job.output, on_progress)
    if result.error is not None:
        raise result.error
    if result.checkpoint is None:
        raise RuntimeError("training finished without a checkpoint")
    with result.checkpoint.as_directory() as d:
        from pathlib import Path

        state = checkpoints.read_train_state(Path(d))
        model = checkpoints.consolidate(Path(d))
    from uniaudio.model.checkpoint import save_checkpoint

    save_checkpoint(model, job.output)
    return {"step": state["step"], "output": job.output, "elapsed_s": time.perf_counter() - started,
            "metrics": read_metrics(job.output)[-1:] or None}


def _fit_with_progress(trainer: Any, output: str, on_progress: Callable[[dict[str, Any]], None] | None) -> Any:
    """``trainer.fit()`` while the latest ``metrics.jsonl`` line goes to ``on_progress`` every second."""
    if on_progress is None:
        return trainer.fit()
    done = threading.Event()
    box: dict[str, Any] = {}

    def fit() -> None:
        try:
            box["result"] = trainer.fit()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=fit, name="train-fit", daemon=True).start()
    last = None
    while not done.wait(1.0):
        records = read_metrics(output)
        if records and records[-1] != last:
            last = records[-1]
            on_progress(last)
    if "error" in box:
        raise box["error"]
    return box["result"]
