"""Training metrics: ``OUTPUT/metrics.jsonl`` (one JSON line per logged step, written by rank 0), the
device peaks MFU is measured against, and the aggregation of per-micro-batch numbers over ranks.

A line holds ``step``, ``stage``, ``loss``, ``loss_text``, ``loss_audio`` (``loss_aux`` in stage 1), the
accuracy of every stream (``text_acc``, ``reason_cb<k>_acc``, ``recon_cb<k>_acc``), ``lr``, ``tokens_per_s``
(real tokens, all ranks), ``mfu`` (model FLOPs of the real architecture per second over the devices' peak;
null where the peak is unknown, e.g. on CPU), ``packing_efficiency`` (real tokens / tokens computed),
``samples``, ``grad_norm`` and ``elapsed_s``. The file is rewritten whole at each log (atomically, local or
S3); a resumed run first drops the lines after its checkpoint's step, so every step appears once.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from uniaudio.core import storage

METRICS_NAME = "metrics.jsonl"

PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "A800": 312e12, "L40S": 362e12,
              "B200": 2250e12}
"""Dense bf16 peaks by device-name fragment (H100 PCIe: 756e12, matched before H100)."""


def peak_flops(device: torch.device) -> float | None:
    """The device's dense bf16 peak FLOP/s, or ``None`` (CPU, unknown GPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    if "H100" in name and "PCIe" in name:
        return 756e12
    return next((peak for key, peak in PEAK_FLOPS.items() if key in name), None)


class MetricsLog:
    """The run's ``metrics.jsonl`` (see the module docstring)."""

    def __init__(self, output_uri: str, resume_step: int | None) -> None:
        self.uri = storage.join(output_uri, METRICS_NAME)
        self.lines: list[str] = []
        if resume_step is not None and storage.exists(self.uri):
            for line in storage.read_bytes(self.uri).decode().splitlines():
                if line.strip() and json.loads(line)["step"] <= resume_step:
                    self.lines.append(line)

    def write(self, record: dict[str, Any]) -> None:
        self.lines.append(json.dumps(record))
        storage.atomic_write_bytes(self.uri, ("\n".join(self.lines) + "\n").encode())


def read_metrics(output_uri: str) -> list[dict[str, Any]]:
    """The records of ``OUTPUT/metrics.jsonl`` (empty when there is none yet)."""
    uri = storage.join(output_uri, METRICS_NAME)
    if not storage.exists(uri):
        return []
    return [json.loads(line) for line in storage.read_bytes(uri).decode().splitlines() if line.strip()]


class StepTotals:
    """Sums over micro-batches (and, after :meth:`reduce`, over ranks) of what a log line reports:
    the loss sums and their counts, correct predictions and counts per stream, tokens and FLOPs."""

    def __init__(self, n_counts: int, n_codebooks: int) -> None:
        self.n_counts, self.n_codebooks = n_counts, n_codebooks
        self.values = torch.zeros(self.size, dtype=torch.float64)

    @property
    def size(self) -> int:
        # loss sums + counts, text hits + count, (reason, recon) x codebooks x (hits, count), tokens,
        # computed tokens, flops, samples
        return 2 * self.n_counts + 2 + 4 * self.n_codebooks + 4

    def add(self, sums: torch.Tensor, counts: torch.Tensor, metrics: dict[str, torch.Tensor], tokens: int,
            computed: int, flops: float, samples: int) -> None:
        v = [*sums.double().cpu().tolist(), *counts.double().cpu().tolist()]
        v += [float(metrics["text_acc"] * metrics["text_count"]), float(metrics["text_count"])]
        for kind in ("reason", "recon"):
            for k in range(self.n_codebooks):
                n = float(metrics[f"{kind}_cb{k}_count"])
                v += [float(metrics[f"{kind}_cb{k}_acc"]) * n, n]
        v += [tokens, computed, flops, samples]
        self.values += torch.tensor(v, dtype=torch.float64)

    def reduce(self) -> torch.Tensor:
        """The totals summed over every rank (a collective)."""
        import torch.distributed as dist

        out = self.values.clone().float() if dist.get_backend() == "nccl" else self.values.clone()
        if dist.get_backend() == "nccl":
            out = out.cuda()
        dist.all_reduce(out)
        return out.double().cpu()

    def record(self, totals: torch.Tensor, text_weight: float, audio_weight: float,
               aux_weight: float) -> dict[str, float]:
        """Global means from reduced ``totals`` (the loss as :func:`~uniaudio.model.losses.compute_loss`
        defines it, over every scored token of the window)."""
        t = totals.tolist()
        n = self.n_counts
        sums, counts = t[:n], t[n:2 * n]
        means = [s / c if c else 0.0 for s, c in zip(sums, counts, strict=True)]
        rec: dict[str, float] = {"loss_text": means[0], "loss_audio": means[1]}
        loss = text_weight * means[0] + audio_weight * means[1]
        if n > 2:
            present = [m for m, c in zip(means[2:], counts[2:], strict=True) if c]
            rec["loss_aux"] = sum(present) / len(present) if present else 0.0
            loss += aux_weight * rec["loss_aux"]
        rec["loss"] = loss
        i = 2 * n
        rec["text_acc"] = t[i] / t[i + 1] if t[i + 1] else 0.0
        i += 2
        for kind in ("reason", "recon"):
            for k in range(self.n_codebooks):
                rec[f"{kind}_cb{k}_acc"] = t[i] / t[i + 1] if t[i + 1] else 0.0
                i += 2
        rec["tokens"], rec["computed_tokens"], rec["flops"], rec["samples"] = t[i:i + 4]
        rec["packing_efficiency"] = rec["tokens"] / rec["computed_tokens"] if rec["computed_tokens"] else 0.0
        return rec
