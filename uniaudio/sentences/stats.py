"""``uniaudio sentences stats``: sentences and tokens per task and strategy, skips, and a length histogram.

:func:`collect_stats` reads only the ``<key>.json`` members of each shard (audio arrays are skipped
undecoded) and gathers every sentence's ``num_tokens`` by task; :func:`plot_lengths` draws their histogram.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from uniaudio.core import storage
from uniaudio.core.ustar import iter_members, split_member
from uniaudio.sentences.store import read_index, shard_uris

__all__ = ["SentenceStats", "collect_stats", "plot_lengths"]


@dataclass
class SentenceStats:
    """Per task: sentence count, token total and lengths; text/audio segment counts; index skips."""

    lengths: dict[str, list[int]] = field(default_factory=dict)
    segments: dict[str, int] = field(default_factory=lambda: {"text": 0, "audio": 0})
    skipped: dict[str, int] = field(default_factory=dict)
    tokenizer: dict = field(default_factory=dict)
    codec_fingerprint: str | None = None

    def rows(self) -> dict[str, dict[str, float]]:
        out = {}
        for task, lengths in sorted(self.lengths.items()):
            out[task] = {"sentences": len(lengths), "tokens": sum(lengths),
                         "mean_tokens": round(sum(lengths) / len(lengths), 1), "max_tokens": max(lengths)}
        return out


def collect_stats(uri: str, on_shard: Callable[[str], None] | None = None) -> SentenceStats:
    index = read_index(uri)
    st = SentenceStats(skipped=dict(index.get("skipped") or {}), tokenizer=dict(index.get("tokenizer") or {}),
                       codec_fingerprint=index.get("codec_fingerprint"))
    for shard in shard_uris(uri, index):
        if on_shard:
            on_shard(shard)
        with storage.open_uri(shard) as f:
            for name, data in iter_members(f, shard):
                if split_member(name)[1] != "json":
                    continue
                header = json.loads(data)
                st.lengths.setdefault(str(header["task"]), []).append(int(header["num_tokens"]))
                for seg in header["segments"]:
                    st.segments[seg["modality"]] = st.segments.get(seg["modality"], 0) + 1
    return st


def plot_lengths(st: SentenceStats, path: str | Path, title: str = "") -> Path:
    """Histogram of sentence lengths (tokens) per task, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for task, lengths in sorted(st.lengths.items()):
        ax.hist(lengths, bins=30, alpha=0.6, label=f"{task} ({len(lengths)})")
    ax.set_xlabel("tokens per sentence")
    ax.set_ylabel("sentences")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
