"""The demo report's PNG plots (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_eval", "plot_losses", "plot_sentence_counts", "plot_sources", "plot_token_lengths"]


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_sources(rows: list[tuple[str, float, int]], path: Path) -> Path:
    """Audio minutes and tokens per source: ``rows`` = (source, hours, tokens)."""
    names = [r[0] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.barh(names, [r[1] * 60 for r in rows], color="#4c72b0")
    a.set_xlabel("audio (minutes)")
    b.barh(names, [r[2] for r in rows], color="#dd8452")
    b.set_xlabel("tokens (reasoning + reconstruction)")
    b.set_yticklabels([])
    fig.suptitle("token stores per source")
    return _save(fig, path)


def plot_token_lengths(lengths: dict[str, list[int]], path: Path, max_tokens: int | None = None) -> Path:
    """Histogram of sentence lengths (sequence steps) per task or strategy."""
    fig, ax = plt.subplots(figsize=(9, 4))
    for name, values in sorted(lengths.items()):
        if values:
            ax.hist(values, bins=20, alpha=0.45, label=f"{name} ({len(values)})")
    if max_tokens:
        ax.axvline(max_tokens, color="k", linestyle="--", linewidth=1, label=f"--max-tokens {max_tokens}")
    ax.set_xlabel("sentence length (steps of the sequence format)")
    ax.set_ylabel("sentences")
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("token-length histogram per kind")
    return _save(fig, path)


def plot_sentence_counts(counts: dict[str, int], path: Path) -> Path:
    """Sentences per task and strategy."""
    names = sorted(counts)
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(names) + 1.2))
    ax.barh(names, [counts[n] for n in names], color="#55a868")
    ax.set_xlabel("sentences")
    ax.set_title("sentences per task / strategy")
    return _save(fig, path)


def plot_losses(curves: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    """Training loss against step, one line per stage."""
    fig, ax = plt.subplots(figsize=(9, 4))
    for stage, points in sorted(curves.items()):
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=stage)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("training loss per stage")
    ax.legend()
    return _save(fig, path)


def plot_eval(per_codebook: dict[str, list[float]], path: Path) -> Path:
    """Per-codebook perplexity of the reasoning and reconstruction streams."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for name, values in per_codebook.items():
        ax.plot(range(len(values)), values, marker="o", label=name)
    ax.set_xlabel("codebook")
    ax.set_ylabel("perplexity")
    ax.set_title("evaluation: per-codebook perplexity")
    ax.legend()
    return _save(fig, path)
