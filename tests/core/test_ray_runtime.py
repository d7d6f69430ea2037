"""Embedded Ray stays on loopback, has no dashboard, and hands the worker environment to tasks."""

from __future__ import annotations

import os

import ray

from uniaudio.core.ray_runtime import (
    FORWARD_CREDENTIALS_VARIABLE,
    RayConfig,
    ensure_ray,
    runtime_env_vars,
    worker_env,
)


def test_embedded_ray_is_loopback_and_forwards_env(ray_session):
    resources = ensure_ray(RayConfig())  # second call: reuses the session's Ray
    assert resources["CPU"] >= 1
    nodes = ray.nodes()
    assert {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}

    @ray.remote
    def env_of_worker() -> dict[str, str | None]:
        names = ("HF_HUB_OFFLINE", "AWS_ENDPOINT_URL", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
        return {k: os.environ.get(k) for k in names}

    seen = ray.get(env_of_worker.remote())
    assert seen["HF_HUB_OFFLINE"] == "1"
    assert seen["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert seen["AWS_ENDPOINT_URL"] == os.environ["AWS_ENDPOINT_URL"]  # the moto server of this session


def test_worker_env_includes_s3_settings_and_extras(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1234")
    env = worker_env({"EXTRA": "1"})
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1234"
    assert env["EXTRA"] == "1" and env["HF_DATASETS_OFFLINE"] == "1"


def test_address_comes_from_option_or_env(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    assert RayConfig().resolved_address() == "ray://head:10001"
    assert RayConfig(address="auto").resolved_address() == "auto"
    monkeypatch.delenv("RAY_ADDRESS")
    assert RayConfig().resolved_address() is None


def test_credentials_reach_embedded_ray_only_unless_asked(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1234")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv(FORWARD_CREDENTIALS_VARIABLE, raising=False)
    secrets = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

    embedded = runtime_env_vars(RayConfig())
    assert {k: embedded[k] for k in secrets} == {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
                                                 "AWS_SECRET_ACCESS_KEY": "secret",
                                                 "AWS_SESSION_TOKEN": "session-token"}

    cluster = runtime_env_vars(RayConfig(address="ray://head:10001"))
    assert not secrets & cluster.keys()  # visible in a shared cluster's dashboard: not sent
    assert cluster["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1234"  # where the data is still is

    asked = runtime_env_vars(RayConfig(address="ray://head:10001", forward_credentials=True))
    assert secrets <= asked.keys()
    monkeypatch.setenv(FORWARD_CREDENTIALS_VARIABLE, "1")
    assert secrets <= runtime_env_vars(RayConfig(address="auto")).keys()
    assert not secrets & runtime_env_vars(RayConfig(address="auto", forward_credentials=False)).keys()
