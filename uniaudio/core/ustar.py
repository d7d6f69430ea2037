"""Tar shards as every store writes and reads them: ustar headers, member names, a fast reader.

Shards are named ``shard-NNNNNN.tar`` when one writer numbers them, or ``shard-<writer>-NNNNNN.tar`` when
several write into one store at once (``<writer>``: a writer's own id, lower-case letters and digits, so no two
writers pick the same name); a member is ``<key>.<ext>`` where the key is everything before
the first dot of the base name (the WebDataset rule). Names are checked before use (no absolute
paths, no ``..``, valid keys), so nothing read from a shard can escape its store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from uniaudio.core.keys import check_key

__all__ = [
    "TAR_END",
    "StoreReadError",
    "check_member_name",
    "is_shard_name",
    "iter_members",
    "shard_index",
    "shard_name",
    "split_member",
    "tar_header",
    "tar_padding",
    "writer_shard_name",
]

SHARD_PATTERN = re.compile(r"^shard-(\d{6})\.tar$")
WRITER_SHARD_PATTERN = re.compile(r"^shard-[0-9a-z]{1,32}-\d{6}\.tar$")
_WRITER_ID = re.compile(r"^[0-9a-z]{1,32}$")


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.tar"


def writer_shard_name(writer: str, index: int) -> str:
    """The name of shard ``index`` of writer ``writer`` (one of several writing into one store)."""
    if not _WRITER_ID.match(writer):
        raise ValueError(f"writer id {writer!r}: use 1-32 lower-case letters and digits")
    return f"shard-{writer}-{index:06d}.tar"


def shard_index(name: str) -> int | None:
    """The number of a ``shard-NNNNNN.tar`` name; ``None`` for any other name (writer shards included)."""
    m = SHARD_PATTERN.match(name.rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None


def is_shard_name(name: str) -> bool:
    """Whether ``name`` (or a URI's last part) is a store shard's name, numbered or writer-tagged."""
    base = name.rsplit("/", 1)[-1]
    return bool(SHARD_PATTERN.match(base) or WRITER_SHARD_PATTERN.match(base))


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


def tar_padding(size: int) -> bytes:
    return b"\0" * ((_TAR_BLOCK - size % _TAR_BLOCK) % _TAR_BLOCK)


TAR_END = b"\0" * (2 * _TAR_BLOCK)


# --- reading ---------------------------------------------------------------------------------------

class StoreReadError(ValueError):
    """A shard cannot be read as a token store (names the shard and member)."""


_BLOCK = 512


_ZERO_BLOCK = bytes(_BLOCK)


def _read_exact(f, n: int, where: str, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise StoreReadError(f"{where}: truncated tar: {what} needs {n} bytes, only {len(data)} left")
    return data


def _octal_field(field: bytes) -> int:
    text = field.rstrip(b"\0 ").strip()
    return int(text, 8) if text else 0


def _pax_path(data: bytes) -> str | None:
    """The ``path`` record of a pax extended header, if any (records are ``"<len> key=value\\n"``)."""
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        if key == b"path":
            return value.decode("utf-8")
        pos += length
    return None


def iter_members(fileobj, where: str) -> Iterator[tuple[str, bytes]]:
    """``(name, data)`` of the regular-file members of a tar stream, with names checked.

    A small ustar parser (POSIX ustar, pax ``path`` records and GNU long names): several times faster
    than :mod:`tarfile` for the store's many small members. A stream that ends inside a member, or a
    header with a bad checksum, raises :class:`StoreReadError` naming the shard.
    """
    long_name: str | None = None
    while True:
        header = fileobj.read(_BLOCK)
        if not header:
            raise StoreReadError(f"{where}: truncated tar: no end-of-archive marker")
        if len(header) < _BLOCK:
            raise StoreReadError(f"{where}: truncated tar: partial header block")
        if header == _ZERO_BLOCK:
            return
        stored = _octal_field(header[148:156])
        if stored != sum(header) - sum(header[148:156]) + 8 * 32:
            raise StoreReadError(f"{where}: corrupt tar header (checksum mismatch) after {long_name or 'start'}")
        size = _octal_field(header[124:136])
        typeflag = header[156:157]
        name = header[0:100].split(b"\0", 1)[0].decode("utf-8")
        if header[257:262] == b"ustar":
            prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8")
            name = f"{prefix}/{name}" if prefix else name
        data = _read_exact(fileobj, size, where, f"member {name!r}")
        _read_exact(fileobj, -size % _BLOCK, where, f"padding of {name!r}")
        if typeflag in (b"x", b"L"):
            long_name = _pax_path(data) if typeflag == b"x" else data.rstrip(b"\0").decode("utf-8")
            continue
        if typeflag == b"g":
            continue
        if long_name is not None:
            name, long_name = long_name, None
        if typeflag not in (b"0", b"\0", b"7"):
            continue  # directories, links, devices: not part of any sample
        problem = check_member_name(name)
        if problem:
            raise StoreReadError(f"{where}: member {name!r}: {problem}")
        yield name, data
