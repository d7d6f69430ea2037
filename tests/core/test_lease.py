"""The writer lease: one writer per output, local and on S3; stale leases taken over; heartbeat; release."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from uniaudio.core import storage
from uniaudio.core.lease import LEASE_NAME, LeaseConfig, LeaseHeldError, LeaseLostError, WriterLease, holding_lease


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "out")
    bucket = request.getfixturevalue("s3_bucket")
    return f"{bucket}/out"


def _lease_record(store: str) -> dict:
    return json.loads(storage.read_bytes(storage.join(store, LEASE_NAME)))


def _wait_for(condition, what: str, attempts: int = 400) -> None:
    """Poll ``condition`` (no timing assertion: a bound on attempts only so a broken lease fails the test)."""
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def test_second_writer_is_refused_with_the_holder_named(store):
    with WriterLease(store, run_id="first-run") as first:
        record = _lease_record(store)
        assert record["run_id"] == "first-run" and record["host"] == socket.gethostname()
        with pytest.raises(LeaseHeldError, match=rf"run first-run on host {socket.gethostname()} .*--break-lock"):
            WriterLease(store, run_id="second-run").acquire()
        assert _lease_record(store)["run_id"] == first.run_id  # the refused writer changed nothing
    assert not storage.exists(storage.join(store, LEASE_NAME))  # released at the end
    with WriterLease(store, run_id="second-run"):  # and free for the next writer
        assert _lease_record(store)["run_id"] == "second-run"


def test_stale_lease_is_taken_over_after_the_timeout(store):
    dead = {"run_id": "dead-run", "host": "gone-host", "pid": 1, "started": 0, "heartbeat": time.time() - 700}
    storage.atomic_write_bytes(storage.join(store, LEASE_NAME), json.dumps(dead).encode())
    with pytest.raises(LeaseHeldError, match="dead-run on host gone-host"):  # 700 s < a 1000 s timeout
        WriterLease(store, LeaseConfig(stale_after_s=1000)).acquire()
    with WriterLease(store, LeaseConfig(stale_after_s=600), run_id="new-run"):  # 700 s > 600 s: stale
        assert _lease_record(store)["run_id"] == "new-run"


def test_break_lock_takes_over_a_live_looking_lease(store):
    alive = {"run_id": "old-run", "host": "other-host", "pid": 1, "started": 0, "heartbeat": time.time()}
    storage.atomic_write_bytes(storage.join(store, LEASE_NAME), json.dumps(alive).encode())
    with WriterLease(store, LeaseConfig(break_lock=True), run_id="breaker"):
        assert _lease_record(store)["run_id"] == "breaker"


def test_heartbeat_keeps_the_lease_fresh(tmp_path):
    store = str(tmp_path / "out")
    with WriterLease(store, LeaseConfig(heartbeat_s=0.05, stale_after_s=600)):
        beats = {_lease_record(store)["heartbeat"]}

        def beat_seen() -> bool:
            beats.add(_lease_record(store)["heartbeat"])
            return len(beats) >= 3

        _wait_for(beat_seen, "two heartbeats after the first record")
        assert max(beats) > min(beats)


class _Run:
    def __init__(self, output_uri: str, lease: LeaseConfig) -> None:
        self.output_uri = output_uri
        self.lease = lease


def test_lease_is_released_when_the_run_fails(tmp_path):
    store = str(tmp_path / "out")

    @holding_lease
    def failing_run(config: _Run) -> None:
        assert storage.exists(storage.join(config.output_uri, LEASE_NAME))
        raise RuntimeError("a bug in the run")

    with pytest.raises(RuntimeError, match="a bug in the run"):
        failing_run(_Run(store, LeaseConfig()))
    assert not storage.exists(storage.join(store, LEASE_NAME))


def test_a_run_whose_lease_is_taken_over_stops(tmp_path):
    store = str(tmp_path / "out")
    started = threading.Event()

    @holding_lease
    def long_run(config: _Run) -> str:
        started.set()
        for _ in range(3000):  # a bounded "long run": the takeover must interrupt it well before
            time.sleep(0.01)
        return "ran to the end"

    usurper = WriterLease(store, LeaseConfig(break_lock=True), run_id="usurper")

    def take_over() -> None:
        started.wait()
        usurper.acquire()

    thief = threading.Thread(target=take_over)
    thief.start()
    with pytest.raises(LeaseLostError, match="run usurper"):
        long_run(_Run(store, LeaseConfig(heartbeat_s=0.05, stale_after_s=600)))
    thief.join()
    assert _lease_record(store)["run_id"] == "usurper"  # the stopped run did not delete the new holder's lease
    usurper.release()


def test_lease_config_is_validated():
    with pytest.raises(ValueError, match="heartbeat_s"):
        LeaseConfig(heartbeat_s=0)
    with pytest.raises(ValueError, match="must exceed"):
        LeaseConfig(heartbeat_s=30, stale_after_s=10)
