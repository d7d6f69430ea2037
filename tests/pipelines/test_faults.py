"""Transient I/O faults: retried; a persisting one fails its partition (no marker) and a re-run finishes it.

The end-to-end test runs ``uniaudio ingest`` and ``uniaudio shards build`` as separate processes joined to
the session's Ray as their own jobs, so their workers reach S3 through a fault-injecting proxy in front
of the moto server (see ``fault_proxy.py``), then resumes with the outage over and compares the result
with a fault-free run: every key exactly once, the same rejects.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import ray
from ray import cloudpickle

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.core.retry import TransientIOError
from uniaudio.pipelines import audio_io
from uniaudio.pipelines.audio_stage import AudioStage, AudioStageConfig
from uniaudio.pipelines.ingest import IngestConfig, OutputLayout, read_table, run_ingest
from uniaudio.pipelines.io_failures import IO_FAILURE
from uniaudio.pipelines.records import AudioRecord, Reject
from uniaudio.pipelines.sources import Source
from uniaudio.pipelines.token_store import iter_store, validate_store
from uniaudio.testing.audio import encode_audio, synth
from uniaudio.testing.corpora import build_corpus

from .fault_proxy import FaultProxy

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers get FlakySource by value


class FlakySource(Source):
    """Partitions ``p0``..``p2`` of two wav clips each. While ``<input>/outage`` exists, ``p1`` fails with a
    persisting I/O error; ``p2`` always fails twice with a raw 503 before it reads (counted in files)."""

    name = "flaky"
    layouts: ClassVar[tuple[str, ...]] = ("<dir>/clip.wav",)

    def partitions(self) -> list[str]:
        return ["p0", "p1", "p2"]

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        root = Path(self.input_uri)
        if partition == "p1" and (root / "outage").exists():
            raise TransientIOError(f"stat of {root / 'clip.wav'}", OSError(errno.EBUSY, "Service Unavailable"), 8)
        if partition == "p2":
            tries = len(list(root.glob("p2-try-*")))
            (root / f"p2-try-{tries}").touch()
            if tries % 3 < 2:
                raise OSError(errno.EBUSY, "Service Unavailable")
        for i in range(2):
            yield AudioRecord(key=make_key(self.name, f"{partition}-{i}"), source=self.name,
                              audio_uri=str(root / "clip.wav"), duration_s=1.0, split=partition)


def test_persisting_metadata_error_fails_the_partition_and_a_rerun_finishes_it(tmp_path, ray_session):
    src = tmp_path / "flaky"
    src.mkdir()
    (src / "clip.wav").write_bytes(encode_audio(synth(1.0, 16000, seed=1), 16000, "wav"))
    (src / "outage").touch()
    out = str(tmp_path / "out")
    config = IngestConfig(source="flaky", input_uri=str(src), output_uri=out)

    first = run_ingest(config, source=FlakySource(str(src)))
    assert list(first["failed_partitions"]) == ["p1"]
    assert "Service Unavailable" in first["failed_partitions"]["p1"]
    assert not storage.exists(OutputLayout(out).marker("p1")) or not json.loads(
        storage.read_bytes(OutputLayout(out).marker("p1")))["complete"]
    assert read_table(out, "rejects").num_rows == 0  # an I/O failure is never a reject
    # p2's two raw 503s were retried: the partition was read again whole, its rows once each
    assert sorted(read_table(out).column("key").to_pylist()) == ["flaky/p0-0", "flaky/p0-1", "flaky/p2-0", "flaky/p2-1"]

    (src / "outage").unlink()
    second = run_ingest(config, source=FlakySource(str(src)))
    assert second["failed_partitions"] == {}
    assert second["partitions"]["complete"] == 3 and second["partitions"]["skipped"] == 2
    keys = read_table(out).column("key").to_pylist()
    assert sorted(keys) == [f"flaky/p{p}-{i}" for p in range(3) for i in range(2)]


def _tar_row(uri: str, member: str) -> dict:
    return {"key": f"t/{member}", "source": "t", "audio_uri": uri, "member": member, "offset_s": 0.0,
            "duration_s": None}


def test_audio_read_errors_are_retried_and_persisting_ones_are_failures_not_rejects(tmp_path, monkeypatch):
    from uniaudio.testing.archives import tar_bytes

    tar = tmp_path / "a.tar"
    tar.write_bytes(tar_bytes([("x.wav", encode_audio(synth(1.0, 16000, seed=2), 16000, "wav"))]))
    monkeypatch.setenv("UNIAUDIO_IO_RETRY_BASE_S", "0")
    monkeypatch.setenv("UNIAUDIO_IO_RETRY_MAX_S", "0")
    stage = AudioStage(AudioStageConfig(keep_audio=False))
    real, calls = audio_io._READERS["tar"], []

    def flaky(uri, wanted):
        calls.append(uri)
        if len(calls) <= failures:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        return real(uri, wanted)

    monkeypatch.setitem(audio_io._READERS, "tar", flaky)
    failures = 2  # transient, then fine: a kept row
    [row] = stage.process_batch([_tar_row(str(tar), "x.wav")])
    assert row["reason"] is None and len(calls) == 3

    calls.clear()
    failures = 100  # persisting: a failure row naming the container, never undecodable
    [row] = stage.process_batch([_tar_row(str(tar), "x.wav")])
    assert row["reason"] == IO_FAILURE and str(tar) in row["detail"] and row["fanout"] == 1
    assert len(calls) == 8  # bounded: the default policy's attempts

    monkeypatch.setitem(audio_io._READERS, "tar", real)
    corrupt = tmp_path / "b.tar"
    corrupt.write_bytes(b"\x00" * 10 + b"not a tar" * 100)
    [row] = stage.process_batch([_tar_row(str(corrupt), "x.wav")])
    assert row["reason"] in ("undecodable", "missing_file")  # content problems stay rejects


def test_remote_reads_inside_soundfile_are_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIAUDIO_IO_RETRY_BASE_S", "0")
    monkeypatch.setenv("UNIAUDIO_IO_RETRY_MAX_S", "0")
    data = encode_audio(synth(1.0, 16000, seed=3), 16000, "wav")

    class Dropping:
        """A file object whose every third read fails with a reset (before any byte is returned)."""

        def __init__(self, fail_always: bool = False) -> None:
            self.pos, self.reads, self.fail_always = 0, 0, fail_always

        def seek(self, offset, whence=0):
            self.pos = {0: offset, 1: self.pos + offset, 2: len(data) + offset}[whence]
            return self.pos

        def tell(self):
            return self.pos

        def read(self, n=-1):
            self.reads += 1
            if self.fail_always or self.reads % 3 == 0:
                raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
            chunk = data[self.pos:] if n < 0 else data[self.pos:self.pos + n]
            self.pos += len(chunk)
            return chunk

    decoded = audio_io.decode(audio_io.RetryingReader(Dropping(), "s3://b/x.wav"), name="s3://b/x.wav")
    assert decoded.samples.shape[0] == 16000
    np.testing.assert_allclose(decoded.samples, audio_io.decode(data).samples)
    with pytest.raises(TransientIOError, match="s3://b/x.wav"):
        audio_io.decode(audio_io.RetryingReader(Dropping(fail_always=True), "s3://b/x.wav"), name="s3://b/x.wav")


# -- end to end through a faulty S3 --------------------------------------------------------------------


@pytest.fixture(scope="module")
def emilia_s3(s3_server, tmp_path_factory) -> str:
    import boto3

    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket="faults")
    corpus = build_corpus("emilia", tmp_path_factory.mktemp("faults"))
    return storage.upload_tree(corpus, "s3://faults/emilia")


def _cli(args: list[str], endpoint: str, retries: int) -> subprocess.CompletedProcess:
    """Run ``uniaudio ARGS`` in a new process, joined to the session's Ray, with S3 behind ``endpoint``."""
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
           "UNIAUDIO_IO_RETRY_ATTEMPTS": str(retries), "UNIAUDIO_IO_RETRY_BASE_S": "0.01",
           "UNIAUDIO_IO_RETRY_MAX_S": "0.05", "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    code = "import sys; from uniaudio.cli.main import app; sys.argv[0] = 'uniaudio'; app()"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)


def _rejects(out: str) -> list[tuple[str, str]]:
    return sorted(zip(*(read_table(out, "rejects").column(c).to_pylist() for c in ("key", "reason")), strict=True))


def test_s3_outage_then_resume_ends_with_every_key_once_and_the_same_rejects(s3_server, emilia_s3):
    clean = "s3://faults/clean/records"  # the fault-free run (``shards build`` keeps the same keys and rejects)
    run_ingest(IngestConfig(source="emilia", input_uri=emilia_s3, output_uri=clean))
    want_keys, want_rejects = sorted(read_table(clean).column("key").to_pylist()), _rejects(clean)
    assert want_keys and want_rejects

    records, tokens = "s3://faults/faulty/records", "s3://faults/faulty/tokens"
    commands = [["ingest", "emilia", emilia_s3, records], ["shards", "build", "emilia", emilia_s3, tokens]]
    proxy = FaultProxy(s3_server, failure_rate=0.6, max_in_row=8, seed=14).start()
    try:
        for command in commands:  # an outage longer than the clients' own retries
            during = _cli(command, proxy.endpoint, retries=3)
            assert during.returncode in (0, 1), during.stdout[-3000:] + during.stderr[-3000:]
            if during.returncode == 1:  # failed partitions or a storage error: a message, no traceback
                assert "re-run" in during.stdout and "Traceback" not in during.stdout + during.stderr
        injected = dict(proxy.injected)
        proxy.failure_rate = 0.0  # the outage is over: resume
        for command in commands:
            after = _cli(command, proxy.endpoint, retries=8)
            assert after.returncode == 0, after.stdout[-3000:] + after.stderr[-3000:]
    finally:
        proxy.stop()
    assert set(injected) == {"slowdown", "reset_before", "reset_after", "reset_mid"}

    assert sorted(read_table(records).column("key").to_pylist()) == want_keys  # every key exactly once
    assert _rejects(records) == want_rejects
    assert sorted(s.key for s in iter_store(tokens)) == want_keys
    assert validate_store(tokens) == []
    assert _rejects(tokens) == want_rejects
