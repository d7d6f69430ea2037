"""Transient I/O errors: telling them from content problems, and retrying them with bounded backoff.

A *transient* error is one a later attempt may not meet: an S3 ``503 SlowDown`` / ``ServiceUnavailable``
/ ``InternalError`` / ``RequestTimeout`` / ``ExpiredToken``, a connection refused, reset or closed before
or in the middle of a response, a read or connect timeout. :func:`is_transient` recognises them through
the whole exception chain (s3fs, botocore, aiohttp, pyarrow and plain ``OSError`` spellings).
Everything else (a missing file, a corrupt header, bad JSON) is a content problem and is never retried.

:func:`retry_io` calls a function until it succeeds, raises a non-transient error, or has failed
``attempts`` times; then it raises :class:`TransientIOError` naming what was being done. Delays grow
exponentially from ``base_delay_s`` up to ``max_delay_s`` with full jitter, so the total wait is bounded
(about 60 s with the defaults). The policy comes from :meth:`RetryPolicy.from_env`
(``UNIAUDIO_IO_RETRY_ATTEMPTS``, ``UNIAUDIO_IO_RETRY_BASE_S``, ``UNIAUDIO_IO_RETRY_MAX_S``); Ray workers
receive these variables with the rest of the worker environment.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["RetryPolicy", "TransientIOError", "is_transient", "retry_io"]

log = logging.getLogger(__name__)

T = TypeVar("T")

ENV_VARS = ("UNIAUDIO_IO_RETRY_ATTEMPTS", "UNIAUDIO_IO_RETRY_BASE_S", "UNIAUDIO_IO_RETRY_MAX_S")

_TRANSIENT_ERRNOS = {
    errno.EBUSY,  # s3fs: SlowDown, ServiceUnavailable, 503
    getattr(errno, "EREMOTEIO", errno.EIO),  # s3fs: InternalError, 500
    errno.ETIMEDOUT,
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.EAGAIN,
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
}
# Class names (anywhere in an exception's MRO) of transient errors from botocore, aiohttp, urllib3, fsspec.
_TRANSIENT_TYPES = {
    "TimeoutError",
    "ConnectionError",
    "FSTimeoutError",
    "HTTPClientError",
    "EndpointConnectionError",
    "ConnectionClosedError",
    "ReadTimeoutError",
    "ConnectTimeoutError",
    "ResponseStreamingError",
    "IncompleteReadError",
    "IncompleteRead",
    "ProtocolError",
    "ClientPayloadError",
    "ClientConnectionError",
    "ServerDisconnectedError",
    "ContentLengthError",
}
# Error codes/messages of S3 services and of pyarrow's S3 filesystem ("AWS Error SLOW_DOWN ...").
_TRANSIENT_TEXT = (
    "SlowDown",
    "SLOW_DOWN",
    "ServiceUnavailable",
    "Service Unavailable",
    "SERVICE_UNAVAILABLE",
    "InternalError",
    "INTERNAL_FAILURE",
    "RequestTimeout",
    "REQUEST_TIMEOUT",
    "ExpiredToken",
    "NETWORK_CONNECTION",
    "Connection reset",
    "Connection was closed",
    "reduce your request rate",
    "HTTP status 500",
    "HTTP status 502",
    "HTTP status 503",
    "HTTP status 504",
)


class TransientIOError(OSError):
    """A transient I/O error that persisted through every retry; ``what`` says what was being done."""

    def __init__(self, what: str, cause: BaseException, attempts: int) -> None:
        super().__init__(errno.EIO, f"{what}: still failing after {attempts} attempts: {type(cause).__name__}: {cause}")
        self.what = what
        self.attempts = attempts


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 16:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_transient(exc: BaseException) -> bool:
    """True if ``exc`` (or an exception it was raised from) is a transient I/O error worth retrying."""
    for err in _chain(exc):
        if isinstance(err, TransientIOError):
            return True
        if isinstance(err, FileNotFoundError | IsADirectoryError | NotADirectoryError):
            return False
        names = {cls.__name__ for cls in type(err).__mro__}
        if names & _TRANSIENT_TYPES:
            return True
        if isinstance(err, OSError) and err.errno in _TRANSIENT_ERRNOS:
            return True
        textual = isinstance(err, OSError | RuntimeError) or "ClientError" in names
        if textual and any(marker in str(err) for marker in _TRANSIENT_TEXT):
            return True
    return False


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    return default if value in (None, "") else float(value)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: ``attempts`` tries, delays ``base_delay_s * 2**n`` capped at ``max_delay_s``."""

    attempts: int = 8
    base_delay_s: float = 0.25
    max_delay_s: float = 15.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError(f"need 0 <= base_delay_s <= max_delay_s, got {self.base_delay_s}, {self.max_delay_s}")

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """The defaults, overridden by ``UNIAUDIO_IO_RETRY_ATTEMPTS``/``_BASE_S``/``_MAX_S``."""
        base = cls()
        return cls(
            attempts=int(_env_number("UNIAUDIO_IO_RETRY_ATTEMPTS", base.attempts)),
            base_delay_s=_env_number("UNIAUDIO_IO_RETRY_BASE_S", base.base_delay_s),
            max_delay_s=_env_number("UNIAUDIO_IO_RETRY_MAX_S", base.max_delay_s),
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based): full jitter."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


def retry_io(fn: Callable[[], T], what: str, policy: RetryPolicy | None = None) -> T:
    """``fn()``, retried on transient errors; :class:`TransientIOError` when they persist.

    Non-transient exceptions propagate unchanged at once. ``what`` names the operation (and the file)
    in the final error and in the log.
    """
    policy = policy or RetryPolicy.from_env()
    for attempt in range(policy.attempts):
        try:
            return fn()
        except TransientIOError:
            raise  # an inner retry loop already gave up: do not multiply the attempts
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt + 1 == policy.attempts:
                raise TransientIOError(what, exc, policy.attempts) from exc
            wait = policy.delay(attempt)
            log.info("%s: transient error (%s), retry %d/%d in %.2f s",
                     what, exc, attempt + 1, policy.attempts - 1, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")
