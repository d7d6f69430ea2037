"""The token store format: names, numbers and the low-level encoders of tar members (docs/formats.md).

A store is a directory or prefix holding ``shard-000000.tar``, ``shard-000001.tar``, ... and an
``index.json`` written last. Each sample is three or more adjacent members::

    <key>.reason.npy    uint16 (8, T_r)   reasoning tokens, 5 Hz
    <key>.recon.npy     uint16 (8, T_s)   reconstruction tokens, 12.5 Hz
    <key>.json          metadata (see TokenSample.meta)
    <key>.<field>.npy   optional extra arrays (e.g. distillation features)

Everything here is plain: ``tar`` lists a shard and ``np.load(allow_pickle=False)`` reads a member.
"""

from __future__ import annotations

import io
import math
import re
import struct
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "INDEX_NAME",
    "JOURNAL_DIR",
    "StoreSpec",
    "check_key",
    "check_member_name",
    "npy_bytes",
    "shard_name",
    "split_member",
    "tar_header",
]

FORMAT_NAME = "uniaudio-token-store"
FORMAT_VERSION = 1
INDEX_NAME = "index.json"
JOURNAL_DIR = "_journal"
SHARD_PATTERN = re.compile(r"^shard-(\d{6})\.tar$")
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
_FIELD_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
MAX_KEY_LEN = 200


@dataclass(frozen=True)
class StoreSpec:
    """What a valid sample looks like: codebooks, cards and frame rates of the two token streams.

    Defaults are the released ReasoningCodec's (8 × 4096 reasoning at 5 Hz, 8 × 8192 reconstruction at
    12.5 Hz). ``reason_tolerance``/``recon_tolerance`` bound ``|T - rate · duration_s|``.
    """

    codebooks: int = 8
    reason_card: int = 4096
    recon_card: int = 8192
    reason_hz: float = 5.0
    recon_hz: float = 12.5
    reason_tolerance: float = 1.0
    recon_tolerance: float = 1.5

    def __post_init__(self) -> None:
        for name in ("codebooks", "reason_card", "recon_card"):
            if getattr(self, name) <= 0:
                raise ValueError(f"StoreSpec.{name} must be positive")
        if max(self.reason_card, self.recon_card) > np.iinfo(np.uint16).max + 1:
            raise ValueError("StoreSpec cards must fit uint16 token ids")


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.tar"


def shard_index(name: str) -> int | None:
    m = SHARD_PATTERN.match(name.rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None


def check_key(key: str) -> str:
    """Validate a sample key: ``[A-Za-z0-9_-]`` path components joined by ``/``, no dots, ≤ 200 chars."""
    if not isinstance(key, str) or not _KEY_RE.match(key) or len(key) > MAX_KEY_LEN:
        raise ValueError(
            f"invalid sample key {key!r}: keys are '/'-joined components of [A-Za-z0-9_-] "
            f"(no dots, no leading '/'), at most {MAX_KEY_LEN} characters"
        )
    return key


def check_field(field: str) -> str:
    if not _FIELD_RE.match(field) or field in ("reason", "recon", "json"):
        raise ValueError(f"invalid extra field name {field!r} (use [A-Za-z0-9_-], not reason/recon/json)")
    return field


def split_member(name: str) -> tuple[str, str]:
    """``"src/id.reason.npy"`` → ``("src/id", "reason.npy")``.

    The key is everything before the first dot of the member's base name (the WebDataset rule).
    """
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    if not dot or not stem:
        raise ValueError(f"tar member {name!r} has no '<key>.<ext>' form")
    return (f"{head}/{stem}" if head else stem), ext


def check_member_name(name: str) -> str | None:
    """Why a tar member name is unsafe or malformed (absolute, ``..``, backslash...), or ``None`` if fine."""
    if name.startswith("/") or "\\" in name:
        return "absolute or backslash path"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "empty, '.' or '..' path component"
    try:
        key, _ = split_member(name)
        check_key(key)
    except ValueError as e:
        return str(e)
    return None


# --- members -------------------------------------------------------------------------------------

_npy_header_cache: dict[tuple[str, tuple[int, ...]], bytes] = {}


def npy_bytes(array: np.ndarray) -> bytes:
    """The ``.npy`` (format 1.0) encoding of a C-contiguous array, byte-identical to ``np.save``.

    Headers are cached per (dtype, shape), which makes this several times cheaper than ``np.save``
    into a BytesIO for the small token arrays the store holds.
    """
    array = np.ascontiguousarray(array)
    if array.dtype.hasobject:
        raise ValueError("object arrays cannot be stored (they would need pickle)")
    descr = np.lib.format.dtype_to_descr(array.dtype)
    cache_key = (str(descr), array.shape)
    header = _npy_header_cache.get(cache_key)
    if header is None:
        shape = repr(array.shape) if array.ndim != 1 else f"({array.shape[0]},)"
        text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape}, }}"
        total = 10 + len(text) + 1
        text += " " * ((64 - total % 64) % 64) + "\n"
        header = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")
        if len(_npy_header_cache) < 4096:
            _npy_header_cache[cache_key] = header
    return header + array.tobytes()


_TAR_BLOCK = 512


def _ustar_template() -> tuple[bytes, int]:
    header = bytearray(_TAR_BLOCK)
    header[100:108] = b"0000644\0"  # mode
    header[108:116] = b"0000000\0"  # uid
    header[116:124] = b"0000000\0"  # gid
    header[136:148] = b"00000000000\0"  # mtime 0: shards are byte-identical across runs
    header[148:156] = b" " * 8  # checksum is computed with this field as spaces
    header[156:157] = b"0"  # regular file
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    header[265:273] = b"uniaudio"
    header[297:305] = b"uniaudio"
    return bytes(header), sum(header)


_USTAR_TEMPLATE, _USTAR_TEMPLATE_SUM = _ustar_template()


def tar_header(name: str, size: int) -> bytes:
    """A POSIX ustar header for a regular file (mode 0644, uid/gid 0, mtime 0, owner ``uniaudio``).

    Names longer than 100 bytes are split into ustar's prefix/name fields at a ``/``. The checksum is
    the template's plus the bytes filled in, so no pass over the 512 bytes is needed.
    """
    raw = name.encode("utf-8")
    prefix = b""
    if len(raw) > 100:
        cuts = [i for i, b in enumerate(raw) if b == ord("/") and i <= 155 and len(raw) - i - 1 <= 100]
        if not cuts:
            raise ValueError(f"tar member name too long for ustar: {name!r}")
        prefix, raw = raw[: cuts[0]], raw[cuts[0] + 1 :]
    if size >= 8**11:
        raise ValueError(f"tar member {name!r} is too large for ustar ({size} bytes)")
    size_field = b"%011o\0" % size
    header = bytearray(_USTAR_TEMPLATE)
    header[0 : len(raw)] = raw
    header[124:136] = size_field
    header[345 : 345 + len(prefix)] = prefix
    checksum = _USTAR_TEMPLATE_SUM + sum(raw) + sum(size_field) + sum(prefix)
    header[148:156] = b"%06o\0 " % checksum
    return bytes(header)


_npy_layout_cache: dict[bytes, tuple[np.dtype, tuple[int, ...], bool, int]] = {}


def load_npy(data: bytes) -> np.ndarray:
    """Decode ``.npy`` bytes like ``np.load(allow_pickle=False)``, caching parsed headers.

    Object dtypes are refused (they would need pickle). The result is a writable copy.
    """
    header_len = 10 + int.from_bytes(data[8:10], "little") if data[6:7] == b"\x01" else None
    layout = _npy_layout_cache.get(data[:header_len]) if header_len else None
    if layout is None:
        fmt = io.BytesIO(data)
        version = np.lib.format.read_magic(fmt)
        if version not in ((1, 0), (2, 0)):
            return np.load(io.BytesIO(data), allow_pickle=False)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(fmt)
        if dtype.hasobject:
            raise ValueError("object arrays cannot be loaded without pickle")
        layout = (dtype, shape, fortran, fmt.tell())
        if header_len and len(_npy_layout_cache) < 4096:
            _npy_layout_cache[data[:header_len]] = layout
    dtype, shape, fortran, offset = layout
    count = math.prod(shape)
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C").copy()


def tar_padding(size: int) -> bytes:
    return b"\0" * ((_TAR_BLOCK - size % _TAR_BLOCK) % _TAR_BLOCK)


TAR_END = b"\0" * (2 * _TAR_BLOCK)
