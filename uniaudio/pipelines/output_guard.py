"""``--force`` safety: what may be deleted before a rebuild, and deleting it without dropping the lease.

:func:`clear_output` refuses (:class:`UnsafeForceError`) to delete

* a bucket root (``s3://bucket`` or ``s3://bucket/``), or a local filesystem root or home directory;
* an output that is, or contains, the input (``shards build x ./data ./data`` or ``./data/..``);
* a directory holding anything a uniaudio output does not hold (a mistyped path to real data):
  only the names in :data:`STORE_NAMES` and names starting with ``shard-``, ``_`` or ``.`` are allowed.

Everything else under the output is deleted except the writer lease (``_lease.json``), which the
running command holds.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from uniaudio.core import storage
from uniaudio.core.lease import LEASE_NAME

__all__ = ["STORE_NAMES", "UnsafeForceError", "check_force_target", "clear_output"]

#: Names an ingest output or token store holds at its top level (plus ``shard-*``, ``_*``, ``.*``).
STORE_NAMES = ("index.json", "summary.json", "build-summary.json", "build-settings.json", "records", "rejects")
_STORE_PATTERNS = ("shard-*", "_*", ".*")


class UnsafeForceError(ValueError):
    """``--force`` was asked to delete something that is not (only) a uniaudio output."""


def _is_store_name(name: str) -> bool:
    return name in STORE_NAMES or any(fnmatch.fnmatch(name, p) for p in _STORE_PATTERNS)


def _normal(uri: str) -> str:
    if storage.is_remote(uri):
        return uri.rstrip("/")
    return os.path.realpath(storage.strip_scheme(uri))


def check_force_target(output_uri: str, input_uri: str) -> None:
    """Raise :class:`UnsafeForceError` if deleting ``output_uri`` would be unsafe (see the module doc)."""
    out, inp = _normal(output_uri), _normal(input_uri)
    if storage.is_remote(output_uri):
        if "/" not in storage.strip_scheme(out).strip("/"):
            raise UnsafeForceError(f"--force would delete the whole bucket {output_uri}; give a prefix")
    elif out in ("/", str(Path.home())) or Path(out).parent == Path(out):
        raise UnsafeForceError(f"--force would delete {out}; give the output directory itself")
    if inp == out or inp.startswith(out.rstrip("/") + "/"):
        raise UnsafeForceError(f"--force would delete the input: {input_uri} is inside the output {output_uri}")
    foreign = [child.rstrip("/").rsplit("/", 1)[-1] for child in storage.list_dir(output_uri)]
    foreign = [name for name in foreign if not _is_store_name(name)]
    if foreign:
        raise UnsafeForceError(
            f"--force refuses to delete {output_uri}: it holds {', '.join(sorted(foreign)[:5])}, which no "
            "uniaudio output holds; delete it yourself if it really is the output"
        )


def clear_output(output_uri: str, input_uri: str) -> None:
    """Check with :func:`check_force_target`, then delete everything under ``output_uri`` but the lease."""
    check_force_target(output_uri, input_uri)
    for child in storage.list_dir(output_uri):
        if child.rstrip("/").rsplit("/", 1)[-1] != LEASE_NAME:
            storage.remove(child)
