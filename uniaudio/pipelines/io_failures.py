"""I/O failures in the pipelines: retried, and when they persist, a failed partition, never a reject.

Only content problems (a corrupt file, bad metadata, a missing file) become rejects. A transient I/O
error (:func:`uniaudio.core.retry.is_transient`) is retried with bounded backoff where it happens:

* whole-object storage calls in :mod:`uniaudio.core.storage`;
* reading a partition's metadata: :func:`read_partition_items` reads the whole partition again;
* reading audio (:mod:`~uniaudio.pipelines.audio_io`): the container or byte range is read again.

One that persists turns the affected input into a *failure row*: a row of the stream whose ``reason``
is :data:`IO_FAILURE` and whose ``detail`` names the file and error. The drivers take failure rows out
of a partition's rows with :meth:`PartitionFailures.take` and then treat the partition as incomplete:
no done-marker is written, so the next run redoes it; keys it did commit stay committed (exactly once).
The failures are listed in the run's summary (``failed_partitions``) and the CLI exits non-zero.
"""

from __future__ import annotations

from typing import Any

from uniaudio.core.retry import TransientIOError, retry_io
from uniaudio.pipelines.records import AudioRecord, Reject
from uniaudio.pipelines.sources.base import Source

__all__ = ["IO_FAILURE", "PartitionFailures", "failure_detail", "is_failure_row", "read_partition_items"]

#: ``reason`` of a failure row: an input that could not be read because of a persisting I/O error.
IO_FAILURE = "io_failure"


def failure_detail(what: str, exc: BaseException) -> str:
    return str(exc) if isinstance(exc, TransientIOError) else f"{what}: {type(exc).__name__}: {exc}"


def read_partition_items(source: Source, partition: str) -> tuple[list[AudioRecord | Reject], BaseException | None]:
    """All items of one partition, re-reading it whole on transient errors; ``(items, error)``.

    ``error`` is ``None`` on success; else the exception that ended the read (a persisting transient
    error, see :func:`~uniaudio.core.retry.is_transient`, or a content error) and ``items`` holds
    what was read before it.
    """
    items: list[AudioRecord | Reject] = []

    def attempt() -> None:
        items.clear()
        items.extend(source.read_partition(partition))

    try:
        retry_io(attempt, f"reading partition {partition} of {source.input_uri}")
    except Exception as exc:  # noqa: BLE001 - the caller decides: failure (transient) or reject (content)
        return items, exc
    return items, None


def is_failure_row(row: dict[str, Any]) -> bool:
    return row.get("reason") == IO_FAILURE


class PartitionFailures:
    """The partitions of one run that failed with persisting I/O errors: partition id → first detail."""

    def __init__(self) -> None:
        self.failed: dict[str, str] = {}

    def take(self, partition: str, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        """``(rows without failure rows, whether the partition failed)``; records the failure."""
        failures = [row for row in rows if is_failure_row(row)]
        if not failures:
            return rows, False
        self.failed.setdefault(partition, str(failures[0].get("detail")))
        return [row for row in rows if not is_failure_row(row)], True

    def as_dict(self) -> dict[str, str]:
        return dict(sorted(self.failed.items()))
