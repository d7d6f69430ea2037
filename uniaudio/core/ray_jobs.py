"""Ray Jobs on an existing cluster: the job a ``uniaudio`` command becomes, and a client for the Jobs API.

A submitted job runs ``uniaudio <command...>`` as the job's entrypoint on the cluster (the driver runs
on the head node unless entrypoint resources are asked for); Ray sets ``RAY_ADDRESS`` in the job, so
the command's own ``ensure_ray`` connects to that cluster.

What a job gets (:meth:`JobSpec.runtime_env`):

* ``env_vars``: exactly the ``env`` pairs given, plus ``RAY_OVERRIDE_JOB_RUNTIME_ENV=1`` so that the
  command's ``ray.init(runtime_env=...)`` (the worker environment of ``ensure_ray``) may set the same
  variables without Ray refusing to merge the two. **Nothing else is copied from the submitting
  machine**: credentials (``AWS_*``) reach the job only when named in ``env``; otherwise the cluster
  supplies them (instance roles, the nodes' own environment);
* ``working_dir``: a local directory (uploaded; files matched by its ``.gitignore`` are left out) or
  a remote package URI (``s3://.../code.zip``), unchanged; the job runs in it;
* ``pip``: requirements installed into a virtualenv for the job on top of the node's environment.

The Jobs API is served by the head's dashboard (Ray's ``default`` extra): :func:`resolve_api_address`
picks the address from the argument, else ``RAY_API_SERVER_ADDRESS``, else ``RAY_ADDRESS``, else
``http://127.0.0.1:8265``; the argument wins over the environment (Ray's own client lets the
environment win). The argument and ``RAY_API_SERVER_ADDRESS`` name the API (``http://head:8265``;
``head:8265`` means the same) or a Ray Client address (``ray://head:10001``). ``RAY_ADDRESS`` is the
cluster address every ``--ray-address`` takes (``head:6379``, ``auto``): Ray asks that cluster where
its dashboard is.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray.job_submission import JobDetails, JobSubmissionClient

__all__ = [
    "DEFAULT_API_ADDRESS",
    "ClusterUnreachable",
    "JobSpec",
    "JobsClient",
    "JobsError",
    "parse_env_pairs",
    "resolve_api_address",
]

DEFAULT_API_ADDRESS = "http://127.0.0.1:8265"
#: Read in this order when no address is given (Ray's own variables).
ADDRESS_VARIABLES = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
#: Set in every job: lets the command's ``ray.init(runtime_env=...)`` override the job's variables.
MERGE_VARIABLE = "RAY_OVERRIDE_JOB_RUNTIME_ENV"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class JobsError(RuntimeError):
    """A Jobs API request failed (unknown job id, rejected submission, ...); the message says which."""


class ClusterUnreachable(JobsError):
    """No Jobs API answered at the resolved address."""


def resolve_api_address(address: str | None = None) -> tuple[str, str]:
    """``(address, where it came from)``: the argument, else the first of :data:`ADDRESS_VARIABLES`
    that is set, else :data:`DEFAULT_API_ADDRESS`. An API address without a scheme gets ``http://``;
    a ``RAY_ADDRESS`` is kept as it is (a cluster address, resolved by Ray)."""
    if address:
        return _api_url(address), "--address"
    if os.environ.get("RAY_API_SERVER_ADDRESS"):
        return _api_url(os.environ["RAY_API_SERVER_ADDRESS"]), "$RAY_API_SERVER_ADDRESS"
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"], "$RAY_ADDRESS"
    return DEFAULT_API_ADDRESS, "the default"


def _api_url(address: str) -> str:
    return address if "://" in address or address == "auto" else f"http://{address}"


def parse_env_pairs(pairs: list[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """``KEY=VALUE`` pairs, or bare ``KEY`` for this process's value of ``KEY`` (it must be set)."""
    environ = os.environ if environ is None else environ
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"--env {pair!r}: expected KEY=VALUE or KEY, with KEY a variable name")
        if not sep:
            if name not in environ:
                raise ValueError(f"--env {name}: {name} is not set here; give --env {name}=VALUE")
            value = environ[name]
        env[name] = value
    return env


@dataclass(kw_only=True)
class JobSpec:
    """A ``uniaudio`` command to run as a Ray Job, and what its runtime environment holds.

    ``entrypoint_cpus/gpus/memory_gb`` reserve resources for the driver process (Ray then places it on
    any node that has them; without them it runs on the head node and reserves nothing).
    """

    command: list[str]
    program: str = "uniaudio"
    working_dir: str | None = None
    pip: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    submission_id: str | None = None
    entrypoint_cpus: float | None = None
    entrypoint_gpus: float | None = None
    entrypoint_memory_gb: float | None = None

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("no command to submit: give it after `--`, e.g. `-- shards build ...`")
        bad = [k for k in self.env if not _ENV_NAME.fullmatch(k)]
        if bad:
            raise ValueError(f"env: invalid variable names {bad}")
        if any(not p.strip() for p in self.pip):
            raise ValueError("pip: empty requirement")
        if self.working_dir is not None and "://" not in self.working_dir:
            path = Path(self.working_dir).expanduser()
            if not path.is_dir():
                raise ValueError(f"working_dir {self.working_dir}: not a directory")
            self.working_dir = str(path.resolve())
        for name in ("entrypoint_cpus", "entrypoint_gpus", "entrypoint_memory_gb"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")

    def entrypoint(self) -> str:
        """The shell command the job runs, each argument quoted."""
        return shlex.join([self.program, *self.command])

    def runtime_env(self) -> dict[str, Any]:
        """The job's ``runtime_env`` (see the module docstring): nothing from this process's environment."""
        runtime_env: dict[str, Any] = {"env_vars": {**self.env, MERGE_VARIABLE: "1"}}
        if self.working_dir:
            runtime_env["working_dir"] = self.working_dir
        if self.pip:
            runtime_env["pip"] = list(self.pip)
        return runtime_env

    def submit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``JobSubmissionClient.submit_job``."""
        kwargs: dict[str, Any] = {"entrypoint": self.entrypoint(), "runtime_env": self.runtime_env(),
                                  "submission_id": self.submission_id}
        if self.entrypoint_cpus:
            kwargs["entrypoint_num_cpus"] = self.entrypoint_cpus
        if self.entrypoint_gpus:
            kwargs["entrypoint_num_gpus"] = self.entrypoint_gpus
        if self.entrypoint_memory_gb:
            kwargs["entrypoint_memory"] = int(self.entrypoint_memory_gb * 1024**3)
        return kwargs


@contextmanager
def _address_variables_hidden() -> Iterator[None]:
    """Ray's client prefers the address variables over its argument; hide them while it is built."""
    saved = {name: os.environ.pop(name) for name in ADDRESS_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class JobsClient:
    """The cluster's Jobs API; every failure surfaces as :class:`JobsError` with a readable message."""

    def __init__(self, address: str | None = None) -> None:
        from ray.job_submission import JobSubmissionClient

        self.address, origin = resolve_api_address(address)
        try:
            with _address_variables_hidden():
                self._client: JobSubmissionClient = JobSubmissionClient(self.address)
        except Exception as exc:  # noqa: BLE001 - connection refused, DNS, no dashboard, old Ray: all one answer
            raise ClusterUnreachable(
                f"cannot reach the Ray Jobs API at {self.address} (from {origin}): {_reason(exc)}. "
                "Is the head running with its dashboard (`ray start --head --dashboard-host 0.0.0.0`, "
                "port 8265 by default)? Give --address http://HEAD:8265 or set RAY_API_SERVER_ADDRESS."
            ) from exc

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - HTTP errors arrive as RuntimeError/requests errors
            raise JobsError(f"{what} at {self.address}: {_reason(exc)}") from exc

    def submit(self, spec: JobSpec) -> str:
        """Submit ``spec``; returns the job id (the submission id)."""
        return self._call("submitting the job", self._client.submit_job, **spec.submit_kwargs())

    def list(self) -> list[JobDetails]:
        """Every job the cluster knows, oldest first."""
        jobs = self._call("listing jobs", self._client.list_jobs)
        return sorted(jobs, key=lambda j: j.start_time or 0)

    def info(self, job_id: str) -> JobDetails:
        return self._call(f"job {job_id}", self._client.get_job_info, job_id)

    def logs(self, job_id: str) -> str:
        return self._call(f"logs of job {job_id}", self._client.get_job_logs, job_id)

    def stop(self, job_id: str) -> bool:
        """Ask the job to stop; False when it had already finished."""
        return self._call(f"stopping job {job_id}", self._client.stop_job, job_id)

    def follow(self, job_id: str, write: Callable[[str], None]) -> JobDetails:
        """Pass the job's log to ``write`` as it grows until the job ends; returns its final details."""
        self.info(job_id)  # an unknown id fails here with a clear message, not inside the stream

        async def tail() -> None:
            async for chunk in self._client.tail_job_logs(job_id):
                write(chunk)

        self._call(f"following logs of job {job_id}", asyncio.run, tail())
        return self.wait(job_id)

    def wait(self, job_id: str, timeout_s: float | None = None, poll_s: float = 1.0) -> JobDetails:
        """Poll until the job is in a terminal state; :class:`TimeoutError` after ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            details = self.info(job_id)
            if details.status.is_terminal():
                return details
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {details.status.value} after {timeout_s:g} s")
            time.sleep(poll_s)


def _reason(exc: BaseException) -> str:
    """The first line of an error, without its final full stop."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].rstrip(".")
