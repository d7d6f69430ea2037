"""Leftovers of interrupted writers: stale staging files and unfinished multipart uploads are removed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import boto3

from uniaudio.core import storage
from uniaudio.core.orphans import abort_multipart_uploads, remove_stale_staging_files


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_staging_files_of_dead_processes_are_removed_live_ones_kept(tmp_path):
    dead = tmp_path / f"{storage.staging_prefix(_dead_pid())}abc.tar"
    mine = tmp_path / f"{storage.staging_prefix()}def.tar"  # this (live) process's upload in progress
    unrelated = tmp_path / "uniaudio-logs"
    for path in (dead, mine):
        path.write_bytes(b"partial shard")
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    unrelated.mkdir()
    fresh_dead = tmp_path / f"{storage.staging_prefix(_dead_pid())}new.tar"
    fresh_dead.write_bytes(b"written after the run started")
    os.utime(fresh_dead, (time.time() + 60, time.time() + 60))

    removed = remove_stale_staging_files(before=time.time(), temp_dir=tmp_path)
    assert removed == [dead]
    assert not dead.exists() and mine.exists() and unrelated.exists() and fresh_dead.exists()


def test_staging_files_for_s3_carry_the_pid(s3_bucket):
    with storage.local_staging_file(f"{s3_bucket}/x/shard-000000.tar", suffix=".tar") as path:
        assert path.name.startswith(f"uniaudio-{os.getpid()}-") and path.name.endswith(".tar")


def test_interrupted_multipart_uploads_under_the_prefix_are_aborted(s3_server, s3_bucket):
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    bucket = s3_bucket.removeprefix("s3://")
    for key in ("out/shard-000003.tar", "elsewhere/shard-000000.tar"):
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024)

    assert abort_multipart_uploads(f"{s3_bucket}/out", before=time.time()) == ["out/shard-000003.tar"]
    left = [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert left == ["elsewhere/shard-000000.tar"]  # another prefix is not this writer's
    assert abort_multipart_uploads(f"{s3_bucket}/elsewhere", before=0.0) == []  # started after "before": kept
    assert abort_multipart_uploads(str(s3_bucket), before=time.time()) == ["elsewhere/shard-000000.tar"]
