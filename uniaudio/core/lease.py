"""One writer per output store: a lease object with run id, host, pid and heartbeat (local and S3).

``OUTPUT/_lease.json`` holds ``{"run_id", "host", "pid", "started", "heartbeat"}`` (times in Unix
seconds). :class:`WriterLease` creates it exclusively (``O_EXCL``-style link locally, a conditional
``If-None-Match: *`` PUT on S3), so of two writers starting together exactly one gets it; the other
is refused with :class:`LeaseHeldError`, whose message names the holder. While held, a background
thread rewrites the heartbeat every ``heartbeat_s``.

A lease whose heartbeat is older than ``stale_after_s`` (its writer died) is taken over by the next
writer, as is any lease when ``break_lock`` is set (``--break-lock``: the user says the holder is
gone). The heartbeat thread re-reads the lease before each beat; if another run has taken it over,
this run is stopped (an exception is raised asynchronously in the thread that took the lease, at its
next Python instruction, whatever signal handlers are installed, and :func:`writer_lease` turns it into
:class:`LeaseLostError`), so two writers never keep writing one store. Staleness compares the
holder's clock with the reader's: hosts need roughly synchronised clocks (well within
``stale_after_s``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from uniaudio.core import storage
from uniaudio.core.orphans import clean_orphans

__all__ = [
    "LEASE_NAME", "LeaseConfig", "LeaseHeldError", "LeaseLostError", "WriterLease", "holding_lease", "writer_lease",
]

log = logging.getLogger(__name__)

LEASE_NAME = "_lease.json"
F = TypeVar("F", bound=Callable[..., Any])


class LeaseHeldError(RuntimeError):
    """Another live writer holds the store's lease; the message names it and how to take over."""


class LeaseLostError(RuntimeError):
    """This run's lease was taken over by another writer while it ran; the run stopped."""


class _LeaseTakenOver(BaseException):
    """Raised asynchronously in the lease owner's thread by the heartbeat (not an ``Exception``, so
    ``except Exception`` blocks on the way do not swallow it); :func:`writer_lease` converts it."""


def _raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))


@dataclass(frozen=True)
class LeaseConfig:
    """Writer-lease settings: heartbeat period, staleness timeout, explicit break."""

    heartbeat_s: float = 30.0
    #: A lease with no heartbeat for this long belongs to a dead writer and is taken over.
    stale_after_s: float = 600.0
    #: Take the lease over even from a live-looking holder (``--break-lock``).
    break_lock: bool = False

    def __post_init__(self) -> None:
        if self.heartbeat_s <= 0:
            raise ValueError(f"heartbeat_s must be positive, got {self.heartbeat_s}")
        if self.stale_after_s <= self.heartbeat_s:
            raise ValueError(f"stale_after_s ({self.stale_after_s}) must exceed heartbeat_s ({self.heartbeat_s})")


def _describe(holder: dict[str, Any], now: float) -> str:
    age = now - float(holder.get("heartbeat", 0))
    return (f"run {holder.get('run_id')} on host {holder.get('host')} (pid {holder.get('pid')}), "
            f"last heartbeat {age:.0f} s ago")


class WriterLease:
    """The lease on ``store_uri``; use as a context manager (acquire on enter, release on exit)."""

    def __init__(self, store_uri: str, config: LeaseConfig | None = None, run_id: str | None = None) -> None:
        self.store_uri = store_uri
        self.uri = storage.join(store_uri, LEASE_NAME)
        self.config = config or LeaseConfig()
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.host = socket.gethostname()
        self.started = time.time()
        self.lost_to: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owner: int | None = None  # the thread that holds the lease: set by _start

    def _record(self) -> bytes:
        return json.dumps({"run_id": self.run_id, "host": self.host, "pid": os.getpid(),
                           "started": self.started, "heartbeat": time.time()}).encode()

    def read(self) -> dict[str, Any] | None:
        """The current lease record, or None if there is none (an unreadable one counts as stale)."""
        try:
            return json.loads(storage.read_bytes(self.uri))
        except FileNotFoundError:
            return None
        except ValueError:
            return {"run_id": "?", "host": "?", "pid": "?", "heartbeat": 0}

    def acquire(self) -> WriterLease:
        """Take the lease or raise :class:`LeaseHeldError`; starts the heartbeat."""
        holder = self.read()
        now = time.time()
        if holder is not None and holder.get("run_id") != self.run_id:
            stale = now - float(holder.get("heartbeat", 0)) > self.config.stale_after_s
            if not (stale or self.config.break_lock):
                raise LeaseHeldError(
                    f"{self.store_uri} is being written by {_describe(holder, now)}. Two writers on one store "
                    f"lose data: wait for it to finish, or if it is dead, re-run with --break-lock (a lease "
                    f"without heartbeat for {self.config.stale_after_s:.0f} s is taken over automatically)."
                )
            why = "--break-lock" if self.config.break_lock and not stale else "stale"
            log.warning("taking over the lease of %s (%s): %s", self.store_uri, why, _describe(holder, now))
            storage.remove(self.uri)
        if not storage.create_exclusive(self.uri, self._record()):
            holder = self.read() or {}
            if holder.get("run_id") == self.run_id:  # our PUT landed but its answer was lost, then retried
                return self._start()
            raise LeaseHeldError(f"{self.store_uri}: another writer took the lease first: {_describe(holder, now)}")
        return self._start()

    def _start(self) -> WriterLease:
        self._owner = threading.get_ident()  # the thread a takeover stops
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.config.heartbeat_s):
            try:
                holder = self.read()
                if self._stop.is_set():
                    return
                if holder is not None and holder.get("run_id") != self.run_id:
                    self.lost_to = holder
                    log.error("lease of %s taken over by %s; stopping", self.store_uri, _describe(holder, time.time()))
                    _raise_in_thread(self._owner, _LeaseTakenOver)
                    return
                storage.atomic_write_bytes(self.uri, self._record())
            except OSError as exc:  # a missed beat is not fatal: the next one may get through
                log.warning("lease heartbeat for %s failed: %s", self.store_uri, exc)

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        holder = self.read()
        if holder is not None and holder.get("run_id") == self.run_id:
            storage.remove(self.uri)

    def __enter__(self) -> WriterLease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def writer_lease(output_uri: str, config: LeaseConfig | None = None) -> Iterator[WriterLease]:
    """Hold the lease on ``output_uri`` for the ``with`` body: the one way a command writes a store.

    Once the lease is held, what interrupted earlier writers left is cleaned up
    (:func:`uniaudio.core.orphans.clean_orphans`). The lease is released when the body ends, also by an
    exception. A body whose lease is taken over by another writer is stopped with :class:`LeaseLostError`.
    """
    lease = WriterLease(output_uri, config)
    try:
        with lease:  # the takeover may land in the body or while the lease is being released
            clean_orphans(output_uri, lease.started)
            yield lease
    except _LeaseTakenOver as stopped:
        raise LeaseLostError(f"{output_uri}: the lease was taken over by "
                             f"{_describe(lease.lost_to or {}, time.time())}; this run stopped") from stopped


def holding_lease(fn: F) -> F:
    """Decorate ``run(config, ...)``: run it inside :func:`writer_lease` on ``config.output_uri``.

    ``config.lease`` is the :class:`LeaseConfig`; a config without an output runs without a lease.
    """

    @functools.wraps(fn)
    def run(config: Any, *args: Any, **kwargs: Any) -> Any:
        if config.output_uri is None:  # nothing to write to: the run itself reports it
            return fn(config, *args, **kwargs)
        with writer_lease(config.output_uri, config.lease):
            return fn(config, *args, **kwargs)

    return run  # type: ignore[return-value]
