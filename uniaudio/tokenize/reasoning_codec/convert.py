"""``uniaudio codec convert``: the released checkpoint set → the same set with safetensors + JSON.

The released torch files are pickles. :func:`convert_checkpoint_set` reads each with
``weights_only=True`` and the explicit allow-list of :mod:`.weights_file` (any other global is refused,
named), then writes

* the state dict as ``<stem>.safetensors`` (contiguous; tensors sharing storage are copied), and
* every other top-level entry as ``<stem>.json`` (``argparse.Namespace`` → its fields, numpy scalars →
  numbers, tensors → a ``{"tensor": shape, "dtype": ...}`` summary),

and copies the files that need no conversion. Loaders prefer ``<stem>.safetensors`` when it is present,
so the output directory is a complete checkpoint set for every other command. Each file is written to a
temporary name and renamed; a re-run overwrites the outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from uniaudio.tokenize.reasoning_codec.weights_file import read_released

# released file → the entry holding its state dict
PICKLED = {"ReasoningCodec.checkpoint": "model", "music_ssl.pt": "model", "sqcodec.pth": "codec_model"}
COPIED = ("model_config.json", "sqcodec_config.yaml", "whisper-medium", "wavlm")
OPTIONAL = ("codec_config.json",)


@dataclass(frozen=True)
class Converted:
    source: str
    written: list[str]
    tensors: int


def _jsonable(value: Any) -> Any:
    if isinstance(value, argparse.Namespace):
        return {"__namespace__": _jsonable(vars(value))}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return {"tensor": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def convert_file(src: Path, key: str, out_dir: Path) -> Converted:
    """One released torch file → ``<stem>.safetensors`` + ``<stem>.json`` in ``out_dir``."""
    blob = read_released(src)
    if not isinstance(blob, dict) or not isinstance(blob.get(key), dict):
        raise ValueError(f"{src}: expected a dict with a {key!r} state dict, found "
                         f"{sorted(map(str, blob))[:10] if isinstance(blob, dict) else type(blob).__name__}")
    state = blob[key]
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{src}: {key!r} holds non-tensor entries: {bad[:10]}")
    tensors, storages = {}, set()
    for k, v in state.items():  # safetensors refuses shared storage: copy only tensors that share one
        v = v.detach().contiguous()
        ptr = v.untyped_storage().data_ptr()
        tensors[k] = v.clone() if ptr in storages else v
        storages.add(ptr)
    stem = src.name.rsplit(".", 1)[0]
    weights, meta = out_dir / f"{stem}.safetensors", out_dir / f"{stem}.json"
    _atomic(weights, lambda p: save_file(tensors, str(p), metadata={"source": src.name, "entry": key}))
    rest = {k: _jsonable(v) for k, v in blob.items() if k != key}
    _atomic(meta, lambda p: p.write_text(json.dumps({"source": src.name, "state_dict": key, "other": rest},
                                                    indent=2, sort_keys=True)))
    return Converted(source=src.name, written=[weights.name, meta.name], tensors=len(tensors))


def convert_checkpoint_set(src_dir: Path, out_dir: Path) -> list[Converted]:
    """Convert a released ``uniaudio2_ckpt/``-style directory into ``out_dir`` (see the module docstring)."""
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    missing = [name for name in (*PICKLED, *COPIED) if not (src_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"{src_dir} is not a released checkpoint set: missing {', '.join(missing)}")
    if out_dir.resolve() == src_dir.resolve():
        raise ValueError("OUT_DIR must differ from SRC_DIR")
    out_dir.mkdir(parents=True, exist_ok=True)
    done = [convert_file(src_dir / name, key, out_dir) for name, key in PICKLED.items()]
    for name in (*COPIED, *OPTIONAL):
        src = src_dir / name
        if src.is_dir():
            tmp = out_dir / f".{name}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(src, tmp)
            shutil.rmtree(out_dir / name, ignore_errors=True)
            os.replace(tmp, out_dir / name)
        elif src.is_file():
            _atomic(out_dir / name, lambda p, s=src: shutil.copyfile(s, p))
        else:
            continue
        done.append(Converted(source=name, written=[name], tensors=0))
    return done
