"""Session-wide fixtures: one embedded Ray for the whole run, one moto S3 server on 127.0.0.1."""

from __future__ import annotations

import os
import socket

import pytest

# Loopback-only, offline, before anything imports ray.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.pop("RAY_ADDRESS", None)
# A loaded 2-core machine can take longer than Ray's default to start its raylet and agents.
os.environ.setdefault("RAY_raylet_start_wait_time_s", "300")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-protocol server (moto) on 127.0.0.1; yields its endpoint URL.

    Credentials and endpoint are exported as the standard AWS variables, so uniaudio's storage layer
    and Ray workers started afterwards pick them up without extra options.
    """
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                            "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION")}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
    )
    yield endpoint
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_server, request):
    """A fresh bucket on the moto server; yields ``s3://<bucket>``."""
    import boto3

    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50].strip("-")
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=name)
    yield f"s3://{name}"


@pytest.fixture(scope="session", autouse=True)
def ray_session(s3_server):
    """One embedded Ray for the whole test session, started first thing (after the S3 server).

    It is autouse so that Ray is always started here, with the S3 settings in its workers' environment,
    even when the first test to need Ray runs a CLI command that would otherwise start its own.
    """
    from uniaudio.core.ray_runtime import RayConfig, ensure_ray

    ensure_ray(RayConfig(num_cpus=2))
    yield
    # Ray is shut down at interpreter exit; shutting it down here would break later sessions' fixtures.
