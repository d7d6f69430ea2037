"""`uniaudio submit`, `uniaudio jobs` and `shards build --ray-address` against a real Ray head (see conftest.py).

Every command runs as a subprocess given the head's address; the suite's embedded Ray is never the target.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from uniaudio.pipelines.token_store import read_index, validate_store
from uniaudio.testing.corpora import build_corpus

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIA-ON-THE-LAPTOP", "AWS_SECRET_ACCESS_KEY": "laptop-secret-0123456789"}


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory) -> Path:
    return build_corpus("librispeech", tmp_path_factory.mktemp("corpora"))


def _details(head, job: str) -> dict:
    result = head.uniaudio("jobs", "status", job, "--json", "--address", head.api_url)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_head_is_apart_from_the_embedded_ray(ray_head):
    import ray

    assert (ray_head.temp_dir / "ray_current_cluster").read_text().strip() == ray_head.gcs_address
    default_file = Path("/tmp/ray/ray_current_cluster")
    assert not default_file.exists() or default_file.read_text().strip() != ray_head.gcs_address
    if ray.is_initialized():  # the suite's embedded Ray (absent when run with --confcutdir=tests/cluster)
        assert ray.get_runtime_context().gcs_address != ray_head.gcs_address


def test_submit_runs_shards_build_as_a_job_without_local_credentials(ray_head, librispeech, tmp_path):
    out = tmp_path / "tokens"
    submitted = ray_head.uniaudio("submit", "--address", ray_head.api_url, "--", "shards", "build", "librispeech",
                                  str(librispeech), str(out), "--codec", "tiny", env=LOCAL_CREDENTIALS)
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip()
    assert job and "\n" not in job and f"jobs logs {job} --follow" in submitted.stderr

    waited = ray_head.uniaudio("jobs", "status", job, "--wait", "--address", ray_head.api_url)
    logs = ray_head.uniaudio("jobs", "logs", job, "--address", ray_head.api_url)
    assert waited.returncode == 0, waited.stdout + waited.stderr + logs.stdout
    assert f"{job}: SUCCEEDED" in waited.stdout

    assert validate_store(str(out)) == []
    samples = read_index(str(out)).totals["samples"]
    assert samples > 0
    assert logs.returncode == 0, logs.stderr
    assert f"shards build librispeech: {librispeech} → {out}" in logs.stdout
    assert f"{samples:,} samples" in logs.stdout

    details = _details(ray_head, job)
    assert details["status"] == "SUCCEEDED" and details["driver_exit_code"] == 0
    assert details["entrypoint"].startswith("uniaudio shards build librispeech ")
    assert details["runtime_env"] == {"env_vars": ["RAY_OVERRIDE_JOB_RUNTIME_ENV"]}

    listed = ray_head.uniaudio("jobs", "list", "--json", "--address", ray_head.api_url)
    assert job in [j["job_id"] for j in json.loads(listed.stdout)]


def test_env_sends_only_the_named_variables_and_follow_streams_the_log(ray_head):
    result = ray_head.uniaudio("submit", "--address", ray_head.api_url, "--env", "AWS_ACCESS_KEY_ID",
                               "-e", "UNIAUDIO_MARK=1", "--follow", "--", "sources", "list", env=LOCAL_CREDENTIALS)
    assert result.returncode == 0, result.stdout + result.stderr
    job, log = result.stdout.split("\n", 1)
    assert "librispeech" in log and "emilia" in log  # the job's own output, streamed
    assert f"{job}: SUCCEEDED" in result.stderr
    assert _details(ray_head, job)["runtime_env"]["env_vars"] == [
        "AWS_ACCESS_KEY_ID", "RAY_OVERRIDE_JOB_RUNTIME_ENV", "UNIAUDIO_MARK"]


def test_stop_a_running_job(ray_head, librispeech, tmp_path):
    from ray.job_submission import JobSubmissionClient

    submitted = ray_head.uniaudio("submit", "--address", ray_head.api_url, "--", "shards", "build", "librispeech",
                                  str(librispeech), str(tmp_path / "tokens"), "--codec", "tiny")
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip()
    client = JobSubmissionClient(ray_head.api_url)
    while (state := client.get_job_status(job).value) == "PENDING":
        time.sleep(0.2)
    assert state == "RUNNING"  # connecting to the cluster and starting codec actors takes seconds
    stopped = ray_head.uniaudio("jobs", "stop", job, "--wait", "--address", ray_head.api_url)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stop requested for {job}" in stopped.stderr and f"{job}: STOPPED" in stopped.stdout


def test_an_unknown_job_is_one_clear_error(ray_head):
    result = ray_head.uniaudio("jobs", "logs", "no-such-job", "--address", ray_head.api_url)
    assert result.returncode == 1
    assert "error:" in result.stderr and "no-such-job" in result.stderr and "Traceback" not in result.stderr


def test_shards_build_with_ray_address_runs_on_the_head(ray_head, librispeech, tmp_path):
    from ray.job_submission import JobSubmissionClient

    out = tmp_path / "tokens"
    result = ray_head.uniaudio("shards", "build", "librispeech", str(librispeech), str(out), "--codec", "tiny",
                               "--ray-address", ray_head.gcs_address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert validate_store(str(out)) == []
    assert read_index(str(out)).totals["samples"] > 0
    # the command's driver was a job of the head's cluster, not an embedded Ray of its own
    drivers = [j for j in JobSubmissionClient(ray_head.api_url).list_jobs()
               if j.type.value == "DRIVER" and str(out) in (j.entrypoint or "")]
    assert len(drivers) == 1 and drivers[0].status.value == "SUCCEEDED"
