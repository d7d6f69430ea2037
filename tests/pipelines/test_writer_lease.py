"""Issue 14 item 2 (and 9c): one writer per output for `ingest`, `shards build` and `sentences build`.

A second writer is refused with a message naming the holder (run id, host); a stale lease is taken
over after the timeout or with ``--break-lock``; the lease is gone after a run (also a failed one);
the next writer of an S3 output cleans up what an interrupted one left (multipart uploads, staging files).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from uniaudio.cli.main import app
from uniaudio.core import storage
from uniaudio.core.lease import LEASE_NAME, LeaseHeldError, WriterLease
from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.build import BuildConfig, run_build
from uniaudio.pipelines.ingest import IngestConfig, read_table, run_ingest
from uniaudio.pipelines.sources import SourceError
from uniaudio.testing.corpora import build_corpus

runner = CliRunner()
HOST = socket.gethostname()


@pytest.fixture(scope="module")
def kaldi(tmp_path_factory) -> str:
    return str(build_corpus("manifest", tmp_path_factory.mktemp("corpus")) / "kaldi")


def _write_lease(store: str, run_id: str, host: str, age_s: float) -> None:
    record = {"run_id": run_id, "host": host, "pid": 4242, "started": 0, "heartbeat": time.time() - age_s}
    storage.atomic_write_bytes(storage.join(store, LEASE_NAME), json.dumps(record).encode())


def _has_lease(store: str) -> bool:
    return storage.exists(storage.join(store, LEASE_NAME))


def test_ingest_second_writer_refused_stale_lease_taken_over_break_lock(kaldi, tmp_path):
    out = str(tmp_path / "out")
    args = ["ingest", "manifest", kaldi, out]
    with WriterLease(out, run_id="first-writer"):  # a live writer on the same output
        refused = runner.invoke(app, args)
        assert refused.exit_code == 1, refused.output
        text = " ".join(refused.output.split())
        assert f"run first-writer on host {HOST}" in text and "--break-lock" in text
        assert not Path(out, "records").exists()  # the refused run wrote nothing
    assert not _has_lease(out)

    _write_lease(out, "crashed-run", "old-host", age_s=700)  # no heartbeat for longer than the 600 s default
    taken = runner.invoke(app, args)
    assert taken.exit_code == 0, taken.output
    assert read_table(out).num_rows == 3
    assert not _has_lease(out)  # released at the end

    _write_lease(out, "hung-run", "old-host", age_s=5)  # looks alive
    held = runner.invoke(app, args)
    assert held.exit_code == 1 and "hung-run" in held.output
    broken = runner.invoke(app, [*args, "--break-lock"])
    assert broken.exit_code == 0, broken.output
    assert "already done" in broken.output and not _has_lease(out)

    too_short = runner.invoke(app, [*args, "--lock-timeout", "5"])
    assert too_short.exit_code == 2 and "--lock-timeout" in too_short.output


def test_ingest_releases_the_lease_when_the_run_fails(tmp_path):
    empty, out = tmp_path / "empty", str(tmp_path / "out")
    empty.mkdir()
    with pytest.raises(SourceError):
        run_ingest(IngestConfig(source="manifest", input_uri=str(empty), output_uri=out))
    assert not _has_lease(out)


def test_shards_build_second_writer_refused(kaldi, tmp_path):
    out = str(tmp_path / "tokens")
    config = BuildConfig(source="manifest", input_uri=kaldi, output_uri=out, limits=ShardLimits(max_samples=2))
    with WriterLease(out, run_id="builder-one"):
        with pytest.raises(LeaseHeldError, match=f"run builder-one on host {HOST}"):
            run_build(config)
        cli = runner.invoke(app, ["shards", "build", "manifest", kaldi, out])
        assert cli.exit_code == 1, cli.output
        assert "builder-one" in cli.output and "Traceback" not in cli.output
    assert not any(Path(out).glob("shard-*"))


def test_sentences_build_second_writer_refused(tmp_path):
    from uniaudio.sentences.build import BuildRequest, build_sentences
    from uniaudio.sentences.documents import TextInput

    text = tmp_path / "docs.jsonl"
    text.write_text(json.dumps({"text": "one document"}) + "\n")
    out = str(tmp_path / "sentences")
    request = BuildRequest(kind="text-only", output_uri=out, text=(asdict(TextInput(str(text))),))
    with WriterLease(out, run_id="sentence-writer"):
        with pytest.raises(LeaseHeldError, match=f"run sentence-writer on host {HOST}"):
            build_sentences(request)
        cli = runner.invoke(app, ["sentences", "build", "text-only", out, "--text", str(text)])
        assert cli.exit_code == 1, cli.output
        assert "sentence-writer" in " ".join(cli.output.split())
    assert not _has_lease(out)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_s3_second_writer_refused_then_next_run_cleans_interrupted_uploads(kaldi, s3_server, s3_bucket):
    out = f"{s3_bucket}/ingest"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    bucket = s3_bucket.removeprefix("s3://")
    upload = client.create_multipart_upload(Bucket=bucket, Key="ingest/records/part-0.parquet")  # a killed upload
    client.upload_part(Bucket=bucket, Key="ingest/records/part-0.parquet", UploadId=upload["UploadId"],
                       PartNumber=1, Body=b"x" * 1024)
    temp = Path(tempfile.gettempdir())
    stale = temp / f"{storage.staging_prefix(_dead_pid())}killed.tar"
    live = temp / f"{storage.staging_prefix()}uploading.tar"  # this live process's staging file
    for path in (stale, live):
        path.write_bytes(b"partial")
        os.utime(path, (time.time() - 60, time.time() - 60))
    try:
        args = ["ingest", "manifest", kaldi, out]
        with WriterLease(out, run_id="s3-writer"):
            refused = runner.invoke(app, args)
            assert refused.exit_code == 1 and f"run s3-writer on host {HOST}" in " ".join(refused.output.split())
            assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")  # a refused run cleans nothing
            assert stale.exists()
        ran = runner.invoke(app, args)
        assert ran.exit_code == 0, ran.output
        assert read_table(out).num_rows == 3 and not _has_lease(out)
        assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
        assert not stale.exists() and live.exists()
    finally:
        stale.unlink(missing_ok=True)
        live.unlink(missing_ok=True)
