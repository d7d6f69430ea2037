"""Embedded Ray stays on loopback, has no dashboard, and hands the worker environment to tasks."""

from __future__ import annotations

import os

import ray

from uniaudio.core.ray_runtime import RayConfig, ensure_ray, worker_env


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
