"""Helpers shared by the source tests."""

from __future__ import annotations

from uniaudio.pipelines.records import AudioRecord, Reject


def split_items(items) -> tuple[dict[str, AudioRecord], list[Reject]]:
    """A source's output as ``({key: record}, [rejects])``, checking nothing else came out."""
    items = list(items)
    records = {r.key: r for r in items if isinstance(r, AudioRecord)}
    rejects = [r for r in items if isinstance(r, Reject)]
    assert len(records) + len(rejects) == len(items)
    return records, rejects
