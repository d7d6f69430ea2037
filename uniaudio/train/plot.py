"""Loss curves of a training run from its ``metrics.jsonl`` (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from uniaudio.core import storage
from uniaudio.train.metrics import read_metrics

CURVES = (("loss", "total"), ("loss_text", "text"), ("loss_audio", "audio"), ("loss_aux", "distillation"))


def plot_losses(output_uri: str, out: str | None = None) -> str:
    """Draw total/text/audio (and stage-1 distillation) loss against step into ``out`` (default
    ``OUTPUT/loss.png``, local or URI); ``FileNotFoundError`` when the run has no metrics yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(output_uri)
    if not records:
        raise FileNotFoundError(f"{output_uri}: no metrics.jsonl records to plot")
    out = out or storage.join(output_uri, "loss.png")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    steps = [r["step"] for r in records]
    for key, label in CURVES:
        values = [r.get(key) for r in records]
        if any(v is not None for v in values) and any(values):
            ax.plot(steps, [v if v is not None else float("nan") for v in values], label=label)
    stages = sorted({r["stage"] for r in records})
    ax.set(xlabel="step", ylabel="loss", title=f"{output_uri} (stage {', '.join(map(str, stages))})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "loss.png"
        fig.savefig(local, dpi=110)
        plt.close(fig)
        storage.atomic_upload(local, out)
    return out
