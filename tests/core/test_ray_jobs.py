"""`uniaudio.core.ray_jobs`: the job a command becomes, its runtime environment, address resolution, and
the CLI's argument checks and unreachable-cluster message (no cluster needed; see tests/cluster/)."""

from __future__ import annotations

import os
import socket

import pytest
from typer.testing import CliRunner

from uniaudio.cli.main import app
from uniaudio.core.ray_jobs import (
    DEFAULT_API_ADDRESS,
    ClusterUnreachable,
    JobsClient,
    JobSpec,
    parse_env_pairs,
    resolve_api_address,
)

runner = CliRunner()


def test_runtime_env_holds_only_what_was_given(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-LOCAL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local-secret")
    monkeypatch.setenv("HF_HOME", "/local/hf")
    bare = JobSpec(command=["shards", "build", "librispeech", "in dir", "s3://b/out"])
    assert bare.runtime_env() == {"env_vars": {"RAY_OVERRIDE_JOB_RUNTIME_ENV": "1"}}
    assert bare.entrypoint() == "uniaudio shards build librispeech 'in dir' s3://b/out"

    asked = JobSpec(command=["sources", "list"], working_dir=str(tmp_path), pip=["jiwer>=3"],
                    env=parse_env_pairs(["AWS_ACCESS_KEY_ID", "AWS_REGION=eu-west-1"]),
                    entrypoint_cpus=1, entrypoint_memory_gb=2)
    assert asked.runtime_env() == {
        "env_vars": {"AWS_ACCESS_KEY_ID": "AKIA-LOCAL", "AWS_REGION": "eu-west-1", "RAY_OVERRIDE_JOB_RUNTIME_ENV": "1"},
        "working_dir": str(tmp_path.resolve()), "pip": ["jiwer>=3"]}
    kwargs = asked.submit_kwargs()
    assert kwargs["entrypoint_num_cpus"] == 1 and kwargs["entrypoint_memory"] == 2 * 1024**3
    assert "entrypoint_num_gpus" not in kwargs


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"command": []}, "no command to submit"),
    ({"command": ["x"], "working_dir": "/no/such/dir"}, "not a directory"),
    ({"command": ["x"], "env": {"BAD NAME": "1"}}, "invalid variable names"),
    ({"command": ["x"], "pip": [" "]}, "empty requirement"),
    ({"command": ["x"], "entrypoint_gpus": -1}, "entrypoint_gpus must be >= 0"),
])
def test_bad_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        JobSpec(**kwargs)


def test_env_pairs():
    assert parse_env_pairs(["A=1", "B=x=y", "C="], environ={}) == {"A": "1", "B": "x=y", "C": ""}
    assert parse_env_pairs(["HOME"], environ={"HOME": "/h"}) == {"HOME": "/h"}
    with pytest.raises(ValueError, match="NOT_SET is not set here"):
        parse_env_pairs(["NOT_SET"], environ={})
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_env_pairs(["=1"], environ={})


def test_address_precedence(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    assert resolve_api_address() == (DEFAULT_API_ADDRESS, "the default")
    monkeypatch.setenv("RAY_ADDRESS", "head:6379")
    assert resolve_api_address() == ("head:6379", "$RAY_ADDRESS")  # a cluster address: Ray finds the dashboard
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "head:8265")
    assert resolve_api_address() == ("http://head:8265", "$RAY_API_SERVER_ADDRESS")
    assert resolve_api_address("https://other:443") == ("https://other:443", "--address")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_cluster_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://127.0.0.1:1")  # the explicit address must win
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ClusterUnreachable, match=f"cannot reach the Ray Jobs API at {url} \\(from --address\\)"):
        JobsClient(url)
    assert os.environ["RAY_API_SERVER_ADDRESS"] == "http://127.0.0.1:1"  # hidden only while connecting

    result = runner.invoke(app, ["jobs", "list", "--address", url])
    assert result.exit_code == 1
    assert "cannot reach the Ray Jobs API" in result.output and "Traceback" not in result.output


def test_submit_checks_the_command_before_connecting():
    typo = runner.invoke(app, ["submit", "--address", "http://127.0.0.1:1", "--", "shard", "build", "x"])
    assert typo.exit_code == 2 and "'shard' is not a uniaudio command" in typo.output
    nested = runner.invoke(app, ["submit", "--", "-v", "jobs", "list"])
    assert nested.exit_code == 2 and "'jobs' is not a uniaudio command" in nested.output
    missing = runner.invoke(app, ["submit", "--", "--s3-region", "eu-west-1"])
    assert missing.exit_code == 2 and "no uniaudio command given" in missing.output
    bad_env = runner.invoke(app, ["submit", "--env", "NO_SUCH_VARIABLE_HERE", "--", "sources", "list"])
    assert bad_env.exit_code == 2 and "NO_SUCH_VARIABLE_HERE is not set here" in bad_env.output
