"""The Ray runtime: embedded local Ray on loopback, or a connection to an existing cluster.

Every command that runs Ray work calls :func:`ensure_ray` with its ``--ray-address`` option:

* no address and no ``RAY_ADDRESS`` variable → start an embedded Ray: bound to 127.0.0.1, no
  dashboard, usage stats off, one CPU slot per core of the machine;
* an address (``auto``, ``ray://host:10001``, ``host:6379``) or ``RAY_ADDRESS`` → connect to that
  cluster.

Either way the workers get :func:`worker_env` through ``runtime_env`` (offline hubs, the S3 endpoint
and region of this process, DeepSpeed's CPU accelerator where there is no GPU), because environment
variables of the driver do not reach workers on other nodes otherwise.

AWS credentials (access key, secret key, session token) are part of it only for the embedded local
Ray, whose workers are this user's processes on this machine. On a cluster, ``runtime_env`` is
visible to everyone who can see the dashboard or the State API, so the workers use the cluster's own
credentials (instance role, their environment) unless asked: ``RayConfig(forward_credentials=True)``
or ``UNIAUDIO_FORWARD_AWS_CREDENTIALS=1``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from uniaudio.core import ray_logs, retry, storage

log = logging.getLogger(__name__)

# Variables that keep embedded Ray and its workers on loopback and offline.
LOCAL_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "GLOO_SOCKET_IFNAME": "lo",
}
# Passed to every worker, local or on a cluster, unless the driver's environment sets them otherwise.
WORKER_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}
# Forwarded from the driver when set.
FORWARDED = (
    "HF_HOME",
    "HF_DATASETS_CACHE",
    "HF_HUB_CACHE",
    "UNIAUDIO_CACHE",
    "DS_ACCELERATOR",
    "TORCH_EXTENSIONS_DIR",
    "PYTHONPATH",
    *retry.ENV_VARS,
)


@dataclass
class RayConfig:
    """How to reach Ray. ``address=None`` and no ``RAY_ADDRESS`` means embedded local Ray."""

    address: str | None = None
    log_to: str | None = None
    """An output URI: Ray's own console lines go to its ``_logs/ray.log`` (see :mod:`uniaudio.core.ray_logs`)."""
    num_cpus: int | None = None
    num_gpus: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Put this process's AWS keys and session token into a *cluster*'s ``runtime_env`` (visible to
    #: its dashboard users). None: only if ``UNIAUDIO_FORWARD_AWS_CREDENTIALS`` is 1/true. The
    #: embedded local Ray always gets them.
    forward_credentials: bool | None = None

    def resolved_address(self) -> str | None:
        return self.address or os.environ.get("RAY_ADDRESS") or None

    def credentials_to_cluster(self) -> bool:
        """Whether a cluster's workers get this process's AWS credentials (see the module docstring)."""
        if self.forward_credentials is not None:
            return self.forward_credentials
        return os.environ.get(FORWARD_CREDENTIALS_VARIABLE, "").strip().lower() in ("1", "true", "yes")


#: Set to 1 to forward AWS credentials to a Ray cluster's workers (``RayConfig.forward_credentials``).
FORWARD_CREDENTIALS_VARIABLE = "UNIAUDIO_FORWARD_AWS_CREDENTIALS"


def worker_env(extra: dict[str, str] | None = None, credentials: bool = True) -> dict[str, str]:
    """Environment for Ray workers: defaults, forwarded driver variables, S3 settings, ``extra``.

    ``credentials``: include the AWS keys and session token (else only endpoint and region).
    """
    env = dict(WORKER_DEFAULTS)
    for name in (*WORKER_DEFAULTS, *FORWARDED):
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(storage.s3_options().as_env(credentials=credentials))
    env.update(extra or {})
    return env


def runtime_env_vars(config: RayConfig) -> dict[str, str]:
    """The ``env_vars`` of the ``runtime_env`` :func:`ensure_ray` passes for ``config``."""
    if config.resolved_address():
        return worker_env(config.extra_env, credentials=config.credentials_to_cluster())
    return {**LOCAL_ENV, **worker_env(config.extra_env)}


def ensure_ray(config: RayConfig | None = None) -> dict:
    """Start or connect to Ray once per process; returns the cluster's resources.

    Calling it again when Ray is already initialised is a no-op (tests share one session).
    """
    import ray

    config = config or RayConfig()
    if ray.is_initialized():
        return ray.cluster_resources()
    address = config.resolved_address()
    if config.log_to:
        ray_logs.route_ray_output(config.log_to)
    forward_logs = ray_logs.ray_log_path() is None
    if address:
        log.info("connecting to Ray cluster at %s", address)
        if not config.credentials_to_cluster():
            log.info("AWS credentials are not forwarded to the cluster's workers (set %s=1 to forward them)",
                     FORWARD_CREDENTIALS_VARIABLE)
        ray.init(
            address=address,
            runtime_env={"env_vars": runtime_env_vars(config)},
            log_to_driver=forward_logs,
        )
    else:
        os.environ.update(LOCAL_ENV)
        env = runtime_env_vars(config)
        num_cpus = config.num_cpus or os.cpu_count() or 1
        log.info("starting embedded Ray on 127.0.0.1 with %d CPUs", num_cpus)
        ray.init(
            num_cpus=num_cpus,
            num_gpus=config.num_gpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            runtime_env={"env_vars": env},
            configure_logging=True,
            logging_level=logging.WARNING,
            log_to_driver=forward_logs,
        )
    _quiet_ray_data()
    ray_logs.capture_ray_loggers()
    return ray.cluster_resources()


def _quiet_ray_data() -> None:
    """Keep Ray Data's own progress bars off: commands draw one summary progress display instead."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)

