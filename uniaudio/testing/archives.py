"""Tar archives for fixtures and tests: members written in the order given (adjacency matters)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["tar_bytes", "write_tar"]


def tar_bytes(members: Iterable[tuple[str, bytes]], mtime: int = 0) -> bytes:
    """A POSIX ustar archive holding ``members`` (``(name, data)`` pairs) in order, as bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_tar(path: str | Path, members: Iterable[tuple[str, bytes]], mtime: int = 0) -> Path:
    """Write :func:`tar_bytes` of ``members`` to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tar_bytes(members, mtime))
    return path
