"""Counting what a run kept and dropped, and showing it: per-partition tallies, the summary, progress.

A :class:`Tally` counts records, seconds of audio and rejects by reason, overall and per split. Each
finished partition's tally goes into its done-marker; the run's summary is the merge of the tallies of
all partitions of the input (finished in this run or an earlier one), so a resumed run reports the
whole output, not just the partitions it redid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["PartitionProgress", "Tally", "render_rejects", "render_summary"]

_NO_SPLIT = "-"


@dataclass
class _SplitTally:
    records: int = 0
    seconds: float = 0.0
    rejects: int = 0


@dataclass
class Tally:
    """Records, seconds (known durations only) and rejects by reason, overall and per split."""

    records: int = 0
    seconds: float = 0.0
    unknown_duration: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    splits: dict[str, _SplitTally] = field(default_factory=dict)

    def _split(self, split: str | None) -> _SplitTally:
        return self.splits.setdefault(split or _NO_SPLIT, _SplitTally())

    def add_record(self, split: str | None, duration_s: float | None) -> None:
        self.records += 1
        entry = self._split(split)
        entry.records += 1
        if duration_s is None:
            self.unknown_duration += 1
        else:
            self.seconds += duration_s
            entry.seconds += duration_s

    def add_reject(self, split: str | None, reason: str) -> None:
        self.rejects[reason] += 1
        self._split(split).rejects += 1

    def merge(self, other: Tally) -> None:
        self.records += other.records
        self.seconds += other.seconds
        self.unknown_duration += other.unknown_duration
        self.rejects.update(other.rejects)
        for name, entry in other.splits.items():
            mine = self.splits.setdefault(name, _SplitTally())
            mine.records += entry.records
            mine.seconds += entry.seconds
            mine.rejects += entry.rejects

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    @property
    def num_rejects(self) -> int:
        return sum(self.rejects.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "hours": round(self.hours, 9),
            "seconds": round(self.seconds, 3),
            "records_without_duration": self.unknown_duration,
            "rejects": self.num_rejects,
            "rejects_by_reason": dict(sorted(self.rejects.items())),
            "splits": {
                name: {"records": e.records, "hours": round(e.seconds / 3600, 9), "seconds": round(e.seconds, 3),
                       "rejects": e.rejects}
                for name, e in sorted(self.splits.items())
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tally:
        return cls(
            records=int(data["records"]),
            seconds=float(data["seconds"]),
            unknown_duration=int(data.get("records_without_duration", 0)),
            rejects=Counter({k: int(v) for k, v in data["rejects_by_reason"].items()}),
            splits={
                name: _SplitTally(int(e["records"]), float(e["seconds"]), int(e["rejects"]))
                for name, e in data["splits"].items()
            },
        )


def render_summary(summary: dict[str, Any], console: Console) -> None:
    """Print an ingest summary (the ``summary.json`` dict) as rich tables."""
    title = "dry run (metadata only)" if summary.get("dry_run") else "ingest"
    parts = summary["partitions"]
    console.print(
        f"[bold]{title}[/bold] {summary['source']}: {escape(summary['input_uri'])} → "
        f"{escape(summary.get('output_uri') or '-')}; "
        f"partitions {parts['complete']}/{parts['total']} complete"
        + (f", {parts['partial']} partial" if parts.get("partial") else "")
        + (f", {parts['skipped']} already done" if parts.get("skipped") else "")
    )
    table = Table(title="records by split")
    for column in ("split", "records", "hours", "rejects"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name, entry in summary["splits"].items():
        table.add_row(escape(name), str(entry["records"]), f"{entry['hours']:.4f}", str(entry["rejects"]))
    table.add_row("[bold]total[/bold]", str(summary["records"]), f"{summary['hours']:.4f}", str(summary["rejects"]))
    console.print(table)
    if summary["records_without_duration"]:
        console.print(f"{summary['records_without_duration']} records have no duration in the metadata")
    render_rejects(summary["rejects_by_reason"], console)


def render_rejects(rejects_by_reason: dict[str, int], console: Console) -> None:
    """Print a "rejects by reason" table (nothing when there were no rejects)."""
    if not rejects_by_reason:
        return
    reasons = Table(title="rejects by reason")
    reasons.add_column("reason")
    reasons.add_column("count", justify="right")
    for reason, count in rejects_by_reason.items():
        reasons.add_row(reason, str(count))
    console.print(reasons)


class PartitionProgress:
    """A rich progress bar over partitions, with running record/reject counts."""

    def __init__(self, progress: Progress, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task("partitions", total=total, records=0, rejects=0)
        self._records = 0
        self._rejects = 0

    def advance(self, tally: Tally) -> None:
        self._records += tally.records
        self._rejects += tally.num_rejects
        self._progress.update(self._task, advance=1, records=self._records, rejects=self._rejects)

    @classmethod
    @contextmanager
    def show(cls, total: int, console: Console) -> Iterator[PartitionProgress]:
        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("records {task.fields[records]}  rejects {task.fields[rejects]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            yield cls(progress, total)
