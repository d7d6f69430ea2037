"""Training checkpoints: what every rank writes, how a run resumes from it, and consolidation.

One checkpoint directory (reported through ``ray.train.report``; Ray merges the ranks' files into
``OUTPUT/ray/checkpoint_<time>/``) holds:

- ``state/``: DeepSpeed's own files of every rank (``zero_pp_rank_<r>_mp_rank_00_optim_states.pt``, model
  states, the lr scheduler), written by ``engine.save_checkpoint`` under the tag :data:`DS_TAG`;
- ``data_rank<r>.json``: rank r's data-loader position (:meth:`~uniaudio.train.loader.TrainLoader.state`);
- ``rng_rank<r>.safetensors``: rank r's torch RNG states (CPU, and CUDA where used);
- ``train_state.json`` (rank 0): the step, the stage, the recipe, the world size and the model config
  (``config.json`` form of :mod:`uniaudio.model.checkpoint`), so a checkpoint is self-describing.

:func:`consolidate` rebuilds the full fp32 model from any such directory with DeepSpeed's ZeRO
consolidation (every rank's shard is needed), and :func:`export_checkpoint` writes it as
``model.safetensors`` + ``config.json``, the format ``uniaudio model init`` writes.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from uniaudio.core import storage
from uniaudio.model.checkpoint import load_strict, save_checkpoint
from uniaudio.model.config import UniAudioConfig
from uniaudio.model.network import UniAudioModel

DS_DIR = "state"
DS_TAG = "ds"
TRAIN_STATE = "train_state.json"
FORMAT = "uniaudio-train-checkpoint"


def data_state_name(rank: int) -> str:
    return f"data_rank{rank:04d}.json"


def rng_state_name(rank: int) -> str:
    return f"rng_rank{rank:04d}.safetensors"


def save_rank_state(directory: Path, engine: Any, rank: int, loader_state: dict[str, Any],
                    train_state: dict[str, Any]) -> None:
    """Write rank ``rank``'s part of a checkpoint into ``directory`` (a collective: every rank calls it)."""
    engine.save_checkpoint(str(directory / DS_DIR), tag=DS_TAG)
    (directory / data_state_name(rank)).write_text(json.dumps(loader_state))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state()
    save_file(rng, str(directory / rng_state_name(rank)))
    if rank == 0:
        (directory / TRAIN_STATE).write_text(json.dumps({"format": FORMAT, **train_state}, indent=1))


def load_rank_state(directory: Path, engine: Any, rank: int, world: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restore DeepSpeed's state and rank ``rank``'s RNG; returns ``(train_state, loader_state)``. A
    checkpoint written by another number of workers is refused (DeepSpeed's ZeRO partitions and the data
    positions are per rank)."""
    train_state = read_train_state(directory)
    if int(train_state.get("world_size", -1)) != world:
        raise ValueError(f"{directory}: the checkpoint was written by {train_state.get('world_size')} workers, this "
                         f"run has {world}: resume with the same --workers")
    loaded, _ = engine.load_checkpoint(str(directory / DS_DIR), tag=DS_TAG, load_module_strict=True,
                                       load_optimizer_states=True, load_lr_scheduler_states=True)
    if loaded is None:
        raise ValueError(f"{directory}: DeepSpeed found no checkpoint under {DS_DIR}/{DS_TAG}")
    data_file = directory / data_state_name(rank)
    if not data_file.exists():
        raise ValueError(f"{directory}: no data position for rank {rank} (the checkpoint was written by "
                         f"{train_state.get('world_size')} ranks; resume with the same --workers)")
    rng = load_file(str(directory / rng_state_name(rank)))
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    return train_state, json.loads(data_file.read_text())


def read_train_state(directory: Path) -> dict[str, Any]:
    """``train_state.json`` of a local checkpoint directory (``ValueError`` if it is not one)."""
    path = directory / TRAIN_STATE
    if not path.exists():
        raise ValueError(f"{directory}: no {TRAIN_STATE}; not a uniaudio training checkpoint")
    state = json.loads(path.read_text())
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: format {state.get('format')!r} is not {FORMAT!r}")
    return state


def consolidate(directory: Path, keep_aux_decoder: bool = False) -> UniAudioModel:
    """The full fp32 model of a local checkpoint directory (the auxiliary decoder dropped unless kept)."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    state = read_train_state(directory)
    config = UniAudioConfig.from_dict(state["model_config"])
    weights = get_fp32_state_dict_from_zero_checkpoint(str(directory / DS_DIR), tag=DS_TAG)
    model = UniAudioModel(config)
    load_strict(model, {k: v.float() for k, v in weights.items()}, source=str(directory))
    if model.aux_decoder is not None and not keep_aux_decoder:
        model.drop_aux_decoder()
    return model


@contextmanager
def local_checkpoint(uri: str) -> Iterator[Path]:
    """A local directory with the checkpoint at ``uri`` (downloaded to a temporary one when remote)."""
    if not storage.is_remote(uri):
        yield Path(storage.strip_scheme(uri))
        return
    with tempfile.TemporaryDirectory(prefix="uniaudio-ckpt-") as tmp:
        storage.filesystem(uri).get(storage.strip_scheme(uri).rstrip("/") + "/", tmp + "/", recursive=True)
        yield Path(tmp)


def find_checkpoint(uri: str) -> str:
    """``uri`` itself when it is a checkpoint, else the checkpoint with the highest step under it (a
    training ``--output``); ``FileNotFoundError`` when there is none."""
    if storage.exists(storage.join(uri, TRAIN_STATE)):
        return uri
    best: tuple[int, str] | None = None
    for state_uri in storage.glob(uri, f"**/checkpoint_*/{TRAIN_STATE}"):
        step = int(json.loads(storage.read_bytes(state_uri)).get("step", -1))
        if best is None or step > best[0]:
            best = (step, state_uri.rsplit("/", 1)[0])
    if best is None:
        raise FileNotFoundError(f"{uri}: no training checkpoint ({TRAIN_STATE}) here or below")
    return best[1]


def export_checkpoint(checkpoint_uri: str, out_uri: str, keep_aux_decoder: bool = False) -> dict[str, Any]:
    """Consolidate the checkpoint at (or latest under) ``checkpoint_uri`` into ``out_uri``
    (``model.safetensors`` + ``config.json``); returns its ``train_state``."""
    found = find_checkpoint(checkpoint_uri)
    with local_checkpoint(found) as directory:
        model = consolidate(directory, keep_aux_decoder=keep_aux_decoder)
        state = read_train_state(directory)
    save_checkpoint(model, out_uri)
    return {**state, "checkpoint": found}
