"""Model checkpoints: ``DIR/model.safetensors`` + ``DIR/config.json`` (local path or ``s3://`` URI).

``config.json`` = ``{"format": "uniaudio-model", "format_version": 1, "dtype": "float32",
"config": UniAudioConfig.to_dict()}``; it is written after the weights, so its presence marks a complete
checkpoint. ``model.safetensors`` holds the model's ``state_dict`` under its own parameter names (no
pickle). ``uniaudio model init``, ``import-official`` and every finished training stage write this format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import load_file, save_file
from torch import Tensor

from uniaudio.core import storage
from uniaudio.model.config import UniAudioConfig
from uniaudio.model.network import UniAudioModel

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT = "uniaudio-model"
FORMAT_VERSION = 1


def save_checkpoint(model: UniAudioModel, out_dir: str, dtype: torch.dtype | None = None) -> None:
    """Write ``model`` to ``out_dir`` (weights cast to ``dtype`` when given), atomically per file."""
    state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    weights_uri = storage.join(out_dir, WEIGHTS_NAME)
    with storage.local_staging_file(weights_uri, suffix=".safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
        storage.atomic_upload(tmp, weights_uri)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dtype": str(next(iter(state.values())).dtype).removeprefix("torch."),
        "config": model.config.to_dict(),
    }
    storage.atomic_write_bytes(storage.join(out_dir, CONFIG_NAME), json.dumps(meta, indent=2).encode())


def read_config(ckpt_dir: str) -> UniAudioConfig:
    """The :class:`UniAudioConfig` of a checkpoint directory (``ValueError`` naming the file if invalid)."""
    uri = storage.join(ckpt_dir, CONFIG_NAME)
    if not storage.exists(uri):
        raise FileNotFoundError(f"{uri}: no model config (is {ckpt_dir} a uniaudio model checkpoint?)")
    meta = json.loads(storage.read_bytes(uri))
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{uri}: format {meta.get('format')!r} v{meta.get('format_version')} is not "
                         f"{FORMAT!r} v{FORMAT_VERSION}")
    try:
        return UniAudioConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{uri}: invalid model config: {e}") from e


def read_weights(uri: str) -> dict[str, Tensor]:
    """All tensors of a safetensors file (local path or URI)."""
    if not storage.exists(uri):
        raise FileNotFoundError(f"{uri}: no such weights file")
    if storage.is_remote(uri):
        return load_safetensors_bytes(storage.read_bytes(uri))
    return load_file(storage.strip_scheme(uri))


def load_checkpoint(ckpt_dir: str, device: str | torch.device = "cpu") -> UniAudioModel:
    """Rebuild the model of ``ckpt_dir`` and load its weights strictly (fp32 unless the caller casts)."""
    model = UniAudioModel(read_config(ckpt_dir))
    weights_uri = storage.join(ckpt_dir, WEIGHTS_NAME)
    load_strict(model, read_weights(weights_uri), source=weights_uri)
    return model.to(device)


def load_strict(model: torch.nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """``load_state_dict`` that reports every missing, unexpected and mis-shaped key in one error."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                    for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or shapes:
        parts = [f"{source}: checkpoint does not match the model"]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {missing}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {unexpected}")
        if shapes:
            parts.append(f"mis-shaped keys ({len(shapes)}): {shapes}")
        raise ValueError("; ".join(parts))
    model.load_state_dict(dict(state), strict=True)
