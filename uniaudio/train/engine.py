"""The model, optimiser, schedule and DeepSpeed engine of one training worker.

:func:`build_model` makes the stage's starting model: ``--init`` weights (a ``model init`` or finished
stage directory), else a fresh preset (LLaMA parts from ``--llama`` when given); the stage-1 auxiliary decoder
is added fresh when the recipe trains it and the weights lack it, and removed when a later stage starts from
weights that still hold it. :func:`build_engine` freezes every group the recipe does not train, gives AdamW
only the trainable parameters (frozen groups get no optimizer state, under ZeRO-2 and ZeRO-3 alike) and wraps
everything in a DeepSpeed engine: ZeRO-2 by default, bf16 on GPU, fp32 on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from uniaudio.model.checkpoint import WEIGHTS_NAME, read_config, read_weights
from uniaudio.model.config import AuxDecoderConfig, DistillTarget, UniAudioConfig, preset
from uniaudio.model.network import UniAudioModel
from uniaudio.train.recipe import StageRecipe


@dataclass(frozen=True)
class ModelSource:
    """Where the stage's starting weights come from: ``init`` (checkpoint directory URI) or ``preset`` with
    an optional local ``llama`` directory."""

    preset: str = "tiny"
    init: str | None = None
    llama: str | None = None
    aux_targets: dict[str, int] | None = None
    """Distillation features of the stores (name → dim): the targets of a fresh auxiliary decoder (default:
    :class:`~uniaudio.model.config.AuxDecoderConfig`'s)."""

    def config(self, recipe: StageRecipe) -> UniAudioConfig:
        """The model config the stage trains (aux decoder added or removed as the recipe says)."""
        cfg = read_config(self.init) if self.init else preset(self.preset)
        if recipe.aux_decoder and cfg.aux_decoder is None:
            targets = tuple(DistillTarget(name, dim, 1) for name, dim in sorted((self.aux_targets or {}).items()))
            cfg = cfg.with_(aux_decoder=AuxDecoderConfig(targets=targets) if targets else AuxDecoderConfig())
        if not recipe.aux_decoder and cfg.aux_decoder is not None:
            cfg = cfg.with_(aux_decoder=None)
        return cfg.with_(loss=replace(cfg.loss, aux_weight=recipe.distill_weight))


def build_model(source: ModelSource, recipe: StageRecipe, seed: int) -> UniAudioModel:
    """The starting model (see the module docstring); fresh parts are drawn from ``seed`` on every rank."""
    cfg = source.config(recipe)
    torch.manual_seed(seed)
    if source.init is None:
        return UniAudioModel.from_llama(source.llama, cfg) if source.llama else UniAudioModel(cfg)
    model = UniAudioModel(cfg)
    uri = source.init.rstrip("/") + "/" + WEIGHTS_NAME
    state = read_weights(uri)
    state = {k: v for k, v in state.items() if cfg.aux_decoder is not None or not k.startswith("aux_decoder.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    fresh_ok = [k for k in missing if k.startswith("aux_decoder.")]
    if unexpected or len(fresh_ok) != len(missing):
        raise ValueError(f"{uri}: weights do not match the {cfg.name!r} model: missing "
                         f"{sorted(set(missing) - set(fresh_ok))}, unexpected {sorted(unexpected)}")
    return model


def trainable_groups(model: UniAudioModel, recipe: StageRecipe) -> list[str]:
    """The recipe's groups that exist in ``model`` (``aux_decoder`` only while the model has one)."""
    present = {g for g, params in model.param_groups().items() if params}
    return [g for g in recipe.trainable if g in present]


def optimizer_groups(model: UniAudioModel, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters in two AdamW groups: matrices decay, 1-D parameters (norms, biases) do not."""
    decay = [p for _, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    plain = [p for _, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
    return [g for g in ({"params": decay, "weight_decay": weight_decay},
                        {"params": plain, "weight_decay": 0.0}) if g["params"]]


def deepspeed_config(recipe: StageRecipe, accumulation: int, use_gpu: bool) -> dict[str, Any]:
    """DeepSpeed's JSON config: ZeRO stage, accumulation, clipping, bf16 on GPU (fp32 on CPU)."""
    zero: dict[str, Any] = {"stage": recipe.zero_stage}
    if recipe.zero_stage == 3:
        zero.update(stage3_gather_16bit_weights_on_model_save=False)
    return {
        "train_micro_batch_size_per_gpu": 1,  # one packed micro-batch; its rows are our own business
        "gradient_accumulation_steps": accumulation,
        "gradient_clipping": recipe.optimizer.grad_clip,
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "bf16": {"enabled": use_gpu},
        "steps_per_print": 1 << 62,
        "wall_clock_breakdown": False,
        "checkpoint": {"load_universal": False},
    }


def build_engine(model: UniAudioModel, recipe: StageRecipe, accumulation: int, use_gpu: bool):  # noqa: ANN201
    """``(engine, scheduler)``: the recipe's groups trainable, AdamW over them, DeepSpeed around it all."""
    import deepspeed

    model.set_trainable(trainable_groups(model, recipe))
    model.set_attention(recipe.attention)
    if recipe.gradient_checkpointing:
        model.set_gradient_checkpointing(True)
    opt = recipe.optimizer
    optimizer = torch.optim.AdamW(optimizer_groups(model, opt.weight_decay), lr=opt.lr, betas=opt.betas,
                                  eps=opt.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: recipe.schedule.factor(step, recipe.steps))
    engine, _, _, scheduler = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=scheduler,
        config=deepspeed_config(recipe, accumulation, use_gpu))
    return engine, scheduler
