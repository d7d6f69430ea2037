"""``uniaudio shards stats``: hours, samples and tokens per source and per stream, and a duration histogram."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from uniaudio.pipelines.token_store.index import read_index
from uniaudio.pipelines.token_store.reader import iter_shard, shard_uris

__all__ = ["SourceStats", "StoreStats", "collect_stats", "plot_durations"]


@dataclass
class SourceStats:
    samples: int = 0
    duration_s: float = 0.0
    reason_tokens: int = 0
    recon_tokens: int = 0
    extra_fields: set[str] = field(default_factory=set)

    @property
    def hours(self) -> float:
        return self.duration_s / 3600.0

    def add(self, other: SourceStats) -> None:
        self.samples += other.samples
        self.duration_s += other.duration_s
        self.reason_tokens += other.reason_tokens
        self.recon_tokens += other.recon_tokens
        self.extra_fields |= other.extra_fields


@dataclass
class StoreStats:
    per_source: dict[str, SourceStats]
    durations: dict[str, list[float]]  # source → clip durations
    codec: dict

    @property
    def total(self) -> SourceStats:
        out = SourceStats()
        for s in self.per_source.values():
            out.add(s)
        return out


def collect_stats(store_uri: str, on_shard: Callable[[str], None] | None = None) -> StoreStats:
    """One pass over the store's samples (every shard listed in ``index.json``)."""
    index = read_index(store_uri)
    per_source: dict[str, SourceStats] = {}
    durations: dict[str, list[float]] = {}
    for uri in shard_uris(store_uri, index):
        if on_shard:
            on_shard(uri)
        for sample in iter_shard(uri):
            source = str(sample.meta.get("source"))
            st = per_source.setdefault(source, SourceStats())
            st.samples += 1
            st.duration_s += sample.duration_s
            st.reason_tokens += int(sample.reason.size)
            st.recon_tokens += int(sample.recon.size)
            st.extra_fields |= set(sample.extras)
            durations.setdefault(source, []).append(sample.duration_s)
    return StoreStats(per_source=dict(sorted(per_source.items())), durations=dict(sorted(durations.items())),
                      codec=index.codec)


def plot_durations(stats: StoreStats, path: str | Path, title: str = "") -> Path:
    """Write a PNG histogram of clip durations, stacked by source."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    series = {name: values for name, values in stats.durations.items() if values}
    if series:
        top = max(max(v) for v in series.values())
        count = sum(len(v) for v in series.values())
        bins = max(10, min(60, int(count**0.5) * 2))
        edges = [top * i / bins for i in range(bins + 1)] if top > 0 else [0, 1]
        ax.hist(list(series.values()), bins=edges, stacked=True, label=list(series), edgecolor="white")
        ax.legend(title="source")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("clip duration (s)")
    ax.set_ylabel("samples")
    total = stats.total
    ax.set_title(title or f"{total.samples} samples, {total.hours:.2f} h")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
