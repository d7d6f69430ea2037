"""A tiny random HTDemucs saved in demucs' own ``.th`` package format, for tests and the demo of the
``mixture`` strategy's stems (``--demucs-model``). Real demucs classes; the stems are noise-like."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["save_tiny_htdemucs", "tiny_htdemucs"]


def tiny_htdemucs(seed: int = 0) -> Any:
    """An ``HTDemucs`` with the four standard sources and tiny widths (8 kHz, 1 s segments)."""
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    return HTDemucs(sources=["drums", "bass", "other", "vocals"], audio_channels=2, channels=4, depth=2, nfft=256,
                    t_layers=1, t_heads=2, t_hidden_scale=1.0, samplerate=8000, segment=1, dconv_comp=2)


def save_tiny_htdemucs(path: str | Path, seed: int = 0) -> Path:
    """Save :func:`tiny_htdemucs` as demucs packages it (``demucs.states``: klass, args, kwargs, half-precision
    state, training args holding numpy scalars) to ``path``; returns it."""
    import numpy as np
    import torch
    from demucs.states import get_state

    model = tiny_htdemucs(seed)
    args, kwargs = model._init_args_kwargs
    package = {"klass": type(model), "args": args, "kwargs": kwargs, "state": get_state(model, None, half=True),
               "training_args": {"lr": np.float64(3e-4), "epochs": 1}}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(package, out)
    return out
