"""A real Ray head for the tests that run commands against a cluster (``--ray-address``, ``submit``, ``jobs``).

``ray_head`` (session scope: one head for every test module here, started once) runs ``ray start --head
--block`` on 127.0.0.1 with its dashboard (which serves the Jobs API), every port chosen free, 2 CPUs, a
200 MB object store and its own ``--temp-dir``. Ray writes the head's address file
(``ray_current_cluster``) into that directory, not into /tmp/ray, so a bare ``ray.init()`` elsewhere never
finds the head; the suite's embedded Ray (tests/conftest.py) and ``RAY_ADDRESS`` of this process are left
alone. Commands reach the head as subprocesses that are given
its address (``head.uniaudio(...)``). The head is stopped by signalling the process group of the
``ray start`` it launched, never with ``ray stop`` (that kills every Ray on the machine); should pytest
itself be killed, the kernel sends ``ray start`` SIGTERM (parent-death signal) and the head goes too.

The head's environment is a clean cluster's: it holds no AWS credentials of this process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
ADDRESS_VARIABLES = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
START_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client_env() -> dict[str, str]:
    """This process's environment without Ray addresses: every command names the head explicitly."""
    env = {k: v for k, v in os.environ.items() if k not in ADDRESS_VARIABLES}
    env.update(LOOPBACK, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return env


@dataclass(frozen=True)
class RayHead:
    """A running head: ``gcs_address`` for ``--ray-address``, ``api_url`` for ``--address``."""

    gcs_address: str
    api_url: str
    temp_dir: Path
    process: subprocess.Popen

    def uniaudio(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300,
                 ) -> subprocess.CompletedProcess[str]:
        """Run ``uniaudio ARGS`` in a subprocess (this process's environment minus Ray addresses, plus ``env``)."""
        return subprocess.run([str(BIN / "uniaudio"), *args], env={**_client_env(), **(env or {})},
                              capture_output=True, text=True, timeout=timeout, check=False)

    def log(self) -> str:
        """What ``ray start`` printed (for failure messages)."""
        return (self.temp_dir / "ray-start.log").read_text(errors="replace")


def _wait_until_jobs_run(api_url: str, process: subprocess.Popen, log: Path) -> None:
    """Submit a no-op job until the head accepts and finishes it (the dashboard agent starts last)."""
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + START_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            client = JobSubmissionClient(api_url)
            job = client.submit_job(entrypoint="true", submission_id=f"warm-up-{time.time_ns()}")
            while not client.get_job_status(job).is_terminal():
                time.sleep(0.5)
            return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
            time.sleep(1.0)
    raise TimeoutError(f"the Ray head's Jobs API did not come up in {START_TIMEOUT_S} s: {last}")


def _stop_with_parent() -> None:
    """In the child before exec: SIGTERM it when pytest dies (killed by a timeout, finalizers skipped)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the ``ray start --block`` process (it stops what it started), then SIGKILL its group."""
    pgid = process.pid  # start_new_session: the group holds ray start and every process it spawned
    process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    if process.poll() is None:
        process.wait(timeout=5)


def _start_head() -> RayHead:
    """Launch ``ray start --head --block`` and wait until its Jobs API runs jobs; stopped again on failure."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rayhead-", dir="/tmp"))  # short: Ray's socket paths live here
    gcs_port, dashboard_port = _free_port(), _free_port()
    env = {k: v for k, v in _client_env().items() if k not in CREDENTIALS}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", DS_ACCELERATOR="cpu", GLOO_SOCKET_IFNAME="lo",
               RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0")  # stop at once on SIGTERM, no 30 s node drain
    command = [
        str(BIN / "ray"), "start", "--head", "--block", "--disable-usage-stats",
        "--node-ip-address=127.0.0.1", f"--port={gcs_port}", f"--temp-dir={temp_dir}",
        "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
        "--num-cpus=2", "--num-gpus=0", "--object-store-memory=200000000",
        # every port of the head chosen here, so heads of parallel sessions never collide
        f"--ray-client-server-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}",
        f"--dashboard-agent-grpc-port={_free_port()}", f"--metrics-export-port={_free_port()}",
        f"--runtime-env-agent-port={_free_port()}", f"--node-manager-port={_free_port()}",
        f"--object-manager-port={_free_port()}",
    ]
    log = temp_dir / "ray-start.log"
    with log.open("w") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=_stop_with_parent)
    try:
        _wait_until_jobs_run(f"http://127.0.0.1:{dashboard_port}", process, log)
    except BaseException:
        _stop(process)
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return RayHead(gcs_address=f"127.0.0.1:{gcs_port}", api_url=f"http://127.0.0.1:{dashboard_port}",
                   temp_dir=temp_dir, process=process)


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """A Ray head with the Jobs API on 127.0.0.1 for the cluster tests (see the module docstring).

    A start that fails (on a loaded machine the raylet can time out waiting for its agents) is retried
    once with fresh ports and a fresh temp dir.
    """
    try:
        head = _start_head()
    except (RuntimeError, TimeoutError):
        head = _start_head()
    try:
        yield head
    finally:
        _stop(head.process)
        shutil.rmtree(head.temp_dir, ignore_errors=True)
