"""Stage recipes: validated dataclasses loaded from the packaged ``recipes/stageN.yaml``, a user recipe file
and ``--set key=value`` overrides, in that order.

A recipe is everything a training stage needs besides the data URIs and the model: which parameter groups
train, the task mixture, optimiser and schedule, context length, steps, the token budget of a step, CFG
dropout and the stage-1 distillation weight. :func:`load_recipe` merges the three sources key by key (a user
file may set only what it changes) and validates the result; every error names the key and, for a file,
the file. Dotted keys address nested fields (``optimizer.lr=1e-3``, ``mixture.asr=2``); values are YAML
scalars or flow collections (``trainable=[cross_modal,lm_head]``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from uniaudio.core import storage
from uniaudio.model.network import PARAM_GROUPS

STAGES = (1, 2, 3, 4)
SCHEDULES = ("cosine", "inverse_sqrt", "constant")


class RecipeError(ValueError):
    """An invalid recipe value, unknown key or unreadable recipe file (the message names which)."""


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW on the trainable groups only: ``lr`` peak, ``betas``, ``weight_decay`` (not on norms and
    biases, i.e. 1-D parameters), ``grad_clip`` the global gradient-norm limit (0 disables)."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.05
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        _check(self.lr > 0, "optimizer.lr", self.lr, "must be > 0")
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optimizer.betas", self.betas,
               "must be two numbers in [0, 1)")
        _check(self.eps > 0, "optimizer.eps", self.eps, "must be > 0")
        _check(self.weight_decay >= 0, "optimizer.weight_decay", self.weight_decay, "must be >= 0")
        _check(self.grad_clip >= 0, "optimizer.grad_clip", self.grad_clip, "must be >= 0")


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule: linear warm-up over ``warmup_steps``, then ``cosine`` decay to
    ``min_lr_ratio``·lr at the last step, ``inverse_sqrt`` (the released WarmupLR: lr·sqrt(warmup/step))
    or ``constant``."""

    kind: str = "inverse_sqrt"
    warmup_steps: int = 10000
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        _check(self.kind in SCHEDULES, "schedule.kind", self.kind, f"must be one of {list(SCHEDULES)}")
        _check(self.warmup_steps >= 0, "schedule.warmup_steps", self.warmup_steps, "must be >= 0")
        _check(0 <= self.min_lr_ratio <= 1, "schedule.min_lr_ratio", self.min_lr_ratio, "must lie in [0, 1]")

    def factor(self, step: int, total_steps: int) -> float:
        """Multiplier of the peak lr for optimizer step ``step`` (0-based) of ``total_steps``."""
        if self.warmup_steps and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        if self.kind == "inverse_sqrt":
            return math.sqrt(max(self.warmup_steps, 1) / (step + 1))
        span = max(total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class BatchConfig:
    """The token budget: ``tokens_per_step`` context-length steps per optimizer step over all ranks, split
    into micro-batches of ``rows`` packed rows per rank (gradient accumulation makes up the rest);
    ``lookahead`` samples that did not fit a micro-batch may wait for the next one (packing efficiency)."""

    tokens_per_step: int = 65536
    rows: int = 8
    lookahead: int = 16

    def __post_init__(self) -> None:
        _check(self.tokens_per_step >= 1, "batch.tokens_per_step", self.tokens_per_step, "must be >= 1")
        _check(self.rows >= 1, "batch.rows", self.rows, "must be >= 1")
        _check(self.lookahead >= 0, "batch.lookahead", self.lookahead, "must be >= 0")

    def accumulation(self, context: int, world_size: int) -> int:
        """Micro-batches per rank and step: the budget over (world_size × rows × context), at least 1."""
        return max(1, round(self.tokens_per_step / (world_size * self.rows * context)))


@dataclass(frozen=True)
class StageRecipe:
    """One training stage (see the module docstring and ``recipes/stage1.yaml``)."""

    stage: int
    trainable: tuple[str, ...]
    tasks: tuple[str, ...]
    mixture: dict[str, float] = field(default_factory=dict)
    """Weight per task; empty: each store weighs its tokens. Tasks missing here get no samples."""
    text_only: bool = False
    """Whether text-only stores may be mixed in (stages 3 and 4)."""
    context: int = 1024
    steps: int = 50000
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    cfg_dropout: float = 0.1
    """Share of generation samples (those whose loss is on audio) trained without their conditioning."""
    distill_weight: float = 1.0
    """λ_rec of the stage-1 semantic-distillation loss (used while the model has its auxiliary decoder)."""
    aux_decoder: bool = False
    """Whether the stage trains (and so creates, if the initial weights lack it) the auxiliary decoder."""
    zero_stage: int = 2
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 1000
    max_failures: int = 0
    gradient_checkpointing: bool = False
    attention: str = "sdpa"

    def __post_init__(self) -> None:
        object.__setattr__(self, "trainable", tuple(self.trainable))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "mixture", {str(k): float(v) for k, v in dict(self.mixture).items()})
        _check(self.stage in STAGES, "stage", self.stage, f"must be one of {list(STAGES)}")
        unknown = sorted(set(self.trainable) - set(PARAM_GROUPS))
        _check(not unknown, "trainable", list(self.trainable), f"names unknown groups {unknown}; known: "
               f"{sorted(PARAM_GROUPS)}")
        _check(bool(self.trainable), "trainable", [], "must name at least one parameter group")
        _check(bool(self.tasks), "tasks", [], "must name at least one task")
        stray = sorted(set(self.mixture) - set(self.tasks))
        _check(not stray, "mixture", self.mixture, f"weighs tasks {stray} that are not in tasks")
        _check(all(w >= 0 for w in self.mixture.values()), "mixture", self.mixture, "weights must be >= 0")
        _check(not self.mixture or sum(self.mixture.values()) > 0, "mixture", self.mixture,
               "needs a positive weight")
        _check(self.context >= 2, "context", self.context, "must be >= 2")
        _check(self.steps >= 1, "steps", self.steps, "must be >= 1")
        _check(0 <= self.cfg_dropout <= 1, "cfg_dropout", self.cfg_dropout, "must lie in [0, 1]")
        _check(self.distill_weight >= 0, "distill_weight", self.distill_weight, "must be >= 0")
        _check(self.zero_stage in (2, 3), "zero_stage", self.zero_stage, "must be 2 or 3")
        _check(self.log_every >= 1, "log_every", self.log_every, "must be >= 1")
        _check(self.checkpoint_every >= 1, "checkpoint_every", self.checkpoint_every, "must be >= 1")
        _check(self.max_failures >= 0, "max_failures", self.max_failures, "must be >= 0")
        _check(self.attention in ("sdpa", "flex"), "attention", self.attention, "must be 'sdpa' or 'flex'")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["trainable"], d["tasks"] = list(self.trainable), list(self.tasks)
        d["optimizer"]["betas"] = list(self.optimizer.betas)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "recipe") -> StageRecipe:
        """Build and validate; unknown keys and bad values raise :class:`RecipeError` naming ``source``."""
        try:
            return _build(cls, data, prefix="")
        except RecipeError as e:
            raise RecipeError(f"{source}: {e}") from None


NESTED = {"optimizer": OptimizerConfig, "schedule": ScheduleConfig, "batch": BatchConfig}


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise RecipeError(f"{prefix.rstrip('.') or 'recipe'} must be a mapping, got {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecipeError(f"unknown keys {[prefix + k for k in unknown]}; known: {sorted(prefix + k for k in known)}")
    values = {f.name: _coerce(data[f.name], f.type, prefix + f.name) for f in fields(cls) if f.name in data}
    if cls is StageRecipe:
        for name, sub in NESTED.items():
            if name in values:
                values[name] = _build(sub, values[name], prefix=f"{name}.")
        if values.get("mixture") is None:
            values["mixture"] = {}
    try:
        return cls(**values)
    except TypeError as e:
        raise RecipeError(f"{prefix or 'recipe'}: {e}") from None


def _coerce(value: Any, kind: str, key: str) -> Any:
    """``value`` as the field type ``kind`` (YAML reads ``1e-3`` as a string, ``2`` where a float is meant)."""
    try:
        if kind == "float" and not isinstance(value, bool):
            return float(value)
        if kind == "int" and not isinstance(value, bool) and float(value) == int(float(value)):
            return int(float(value))
    except (TypeError, ValueError):
        raise RecipeError(f"{key}={value!r} must be a number") from None
    if kind == "int":
        raise RecipeError(f"{key}={value!r} must be an integer")
    if kind == "bool" and not isinstance(value, bool):
        raise RecipeError(f"{key}={value!r} must be true or false")
    if kind.startswith("tuple") and not isinstance(value, list | tuple):
        raise RecipeError(f"{key}={value!r} must be a list")
    if kind.startswith("tuple[float"):
        return tuple(_coerce(v, "float", key) for v in value)
    if kind.startswith("dict[str, float]"):
        if not isinstance(value, dict):
            raise RecipeError(f"{key}={value!r} must be a mapping")
        return {str(k): _coerce(v, "float", f"{key}.{k}") for k, v in value.items()}
    return value


def _check(ok: bool, key: str, value: Any, why: str) -> None:
    if not ok:
        raise RecipeError(f"{key}={value!r} {why}")


def packaged_recipe(stage: int) -> dict[str, Any]:
    """The raw mapping of ``recipes/stage{stage}.yaml`` shipped in the package."""
    if stage not in STAGES:
        raise RecipeError(f"stage={stage!r} must be one of {list(STAGES)}")
    text = resources.files("uniaudio.train").joinpath("recipes", f"stage{stage}.yaml").read_text()
    return yaml.safe_load(text)


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs (dotted keys) → a nested mapping; values parsed as YAML (``1e-3``, ``[a,b]``)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise RecipeError(f"--set {pair!r}: expected KEY=VALUE (dotted keys for nested fields)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise RecipeError(f"--set {pair!r}: value is not valid YAML: {e}") from None
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(f"--set {pair!r}: {part} was set to a value before")
        node[parts[-1]] = value
    return out


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` merged into a copy of ``base``, mappings key by key (``mixture`` too), other values replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_recipe_file(uri: str) -> dict[str, Any]:
    """A user recipe file (YAML, local or URI): a mapping of the keys it changes."""
    try:
        data = yaml.safe_load(storage.read_bytes(uri) if storage.is_remote(uri) else Path(uri).read_bytes())
    except FileNotFoundError:
        raise RecipeError(f"{uri}: no such recipe file") from None
    except yaml.YAMLError as e:
        raise RecipeError(f"{uri}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"{uri}: a recipe file must hold a mapping of keys, got {type(data).__name__}")
    return data


def load_recipe(stage: int, recipe_file: str | None = None, overrides: list[str] | None = None) -> StageRecipe:
    """The packaged stage recipe, then ``recipe_file``, then ``overrides`` (see the module docstring)."""
    data = packaged_recipe(stage)
    sources = [f"recipes/stage{stage}.yaml"]
    if recipe_file:
        user = read_recipe_file(recipe_file)
        if "stage" in user and user["stage"] != stage:
            raise RecipeError(f"{recipe_file}: stage={user['stage']!r} but --stage {stage} was asked for")
        data = merge(data, user)
        sources.append(recipe_file)
    if overrides:
        data = merge(data, parse_overrides(overrides))
        sources.append("--set")
    if data.get("stage") != stage:
        raise RecipeError(f"stage cannot be changed by --set (asked for --stage {stage})")
    return StageRecipe.from_dict(data, source=" + ".join(sources))
