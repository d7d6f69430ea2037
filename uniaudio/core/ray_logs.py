"""Keep Ray's own output off the console of a normal run: it goes to ``OUTPUT/_logs/ray.log``.

Ray prints lines a user cannot act on (C++ ``core_worker.cc`` messages written straight to file
descriptor 2, Python warnings from ``ray.data``/``ray.train``, worker output forwarded to the driver).
:func:`route_ray_output` sends all of them to one log file and leaves the console to uniaudio's own
progress and summaries:

* file descriptor 2 is pointed at the log file (so C++ lines and the Ray processes started from here
  write there), while Python's ``sys.stderr`` keeps a duplicate of the original terminal, so uniaudio's
  messages, tracebacks and progress still reach the user;
* the ``ray`` Python loggers write to the same file instead of the console.

``uniaudio --verbose`` skips all this and shows Ray's lines as they come. Outputs on ``s3://`` keep
their Ray log in the local temp directory (a log is appended line by line, which S3 cannot do).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
from pathlib import Path

from uniaudio.core import storage

__all__ = ["capture_ray_loggers", "ray_log_path", "route_ray_output", "set_verbose", "verbose"]

_RAY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune", "ray.air", "ray.serve")
_state: dict[str, object] = {"verbose": False, "path": None}


def set_verbose(value: bool) -> None:
    """``uniaudio --verbose``: show Ray's own lines on the console instead of logging them."""
    _state["verbose"] = bool(value)


def verbose() -> bool:
    return bool(_state["verbose"])


def ray_log_path() -> Path | None:
    """Where Ray's lines of this process go, once :func:`route_ray_output` has run (else ``None``)."""
    path = _state["path"]
    return path if isinstance(path, Path) else None


def _local_log_dir(output_uri: str) -> Path:
    if storage.is_remote(output_uri):
        digest = hashlib.sha256(output_uri.encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / "uniaudio-logs" / digest
    return Path(storage.strip_scheme(output_uri)) / "_logs"


def route_ray_output(output_uri: str) -> Path | None:
    """Send Ray's console output of this process to the run's log file; returns its path.

    A no-op (returning ``None``) with ``--verbose``; idempotent within a process.
    """
    if verbose():
        return None
    if ray_log_path() is not None:
        return ray_log_path()
    log_dir = _local_log_dir(output_uri)
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "ray.log"
    log_file = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    terminal = os.dup(2)
    sys.stderr.flush()
    os.dup2(log_file.fileno(), 2)
    sys.stderr = os.fdopen(terminal, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")

    handler = logging.StreamHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _state["path"], _state["handler"] = path, handler
    capture_ray_loggers()
    return path


def capture_ray_loggers() -> None:
    """Point Ray's Python loggers at the log file (again: ``ray.init`` and ``import ray.data`` install
    console handlers of their own). A no-op unless :func:`route_ray_output` has run."""
    handler = _state.get("handler")
    if not isinstance(handler, logging.Handler):
        return
    for name in _RAY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
