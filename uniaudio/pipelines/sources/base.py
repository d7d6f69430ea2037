"""The contract every corpus source implements.

A source turns a corpus, in the layout users download, into :class:`AudioRecord`\\ s and
:class:`Reject`\\ s. Work is split into *partitions*: stable string ids of independent units (one tar,
one transcript file, one CSV split, one JSON file...). The ingest and build pipelines run one Ray task
per partition and record finished partitions, so re-runs skip them; partition ids therefore must not
depend on anything but the input layout.

Reading metadata must not decode audio: ``read_partition`` yields records whose ``duration_s`` comes
from metadata when the corpus has it (``None`` otherwise), which is what ``--dry-run`` reports.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from uniaudio.core import storage
from uniaudio.pipelines.records import AudioRecord, Reject

__all__ = ["Source", "SourceError", "normalise_uri"]


def normalise_uri(uri: str) -> str:
    """One spelling per location, for sources and settings fingerprints: ``./x``, ``/abs/x``, ``x/`` and
    ``file://`` forms of a local path give its absolute path (so nothing depends on the cwd); remote
    URIs lose trailing ``/``."""
    if storage.is_remote(uri):
        return uri.rstrip("/")
    return os.path.abspath(storage.strip_scheme(uri))


class SourceError(ValueError):
    """The input does not look like any layout the source accepts (names the path and what is missing)."""


class Source(ABC):
    """A corpus reader. Subclasses set ``name`` and ``layouts`` and implement the two methods."""

    name: ClassVar[str]
    #: One line per accepted layout, shown by ``uniaudio sources list``.
    layouts: ClassVar[tuple[str, ...]]
    #: Names of the ``--option key=value`` settings the source takes; any other is a :class:`SourceError`.
    accepted_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        self.input_uri = normalise_uri(input_uri)
        self.split = split
        self.options = options
        unknown = sorted(set(options) - set(self.accepted_options))
        if unknown:
            takes = ", ".join(self.accepted_options) or "none"
            raise SourceError(f"{self.name}: unknown option(s) {unknown}; known: {takes}")

    @abstractmethod
    def partitions(self) -> list[str]:
        """Stable ids of the independent units of work, sorted. Raises :class:`SourceError` on a bad layout."""

    @abstractmethod
    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        """Records and rejects of one partition, from metadata only (no audio decoding)."""

    def iter_all(self) -> Iterator[AudioRecord | Reject]:
        for partition in self.partitions():
            yield from self.read_partition(partition)
