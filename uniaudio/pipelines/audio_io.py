"""Reading and decoding the audio an :class:`~uniaudio.pipelines.records.AudioRecord` points at.

Contract:

* :func:`read_members` returns the encoded bytes of many members of one container in a single pass
  (an uncompressed tar is indexed once per worker process and then read by seek + range read; a
  compressed tar is streamed once; a zip is read through its central directory; a parquet/arrow
  cell through :func:`~uniaudio.pipelines.sources.hf_tables.read_audio_cell`).
  :func:`read_audio_bytes` is the one-member form and also reads plain files (local or ``s3://``).
* :func:`decode` decodes bytes, or a seekable binary file object, with soundfile only (wav, flac,
  mp3, ogg/vorbis, opus; opus always at 48 kHz). Only the requested segment is read: soundfile
  seeks to ``offset_s`` and reads ``duration_s`` worth of frames, so a short segment of an hour-long
  file is not decoded whole; a segment over ``max_duration_s`` is rejected (``too_long``) before
  decoding. :func:`decode_blocks` reads a segment block by block (long-form windows), holding one
  block at a time. Nothing is written to temporary files and nothing is unpickled.
* Every content failure is an :class:`AudioReadError` carrying the :class:`RejectReason`
  (``missing_file``, ``zero_byte``, ``undecodable``, ``malformed_metadata``) and a detail naming the
  file and member.
* Transient I/O errors (:func:`uniaudio.core.retry.is_transient`: S3 503s, connection resets,
  timeouts) are never turned into rejects: a container is read again, a remote byte range is fetched
  again (bounded backoff); one that persists raises :class:`~uniaudio.core.retry.TransientIOError`.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import IO

import numpy as np
import soundfile as sf

from uniaudio.core import storage
from uniaudio.core.retry import TransientIOError, is_transient, retry_io
from uniaudio.pipelines.records import RejectReason, parse_parquet_member
from uniaudio.pipelines.sources.hf_tables import TABLE_SUFFIXES, read_audio_cell

__all__ = [
    "AudioReadError",
    "Decoded",
    "RetryingReader",
    "container_kind",
    "decode",
    "decode_blocks",
    "describe",
    "open_audio",
    "read_audio_bytes",
    "read_members",
]

_COMPRESSED_TAR = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


class AudioReadError(Exception):
    """Audio that cannot be read or decoded; ``reason`` is the reject code, ``detail`` names the file."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Decoded:
    """Decoded audio: ``samples`` float32 of shape (frames, channels) at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate


def describe(audio_uri: str, member: str | None) -> str:
    """``uri`` or ``uri[member]``: how rejects name the audio they could not use."""
    return audio_uri if member is None else f"{audio_uri}[{member}]"


def container_kind(audio_uri: str) -> str:
    """``"tar"``, ``"tgz"`` (compressed tar), ``"zip"``, ``"table"`` (parquet/arrow) or ``"file"``."""
    lower = audio_uri.lower()
    if lower.endswith(_COMPRESSED_TAR):
        return "tgz"
    if lower.endswith(".tar"):
        return "tar"
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith(TABLE_SUFFIXES):
        return "table"
    return "file"


def _missing(audio_uri: str, member: str | None = None) -> AudioReadError:
    what = "member not found in" if member is not None else "no such file"
    return AudioReadError(RejectReason.MISSING_FILE, f"{what}: {describe(audio_uri, member)}")


@lru_cache(maxsize=64)
def _tar_index(audio_uri: str, size: int) -> dict[str, tuple[int, int]]:
    """member name → (data offset, size) of an uncompressed tar; cached per (uri, size) per process."""
    index: dict[str, tuple[int, int]] = {}
    with storage.open_uri(audio_uri) as f, tarfile.open(fileobj=f, mode="r:") as tar:
        for info in tar:
            if info.isfile():
                index[info.name] = (info.offset_data, info.size)
                if info.name.startswith("./"):
                    index.setdefault(info.name[2:], (info.offset_data, info.size))
    return index


def _container_size(audio_uri: str) -> int:
    try:
        return storage.size(audio_uri)
    except FileNotFoundError as exc:
        raise _missing(audio_uri) from exc


def _read_tar(audio_uri: str, wanted: set[str]) -> dict[str, bytes]:
    try:
        index = _tar_index(audio_uri, _container_size(audio_uri))
    except tarfile.TarError as exc:
        raise AudioReadError(RejectReason.UNDECODABLE, f"unreadable tar {audio_uri}: {exc}") from exc
    found: dict[str, bytes] = {}
    spans = sorted((index[m], m) for m in wanted if m in index)
    if spans:
        with storage.open_uri(audio_uri) as f:
            for (offset, length), member in spans:
                f.seek(offset)
                found[member] = f.read(length)
    return found


def _read_tgz(audio_uri: str, wanted: set[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    _container_size(audio_uri)
    try:
        with storage.open_uri(audio_uri) as f, tarfile.open(fileobj=f, mode="r|*") as tar:
            for info in tar:
                name = info.name[2:] if info.name.startswith("./") else info.name
                member = info.name if info.name in wanted else name
                if info.isfile() and member in wanted:
                    found[member] = tar.extractfile(info).read()
                    if len(found) == len(wanted):
                        break
    except (tarfile.TarError, EOFError, OSError) as exc:
        if is_transient(exc):
            raise
        raise AudioReadError(RejectReason.UNDECODABLE, f"unreadable tar {audio_uri}: {exc}") from exc
    return found


def _read_zip(audio_uri: str, wanted: set[str]) -> dict[str, bytes]:
    _container_size(audio_uri)
    found: dict[str, bytes] = {}
    try:
        with storage.open_uri(audio_uri) as f, zipfile.ZipFile(f) as zf:
            names = set(zf.namelist())
            for member in wanted & names:
                found[member] = zf.read(member)
    except (zipfile.BadZipFile, OSError) as exc:
        if is_transient(exc):
            raise
        raise AudioReadError(RejectReason.UNDECODABLE, f"unreadable zip {audio_uri}: {exc}") from exc
    return found


def _read_cells(audio_uri: str, wanted: set[str]) -> dict[str, bytes | AudioReadError]:
    _container_size(audio_uri)
    found: dict[str, bytes | AudioReadError] = {}
    for member in wanted:
        try:
            row, column = parse_parquet_member(member)
            found[member] = read_audio_cell(audio_uri, row, column)
        except (ValueError, IndexError, KeyError) as exc:
            found[member] = AudioReadError(RejectReason.MALFORMED_METADATA, f"{describe(audio_uri, member)}: {exc}")
    return found


_READERS = {"tar": _read_tar, "tgz": _read_tgz, "zip": _read_zip, "table": _read_cells}


def read_members(audio_uri: str, members: Iterable[str]) -> dict[str, bytes | AudioReadError]:
    """Encoded bytes of each member of one container, read in one pass; failures per member.

    A container that is missing or unreadable as a whole makes every member an error with the same
    reason. Zero-byte members are reported as ``zero_byte`` errors. Transient errors re-read the
    container; one that persists raises :class:`~uniaudio.core.retry.TransientIOError`.
    """
    wanted = set(members)
    kind = container_kind(audio_uri)
    if kind == "file":
        err = AudioReadError(RejectReason.MALFORMED_METADATA, f"{audio_uri} is not a container but has members")
        return dict.fromkeys(wanted, err)
    try:
        found: dict[str, bytes | AudioReadError] = dict(
            retry_io(lambda: _READERS[kind](audio_uri, wanted), f"reading {audio_uri}")
        )
    except AudioReadError as err:
        return dict.fromkeys(wanted, err)
    out: dict[str, bytes | AudioReadError] = {}
    for member in wanted:
        data = found.get(member)
        if data is None:
            out[member] = _missing(audio_uri, member)
        elif isinstance(data, bytes) and not data:
            out[member] = AudioReadError(RejectReason.ZERO_BYTE, f"zero-byte member: {describe(audio_uri, member)}")
        else:
            out[member] = data
    return out


def read_audio_bytes(audio_uri: str, member: str | None = None) -> bytes:
    """Encoded bytes of a plain file (local or ``s3://``) or of one container member."""
    if member is None:
        if container_kind(audio_uri) != "file":
            raise AudioReadError(RejectReason.MALFORMED_METADATA, f"{audio_uri} is a container; no member given")
        try:
            data = storage.read_bytes(audio_uri)
        except FileNotFoundError as exc:
            raise _missing(audio_uri) from exc
        if not data:
            raise AudioReadError(RejectReason.ZERO_BYTE, f"zero-byte file: {audio_uri}")
        return data
    result = read_members(audio_uri, [member])[member]
    if isinstance(result, AudioReadError):
        raise result
    return result


@contextlib.contextmanager
def open_audio(audio_uri: str, member: str | None = None) -> Iterator[str | IO[bytes]]:
    """What :func:`decode` reads: a local path, or a seekable binary file object.

    Local plain files are handed to libsndfile by path (no Python I/O callbacks); remote plain files
    are opened in place, so a segment read fetches only the byte ranges soundfile asks for; container
    members are read into memory first (use :func:`read_members` for batches of members).
    """
    if member is not None or container_kind(audio_uri) != "file":
        yield io.BytesIO(read_audio_bytes(audio_uri, member))
        return
    remote = storage.is_remote(audio_uri)
    try:
        size = storage.size(audio_uri) if remote else os.stat(storage.strip_scheme(audio_uri)).st_size
    except FileNotFoundError as exc:
        raise _missing(audio_uri) from exc
    if size == 0:
        raise AudioReadError(RejectReason.ZERO_BYTE, f"zero-byte file: {audio_uri}")
    if not remote:
        yield storage.strip_scheme(audio_uri)
        return
    with storage.open_uri(audio_uri) as f:
        yield RetryingReader(f, audio_uri)


class RetryingReader(io.RawIOBase):
    """A seekable remote file whose reads are retried on transient errors (fetching the range again).

    libsndfile reads through Python callbacks that cannot raise; a read that still fails after the
    retries is kept in :attr:`error` and :func:`decode` raises it instead of a decoding error.
    """

    def __init__(self, f: IO[bytes], name: str) -> None:
        super().__init__()
        self._f = f
        self._name = name
        self.error: TransientIOError | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def read(self, size: int = -1) -> bytes:
        start = self._f.tell()

        def attempt() -> bytes:
            self._f.seek(start)
            return self._f.read(size)

        try:
            return retry_io(attempt, f"reading {self._name} at byte {start}")
        except TransientIOError as exc:
            self.error = exc
            raise

    def readinto(self, buffer) -> int:  # type: ignore[override]
        """soundfile's read callback: a persisting error ends the stream here (kept in :attr:`error`)."""
        try:
            data = self.read(len(buffer))
        except TransientIOError:
            return 0
        buffer[: len(data)] = data
        return len(data)


_DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError)


def _as_source(data: bytes | str | IO[bytes], name: str) -> str | IO[bytes]:
    if isinstance(data, bytes | bytearray):
        if not data:
            raise AudioReadError(RejectReason.ZERO_BYTE, f"zero-byte audio: {name}")
        return io.BytesIO(data)
    return data


def _decode_error(data: object, exc: Exception, name: str) -> Exception:
    """What a soundfile failure becomes: the reader's swallowed I/O error, itself if transient, or a reject."""
    _raise_read_error(data)
    if is_transient(exc):
        return exc
    return AudioReadError(RejectReason.UNDECODABLE, f"cannot decode {name}: {exc}")


def _seek_segment(f: sf.SoundFile, offset_s: float, duration_s: float | None) -> tuple[int, int]:
    """Seek ``f`` to the segment's start; returns (frames to read, -1 = to the end; their count per header)."""
    sr = int(f.samplerate)
    start = max(0, int(round(offset_s * sr)))
    if start:
        f.seek(min(start, f.frames) if f.frames > 0 else start)
    wanted = -1 if duration_s is None else max(0, int(round(duration_s * sr)))
    left = max(0, f.frames - start)
    return wanted, left if wanted < 0 else min(wanted, left)


def decode(
    data: bytes | str | IO[bytes], offset_s: float = 0.0, duration_s: float | None = None, name: str = "<bytes>",
    max_duration_s: float | None = None,
) -> Decoded:
    """Decode ``[offset_s, offset_s + duration_s)`` (to the end if ``duration_s`` is None) with soundfile.

    ``data``: encoded bytes, a local path, or a seekable binary file object. Returns float32 (frames,
    channels). A segment past the end of the audio comes back empty (the audio stage rejects it as
    ``too_short``). A segment longer than ``max_duration_s`` (known from the header) is not decoded
    at all: it raises a ``too_long`` :class:`AudioReadError`. ``name`` only labels errors.
    """
    data = _as_source(data, name)
    try:
        with sf.SoundFile(data) as f:
            sr = int(f.samplerate)
            frames, expected = _seek_segment(f, offset_s, duration_s)
            if max_duration_s is not None and expected > max_duration_s * sr:
                raise AudioReadError(RejectReason.TOO_LONG, (
                    f"{name}: {expected / sr:.3f} s > max_duration_s {max_duration_s} (one sample); "
                    "cut long recordings into windows with --window"))
            samples = f.read(frames, dtype="float32", always_2d=True)
    except _DECODE_ERRORS as exc:
        raise _decode_error(data, exc, name) from exc
    _raise_read_error(data)
    return Decoded(samples=np.ascontiguousarray(samples), sample_rate=sr)


def decode_blocks(
    data: bytes | str | IO[bytes], block_s: float, offset_s: float = 0.0, duration_s: float | None = None,
    name: str = "<bytes>",
) -> Iterator[Decoded]:
    """Decode the segment of :func:`decode` as consecutive blocks of ``block_s`` seconds (the last shorter).

    Each block is read from the file when the consumer asks for the next one, so at most one block is
    decoded at a time, however long the file (an hour of 48 kHz stereo is ~1.4 GB as float32). An
    empty segment yields one empty block. Errors are those of :func:`decode`, raised at the block where
    they happen.
    """
    data = _as_source(data, name)
    try:
        with sf.SoundFile(data) as f:
            sr, channels = int(f.samplerate), int(f.channels)
            left = _seek_segment(f, offset_s, duration_s)[0]
            step = max(1, int(round(block_s * sr)))
            produced = False
            while left != 0:
                block = f.read(step if left < 0 else min(step, left), dtype="float32", always_2d=True)
                _raise_read_error(data)
                if block.shape[0] == 0:
                    break
                left = left - block.shape[0] if left > 0 else left
                produced = True
                yield Decoded(samples=np.ascontiguousarray(block), sample_rate=sr)
            if not produced:
                yield Decoded(samples=np.zeros((0, channels), np.float32), sample_rate=sr)
    except _DECODE_ERRORS as exc:
        raise _decode_error(data, exc, name) from exc


def _raise_read_error(data: object) -> None:
    """Raise the I/O error a :class:`RetryingReader` swallowed inside libsndfile's callbacks, if any."""
    if isinstance(data, RetryingReader) and data.error is not None:
        raise data.error
