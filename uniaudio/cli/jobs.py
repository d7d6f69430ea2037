"""`uniaudio submit` and `uniaudio jobs`: run uniaudio commands as Ray Jobs on a cluster and follow them.

The job id goes to stdout alone (``id=$(uniaudio submit -- ...)``); hints and errors go to stderr.
Unreachable clusters and unknown job ids end with exit status 1 and one line saying what failed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from uniaudio.core.ray_jobs import JobsClient, JobsError, JobSpec, parse_env_pairs

if TYPE_CHECKING:
    from ray.job_submission import JobDetails

app = typer.Typer(no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

Address = Annotated[
    str | None,
    typer.Option("--address", help="The cluster's Jobs API: http://HEAD:8265 (HEAD:8265 is the same) or "
                 "ray://HEAD:10001; default: $RAY_API_SERVER_ADDRESS, else the dashboard of the cluster at "
                 "$RAY_ADDRESS, else http://127.0.0.1:8265.", show_default=False),
]
JobId = Annotated[str, typer.Argument(help="Job id, as printed by `uniaudio submit` or `uniaudio jobs list`.")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait until the job has ended; exit status 1 unless it "
                                    "SUCCEEDED.")]
NOT_SUBMITTABLE = ("submit", "jobs")


@contextmanager
def _errors() -> Iterator[None]:
    """Jobs API failures and bad arguments end the command with one message, not a traceback."""
    try:
        yield
    except JobsError as exc:
        err.print(Text.assemble(("error: ", "red"), str(exc)))
        raise typer.Exit(1) from exc
    except ValueError as exc:
        err.print(Text.assemble(("error: ", "red"), str(exc)))
        raise typer.Exit(2) from exc


def _command_name(root: Any, args: list[str]) -> str | None:
    """The sub-command ``args`` start with, skipping the root's own options (``--s3-endpoint URL``, ``-v``)."""
    takes_value = {o for p in root.params if p.param_type_name == "option" and not p.is_flag for o in p.opts}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            return arg
        i += 2 if arg in takes_value else 1
    return None


def _check_command(ctx: typer.Context, command: list[str]) -> None:
    root = ctx.find_root().command
    commands = getattr(root, "commands", {})
    name = _command_name(root, command)
    if name is None:
        raise typer.BadParameter("no uniaudio command given; put it after `--`, e.g. `-- shards build ...`",
                                 param_hint="COMMAND")
    if name in NOT_SUBMITTABLE or name not in commands:
        known = ", ".join(c for c in commands if c not in NOT_SUBMITTABLE)
        raise typer.BadParameter(f"{name!r} is not a uniaudio command to run as a job; one of: {known}",
                                 param_hint="COMMAND")


def submit(
    ctx: typer.Context,
    command: Annotated[list[str], typer.Argument(help="The uniaudio command and its arguments, after `--`.",
                                                 show_default=False)],
    address: Address = None,
    working_dir: Annotated[str | None, typer.Option(help="Directory to upload and run the job in (its "
                                                    ".gitignore is honoured), or a package URI such as "
                                                    "s3://bucket/code.zip.", show_default=False)] = None,
    pip: Annotated[list[str] | None, typer.Option("--pip", help="Requirement to pip-install for the job "
                                                  "(repeatable).", show_default=False)] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE for the job and its workers, or "
                                                  "KEY to pass this shell's value (repeatable). Nothing else is "
                                                  "copied: credentials only travel when named here.",
                                                  show_default=False)] = None,
    job_id: Annotated[str | None, typer.Option("--job-id", help="Id for the job (unique on the cluster); "
                                               "default: one Ray makes up.", show_default=False)] = None,
    entrypoint_cpus: Annotated[float | None, typer.Option(help="CPUs to reserve for the driver (then it may "
                                                          "run on any node); default: none, on the head.",
                                                          min=0, show_default=False)] = None,
    entrypoint_gpus: Annotated[float | None, typer.Option(help="GPUs to reserve for the driver.", min=0,
                                                          show_default=False)] = None,
    entrypoint_memory_gb: Annotated[float | None, typer.Option(help="Memory to reserve for the driver (GiB).",
                                                               min=0, show_default=False)] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream the job's log until it ends; exit "
                                         "status 1 unless it SUCCEEDED.")] = False,
) -> None:
    """Run a uniaudio command as a Ray Job on a cluster; prints the job id.

    The driver runs `uniaudio COMMAND...` on the cluster (on the head node unless --entrypoint-* asks
    for resources) and its Ray work goes to the cluster's workers. The job environment holds only the
    --env variables: AWS credentials stay on this machine unless named with --env; on the cluster they
    come from instance roles or the nodes' own environment (see docs/cluster.md).

    Examples:

      uniaudio submit --address http://head:8265 -- shards build emilia s3://corpora/Emilia \
          s3://work/tokens/emilia --codec official --codec-dir /ckpt/uniaudio2_ckpt --gpus-per-worker 1

      uniaudio submit --working-dir . --env AWS_ENDPOINT_URL=http://minio:9000 -f -- ingest librispeech \
          s3://corpora/LibriSpeech s3://work/records/librispeech

      uniaudio jobs logs raysubmit_XXXX --follow
    """
    _check_command(ctx, command)
    with _errors():
        spec = JobSpec(command=command, working_dir=working_dir, pip=pip or [], env=parse_env_pairs(env or []),
                       submission_id=job_id, entrypoint_cpus=entrypoint_cpus, entrypoint_gpus=entrypoint_gpus,
                       entrypoint_memory_gb=entrypoint_memory_gb)
        client = JobsClient(address)
        submitted = client.submit(spec)
        print(submitted, flush=True)
        err.print(f"submitted to {client.address}: {spec.entrypoint()}", markup=False, highlight=False)
        if not follow:
            err.print(f"follow it with: uniaudio jobs logs {submitted} --follow", markup=False, highlight=False)
            return
        _finish(client.follow(submitted, _write))


def _write(chunk: str) -> None:
    sys.stdout.write(chunk)
    sys.stdout.flush()


def _finish(details: JobDetails) -> None:
    """Report a job's final state; exit status 1 unless it succeeded."""
    _print_status(details, err)
    if details.status.value != "SUCCEEDED":
        raise typer.Exit(1)


def _time(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).isoformat(sep=" ", timespec="seconds") if ms else "-"


def _duration(details: JobDetails) -> str:
    if not details.start_time:
        return "-"
    end = details.end_time or datetime.now().timestamp() * 1000
    return f"{(end - details.start_time) / 1000:.0f} s"


def _as_dict(details: JobDetails) -> dict[str, Any]:
    """The job's details for ``--json``; of its environment variables only the names are shown."""
    runtime_env = dict(details.runtime_env or {})
    if "env_vars" in runtime_env:
        runtime_env["env_vars"] = sorted(runtime_env["env_vars"])
    return {"job_id": details.submission_id or details.job_id, "status": details.status.value,
            "message": details.message, "entrypoint": details.entrypoint, "start_time": _time(details.start_time),
            "end_time": _time(details.end_time), "driver_exit_code": details.driver_exit_code,
            "runtime_env": runtime_env}


def _print_status(details: JobDetails, console: Console) -> None:
    line = Text.assemble((details.submission_id or details.job_id or "?", "bold"), ": ",
                         (details.status.value, _STYLE.get(details.status.value, "")))
    if details.message:
        line.append(f" — {details.message}")
    console.print(line)


_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "STOPPED": "yellow", "RUNNING": "cyan", "PENDING": "cyan"}


@app.command("list")
def list_jobs(
    address: Address = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the jobs as JSON.")] = False,
) -> None:
    """List the cluster's jobs, oldest first: id, status, start, duration and command."""
    with _errors():
        jobs = JobsClient(address).list()
    if as_json:
        print(json.dumps([_as_dict(j) for j in jobs], indent=1))
        return
    table = Table(title=f"{len(jobs)} job(s)")
    for column in ("job id", "status", "started", "duration", "entrypoint"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        table.add_row(job.submission_id or job.job_id or "?",
                      Text(job.status.value, _STYLE.get(job.status.value, "")),
                      _time(job.start_time), _duration(job), Text(job.entrypoint or ""))
    out.print(table)


@app.command()
def status(
    job: JobId,
    address: Address = None,
    wait: Wait = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job's details as JSON (environment "
                                          "variable names only).")] = False,
) -> None:
    """Show a job's status and message (RUNNING, SUCCEEDED, FAILED: why, ...)."""
    with _errors():
        client = JobsClient(address)
        details = client.wait(job) if wait else client.info(job)
    if as_json:
        print(json.dumps(_as_dict(details), indent=1))
    else:
        _print_status(details, out)
    if wait and details.status.value != "SUCCEEDED":
        raise typer.Exit(1)


@app.command()
def logs(
    job: JobId,
    address: Address = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming until the job ends; exit "
                                         "status 1 unless it SUCCEEDED.")] = False,
) -> None:
    """Print a job's driver log (what `uniaudio COMMAND` printed on the cluster)."""
    with _errors():
        client = JobsClient(address)
        if follow:
            details = client.follow(job, _write)
        else:
            _write(client.logs(job))
            return
    _finish(details)


@app.command()
def stop(
    job: JobId,
    address: Address = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the job has ended.")] = False,
) -> None:
    """Stop a running job (the driver gets SIGTERM, then SIGKILL after a grace period)."""
    with _errors():
        client = JobsClient(address)
        if client.stop(job):
            err.print(f"stop requested for {job}", markup=False, highlight=False)
        else:
            err.print(f"{job} had already ended", markup=False, highlight=False)
        details = client.wait(job) if wait else client.info(job)
    _print_status(details, out)

