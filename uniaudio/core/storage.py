"""URI storage: every input and output of uniaudio is a URI, a local path or ``s3://bucket/prefix``.

Python-side I/O goes through fsspec (s3fs for ``s3://``); Ray Data gets a pyarrow filesystem from
:func:`pyarrow_filesystem`. S3 endpoint, region and credentials come from :class:`S3Options`, which
defaults to the standard AWS environment variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``/``AWS_DEFAULT_REGION``); CLI options
override them through :func:`configure_s3`.

Writes are atomic: :func:`atomic_write_bytes` and :func:`atomic_upload` write a temporary file and
rename it (local) or upload one whole object (S3), so a reader never sees a partial file under its
final name.

Every whole-object operation here (read, stat, list, write, upload, remove) is retried on transient
errors (S3 ``503 SlowDown``, connection resets, timeouts) with the bounded backoff of
:mod:`uniaudio.core.retry`; one that persists raises :class:`~uniaudio.core.retry.TransientIOError`.
:func:`open_uri` retries the open only: a stream that breaks later is the reader's to retry.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import fsspec

from uniaudio.core.retry import retry_io

__all__ = [
    "S3Options",
    "atomic_upload",
    "atomic_write_bytes",
    "configure_s3",
    "create_exclusive",
    "exists",
    "filesystem",
    "glob",
    "is_remote",
    "join",
    "list_dir",
    "local_staging_file",
    "open_uri",
    "pyarrow_filesystem",
    "read_bytes",
    "remove",
    "size",
    "staging_prefix",
    "strip_scheme",
    "upload_tree",
]


@dataclass(frozen=True)
class S3Options:
    """Connection settings for ``s3://`` URIs; ``None`` fields fall back to the AWS environment."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None

    @classmethod
    def from_env(cls) -> S3Options:
        env = os.environ
        return cls(
            endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            access_key=env.get("AWS_ACCESS_KEY_ID"),
            secret_key=env.get("AWS_SECRET_ACCESS_KEY"),
            session_token=env.get("AWS_SESSION_TOKEN"),
        )

    def merged(self, **overrides: str | None) -> S3Options:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def as_env(self, credentials: bool = True) -> dict[str, str]:
        """The settings as AWS environment variables; without the keys and token unless ``credentials``."""
        pairs = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
        if credentials:
            pairs.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key,
                         AWS_SESSION_TOKEN=self.session_token)
        return {k: v for k, v in pairs.items() if v}


_s3_overrides: dict[str, str | None] = {}


def configure_s3(
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> S3Options:
    """Set process-wide overrides of the AWS environment (CLI ``--s3-endpoint`` etc.).

    The overrides are also exported to ``os.environ`` so Ray workers started afterwards, and any
    library reading the standard variables, see the same settings.
    """
    global _s3_overrides
    _s3_overrides = {
        "endpoint_url": endpoint_url,
        "region": region,
        "access_key": access_key,
        "secret_key": secret_key,
    }
    options = s3_options()
    os.environ.update(options.as_env())
    return options


def s3_options() -> S3Options:
    return S3Options.from_env().merged(**_s3_overrides)


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def strip_scheme(uri: str) -> str:
    """``s3://b/k`` → ``b/k``; ``file:///x`` → ``/x``; local paths unchanged."""
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if "://" in uri:
        return uri.split("://", 1)[1]
    return uri


def join(uri: str, *parts: str) -> str:
    """Join path parts onto a URI with ``/`` (local paths use the OS rules)."""
    if not is_remote(uri):
        return str(Path(strip_scheme(uri), *parts))
    out = uri.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def filesystem(uri: str) -> fsspec.AbstractFileSystem:
    """The fsspec filesystem serving ``uri`` (s3fs configured from :func:`s3_options` for S3)."""
    scheme = urlparse(uri).scheme if is_remote(uri) else "file"
    if scheme in ("s3", "s3a"):
        opts = s3_options()
        client_kwargs: dict[str, Any] = {}
        if opts.endpoint_url:
            client_kwargs["endpoint_url"] = opts.endpoint_url
        if opts.region:
            client_kwargs["region_name"] = opts.region
        return fsspec.filesystem(
            "s3",
            key=opts.access_key,
            secret=opts.secret_key,
            token=opts.session_token,
            client_kwargs=client_kwargs,
            skip_instance_cache=False,
        )
    if scheme == "file":
        return fsspec.filesystem("file", auto_mkdir=True)
    return fsspec.filesystem(scheme)


def pyarrow_filesystem(uri: str):
    """``(pyarrow filesystem, path)`` for Ray Data readers and writers."""
    import pyarrow.fs as pafs

    if not is_remote(uri):
        return pafs.LocalFileSystem(), str(Path(strip_scheme(uri)).resolve())
    opts = s3_options()
    kwargs: dict[str, Any] = {"region": opts.region or "us-east-1"}
    if opts.access_key:
        kwargs.update(access_key=opts.access_key, secret_key=opts.secret_key)
        if opts.session_token:
            kwargs["session_token"] = opts.session_token
    if opts.endpoint_url:
        parsed = urlparse(opts.endpoint_url)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    return pafs.S3FileSystem(**kwargs), strip_scheme(uri)


def open_uri(uri: str, mode: str = "rb", **kwargs: Any) -> IO:
    """Open a URI for streaming I/O. Prefer :func:`atomic_write_bytes` / :func:`atomic_upload` for outputs."""
    return retry_io(lambda: filesystem(uri).open(strip_scheme(uri), mode, **kwargs), f"opening {uri}")


def read_bytes(uri: str) -> bytes:
    def read() -> bytes:
        with filesystem(uri).open(strip_scheme(uri), "rb") as f:
            return f.read()

    return retry_io(read, f"reading {uri}")


def exists(uri: str) -> bool:
    return retry_io(lambda: filesystem(uri).exists(strip_scheme(uri)), f"checking {uri}")


def size(uri: str) -> int:
    return int(retry_io(lambda: filesystem(uri).size(strip_scheme(uri)), f"stat of {uri}"))


def remove(uri: str) -> None:
    fs = filesystem(uri)
    path = strip_scheme(uri)

    def rm() -> None:
        if fs.exists(path):
            fs.rm(path, recursive=True)

    retry_io(rm, f"removing {uri}")


def _with_scheme(uri: str, path: str) -> str:
    if not is_remote(uri):
        return path
    scheme = uri.split("://", 1)[0]
    return f"{scheme}://{path}"


def list_dir(uri: str) -> list[str]:
    """Immediate children of a directory/prefix as full URIs, sorted; empty if it does not exist."""
    fs = filesystem(uri)
    path = strip_scheme(uri).rstrip("/")

    def ls() -> list[str]:
        if not fs.exists(path):
            return []
        with contextlib.suppress(AttributeError):
            fs.invalidate_cache(path)
        return fs.ls(path, detail=False)

    return sorted(_with_scheme(uri, p) for p in retry_io(ls, f"listing {uri}") if p.rstrip("/") != path)


def glob(uri: str, pattern: str) -> list[str]:
    """Files under ``uri`` matching a glob ``pattern`` (``**`` recurses), as full URIs, sorted."""
    fs = filesystem(uri)
    base = strip_scheme(uri).rstrip("/")

    def match() -> list[str]:
        with contextlib.suppress(AttributeError):
            fs.invalidate_cache(base)
        return fs.glob(f"{base}/{pattern}")

    return sorted(_with_scheme(uri, p) for p in retry_io(match, f"listing {uri}/{pattern}"))


def atomic_write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri`` so readers see the old object, or the new one, never a partial one."""
    if is_remote(uri):
        # one PUT: the object appears whole; a retried PUT rewrites the same bytes
        retry_io(lambda: filesystem(uri).pipe_file(strip_scheme(uri), data), f"writing {uri}")
        return
    path = Path(strip_scheme(uri))
    with _synced_temp_beside(path, data) as tmp:
        os.replace(tmp, path)


def create_exclusive(uri: str, data: bytes) -> bool:
    """Create ``uri`` holding ``data`` only if it does not exist; True if this call created it.

    Atomic against concurrent creators: a hard link of a complete temp file locally, a conditional
    ``If-None-Match: *`` PUT on S3 (supported by AWS S3, MinIO and moto).
    """
    if is_remote(uri):
        def put() -> bool:
            try:
                filesystem(uri).pipe_file(strip_scheme(uri), data, mode="create")
            except FileExistsError:
                return False
            return True

        return retry_io(put, f"creating {uri}")
    path = Path(strip_scheme(uri))
    try:
        with _synced_temp_beside(path, data) as tmp:
            os.link(tmp, path)
    except FileExistsError:
        return False
    return True


@contextlib.contextmanager
def _synced_temp_beside(path: Path, data: bytes) -> Iterator[Path]:
    """A hidden temp file beside ``path`` holding ``data``, flushed to disk; removed on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def atomic_upload(local_path: str | Path, uri: str) -> None:
    """Move a finished local file to ``uri`` atomically (rename locally, single upload to S3)."""
    local_path = Path(local_path)
    if is_remote(uri):
        retry_io(lambda: filesystem(uri).put_file(str(local_path), strip_scheme(uri)), f"uploading {uri}")
        local_path.unlink(missing_ok=True)
        return
    dest = Path(strip_scheme(uri))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(local_path, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(local_path, dest)


def upload_tree(local_dir: str | Path, uri: str) -> str:
    """Copy every file under a local directory to ``uri``/<relative path> (e.g. stage a corpus on S3)."""
    local_dir = Path(local_dir)
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        dest = join(uri, *path.relative_to(local_dir).parts)
        if is_remote(uri):
            retry_io(lambda: filesystem(uri).put_file(str(path), strip_scheme(dest)), f"uploading {dest}")  # noqa: B023
        else:
            Path(dest).parent.mkdir(parents=True, exist_ok=True)
            Path(dest).write_bytes(path.read_bytes())
    return uri


def staging_prefix(pid: int | None = None) -> str:
    """Name prefix of this process's (or ``pid``'s) S3 staging files in the system temp directory."""
    return f"uniaudio-{os.getpid() if pid is None else pid}-"


@contextlib.contextmanager
def local_staging_file(uri: str, suffix: str = "") -> Iterator[Path]:
    """A temporary local path to build the file for ``uri`` in; it is removed if not moved away.

    For a local destination the file sits beside it (same filesystem, hidden name, so the final
    rename is atomic and no glob of the visible names picks it up); for S3 it is in the system
    temp directory, named ``uniaudio-<pid>-<random><suffix>`` (:func:`staging_prefix`, so the next run
    can tell a dead process's leftovers from a live one's: :mod:`uniaudio.core.orphans`), and is later
    uploaded whole by :func:`atomic_upload`.
    """
    if is_remote(uri):
        fd, name = tempfile.mkstemp(suffix=suffix, prefix=staging_prefix())
        os.close(fd)
        path = Path(name)
    else:
        dest = Path(strip_scheme(uri))
        dest.parent.mkdir(parents=True, exist_ok=True)
        path = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp{suffix}")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
