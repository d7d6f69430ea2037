"""Passes: how ``ingest`` and ``shards build`` cut the partitions still to do into Ray Data executions.

Ray Data keeps driver-side state for every task of an execution until that execution ends (a few KB
per task, in Ray's C++ core and Ray Data's per-block stats: bench/RESULTS.md, "Driver memory at corpus
scale"); it is handed back to the allocator, and reused, when the execution ends. So a run covers its
partitions in passes, one execution each, and the driver's memory depends on the size of a pass, not
on the corpus.

A pass is sized in **records** (:attr:`PassSize.records`), the unit the driver's state grows with,
because partitions differ by orders of magnitude between corpora (a LibriSpeech chapter is ~100
utterances, a byte range of an MLS transcript thousands). The records a partition holds are learnt
from the partitions already finished, earlier runs' included (their done-markers' tallies); until one
has finished, a pass takes :data:`FIRST_PASS_PARTITIONS`. ``PassSize.partitions`` fixes the number of
partitions per pass instead. Each pass starts its actors anew (for ``shards build``, one codec load
per actor), which is why a pass should be many minutes of work on a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["FIRST_PASS_PARTITIONS", "RECORDS_PER_PASS", "PassSize", "Passes"]

#: Partitions of a pass before any partition's size is known.
FIRST_PASS_PARTITIONS = 16
#: Default records per pass of ``ingest`` and ``shards build``. Measured (bench/RESULTS.md): the ``shards
#: build`` driver of 200,000 records peaks +35 MiB over a 5,000-record run with passes of 50,000 records,
#: +46 MiB with passes of 100,000.
RECORDS_PER_PASS = 50_000


@dataclass(frozen=True)
class PassSize:
    """How large a pass is: about ``records`` rows, or exactly ``partitions`` partitions when set."""

    records: int
    partitions: int | None = None

    def __post_init__(self) -> None:
        if self.records < 1:
            raise ValueError(f"records_per_pass must be at least 1, got {self.records}")
        if self.partitions is not None and self.partitions < 1:
            raise ValueError(f"partitions_per_pass must be at least 1, got {self.partitions}")


class Passes:
    """The partitions of ``todo``, in order, as passes of :class:`PassSize`.

    Iterate to get each pass's partitions; call :meth:`finished` with the rows (records and rejects)
    of every partition that completes, so later passes are sized from what partitions hold. ``known``
    are the row counts of partitions finished by earlier runs.
    """

    def __init__(self, todo: list[str], size: PassSize, known: Iterable[int] = ()):
        self.todo = todo
        self.size = size
        self._partitions = 0
        self._rows = 0
        for rows in known:
            self.finished(rows)

    def finished(self, rows: int) -> None:
        """One more partition completed with ``rows`` rows."""
        self._partitions += 1
        self._rows += rows

    def next_size(self) -> int:
        """Partitions in the next pass."""
        if self.size.partitions is not None:
            return self.size.partitions
        if not self._partitions:
            return FIRST_PASS_PARTITIONS
        per_partition = max(1.0, self._rows / self._partitions)
        return max(1, int(self.size.records // per_partition))

    def __iter__(self) -> Iterator[list[str]]:
        start = 0
        while start < len(self.todo):
            end = start + self.next_size()
            yield self.todo[start:end]
            start = end
