"""One tar shard being written and committed whole, and when to close it: shared by every store."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from uniaudio.core import storage
from uniaudio.core.ustar import TAR_END, tar_header, tar_padding

__all__ = ["ShardFile", "ShardLimits"]

@dataclass(frozen=True)
class ShardLimits:
    """When to close a shard: at ``max_samples`` samples or once it reaches ``max_bytes`` bytes."""

    max_samples: int = 10_000
    max_bytes: int = 512 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_samples < 1 or self.max_bytes < 1024:
            raise ValueError("ShardLimits: max_samples must be >= 1 and max_bytes >= 1024")


class ShardFile:
    """One tar shard being written: staged locally, hashed as it grows, then committed whole.

    Shared by every store made of tar shards (token store, sentence store). Local shards are staged
    beside their destination under a hidden name and renamed; S3 shards are staged in the temp
    directory and uploaded as one object. Nothing appears under ``uri`` before :meth:`commit`.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._staging = storage.local_staging_file(uri, suffix=".tar")
        self._path: Path = self._staging.__enter__()
        self._file: BinaryIO = open(self._path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in commit/abort
        self._sha = hashlib.sha256()
        self.size = 0

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._sha.update(data)
        self.size += len(data)

    def add(self, members: list[tuple[str, bytes]]) -> None:
        """Append one sample's members, adjacent and in the given order."""
        chunks = []
        for name, data in members:
            chunks += [tar_header(name, len(data)), data, tar_padding(len(data))]
        self._write(b"".join(chunks))

    def commit(self) -> tuple[int, str]:
        """Finish the tar and move it to ``uri``; returns its size in bytes and sha256."""
        self._write(TAR_END)
        self._file.close()
        storage.atomic_upload(self._path, self.uri)
        self._staging.__exit__(None, None, None)
        return self.size, self._sha.hexdigest()

    def abort(self) -> None:
        """Drop the staged shard; nothing is left under ``uri``."""
        self._file.close()
        self._staging.__exit__(None, None, None)
