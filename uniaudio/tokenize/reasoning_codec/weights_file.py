"""Reading weight files without unpickling: safetensors, plain ``torch.load(weights_only=True)``, and the
released (pickled) training checkpoints through an explicit allow-list.

* :func:`read_state_dict` is what every loader uses: a ``.safetensors`` file (as written by
  ``uniaudio codec convert``) or a torch file holding only tensors and plain containers, read with
  ``weights_only=True`` and nothing else allowed.
* :func:`read_released` is what ``uniaudio codec convert`` uses on the released files: still
  ``weights_only=True``, plus :data:`ALLOWED_GLOBALS`, the few non-tensor types a fairseq training
  checkpoint holds besides tensors (its ``args`` ``argparse.Namespace`` and numpy scalars in its
  metadata). Any other global is refused before anything is loaded, naming it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

SAFETENSORS = ".safetensors"
ALLOWED_GLOBALS: dict[str, Any] = {
    "argparse.Namespace": argparse.Namespace,
    "numpy._core.multiarray.scalar": np._core.multiarray.scalar,
    "numpy.core.multiarray.scalar": np._core.multiarray.scalar,
    "numpy.dtype": np.dtype,
    **{f"numpy.dtypes.{cls.__name__}": cls for cls in (
        np.dtypes.Float64DType, np.dtypes.Float32DType, np.dtypes.Float16DType, np.dtypes.Int64DType,
        np.dtypes.Int32DType, np.dtypes.BoolDType)},
}


class UnsafeCheckpointError(ValueError):
    """A pickled file refers to globals outside the allow-list; the message names them."""


def read_state_dict(path: Path, key: str | None, what: str) -> dict[str, torch.Tensor]:
    """The tensors of ``path``: a safetensors file as is, or ``torch.load(weights_only=True)[key]``
    (the whole object when ``key`` is None or absent and the file is itself a state dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    if path.suffix == SAFETENSORS:
        return load_file(str(path))
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not loadable with weights_only=True ({str(exc).splitlines()[0]}); "
                         f"this project never unpickles. Convert the released files once with "
                         f"`uniaudio codec convert SRC_DIR OUT_DIR`") from exc
    state = blob.get(key, blob) if isinstance(blob, dict) and key is not None else blob
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        found = sorted(blob)[:10] if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path}: expected a {what} state dict{f' under {key!r}' if key else ''}, "
                         f"found {found}")
    return state


def read_released(path: Path) -> Any:
    """Load a released torch file with ``weights_only=True`` and :data:`ALLOWED_GLOBALS` only."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as exc:
        raise ValueError(f"{path}: not a torch checkpoint ({exc})") from exc
    refused = sorted(set(found) - set(ALLOWED_GLOBALS))
    if refused:
        raise UnsafeCheckpointError(f"{path}: refers to globals outside the allow-list: {', '.join(refused)} "
                                    f"(allowed: {', '.join(sorted(ALLOWED_GLOBALS))}); not loaded")
    with torch.serialization.safe_globals([(obj, name) for name, obj in ALLOWED_GLOBALS.items()]):
        return torch.load(path, map_location="cpu", weights_only=True)
