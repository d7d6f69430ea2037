"""What an interrupted writer leaves behind, removed by the next writer of the same output.

A run killed while uploading to S3 leaves

* **staging files** in the system temp directory (``uniaudio-<pid>-*``, see
  :func:`uniaudio.core.storage.local_staging_file`): :func:`remove_stale_staging_files` deletes those of
  processes that are no longer running and that are older than the new run; a live process's file is
  never touched. Only this machine's temp directory is cleaned (Ray workers on other nodes clean theirs
  when they next write from that node's driver).
* **interrupted multipart uploads** (s3fs uploads large objects in parts; an unfinished one is
  invisible but its parts are stored and billed): :func:`abort_multipart_uploads` aborts those under
  the output prefix that were started before the new run. It is called by the holder of the output's
  writer lease (:mod:`uniaudio.core.lease`), so no other live writer can own them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from pathlib import Path

from uniaudio.core import storage
from uniaudio.core.retry import retry_io

__all__ = ["abort_multipart_uploads", "clean_orphans", "remove_stale_staging_files"]

log = logging.getLogger(__name__)

_STAGING = re.compile(r"^uniaudio-(?P<pid>\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_staging_files(before: float, temp_dir: str | Path | None = None) -> list[Path]:
    """Delete staging files of dead processes last modified before ``before`` (Unix time); returns them."""
    removed = []
    for path in Path(temp_dir or tempfile.gettempdir()).glob("uniaudio-*"):
        match = _STAGING.match(path.name)
        if match is None or not path.is_file() or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < before:
                path.unlink()
                removed.append(path)
    if removed:
        log.warning("removed %d staging file(s) left by interrupted runs: %s", len(removed), removed[:3])
    return removed


def abort_multipart_uploads(prefix_uri: str, before: float) -> list[str]:
    """Abort the unfinished multipart uploads under ``prefix_uri`` (S3) started before ``before``.

    Returns the keys whose uploads were aborted; a local URI has none.
    """
    if not storage.is_remote(prefix_uri):
        return []
    fs = storage.filesystem(prefix_uri)
    bucket, _, prefix = storage.strip_scheme(prefix_uri).partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    aborted = []
    marker: dict[str, str] = {}
    while True:
        page = retry_io(lambda: fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix, **marker),  # noqa: B023
                        f"listing multipart uploads under {prefix_uri}")
        for upload in page.get("Uploads", []):
            if upload["Initiated"].timestamp() >= before:
                continue
            key, upload_id = upload["Key"], upload["UploadId"]
            retry_io(lambda: fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id),  # noqa: B023
                     f"aborting the upload of s3://{bucket}/{key}")
            aborted.append(key)
        if not page.get("IsTruncated"):
            break
        marker = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
    if aborted:
        log.warning("aborted %d interrupted upload(s) under %s: %s", len(aborted), prefix_uri, aborted[:3])
    return aborted


def clean_orphans(output_uri: str, before: float) -> None:
    """Both clean-ups for a writer that holds ``output_uri``'s lease since ``before``."""
    remove_stale_staging_files(before)
    abort_multipart_uploads(output_uri, before)
