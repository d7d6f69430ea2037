"""Sample keys: the one rule every store uses, and how corpus ids become keys.

A key is ``/``-joined components of ``[A-Za-z0-9_-]`` (no dots: WebDataset splits member names at the
first dot), at most :data:`MAX_KEY_LEN` characters, its last component at most
:data:`MAX_LAST_COMPONENT` characters and everything before it at most :data:`MAX_KEY_DIR` characters,
so that every tar member ``<key>.<field>.npy`` fits a ustar header (100-byte name, 155-byte prefix).
:func:`check_key` is that rule; ingest and ``shards build`` both apply it (a record whose key fails it
is rejected, never a crash) and :func:`make_key` only returns keys that pass it.
"""

from __future__ import annotations

import hashlib
import json
import re

__all__ = ["MAX_KEY_DIR", "MAX_KEY_LEN", "MAX_LAST_COMPONENT", "Key", "check_field", "check_key",
           "key_problem", "make_key"]

_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")

_FIELD_RE = re.compile(r"^[A-Za-z0-9_\-]+$")

MAX_KEY_LEN = 200
#: Longest last component: leaves room in ustar's 100-byte name field for ``.<field>.npy`` suffixes.
MAX_LAST_COMPONENT = 64
#: Longest part before the last ``/``: ustar's prefix field.
MAX_KEY_DIR = 155
#: Longest extra field name: ``.<field>.npy`` after a :data:`MAX_LAST_COMPONENT` stem fills 100 bytes.
MAX_FIELD_LEN = 100 - MAX_LAST_COMPONENT - len("..npy")

#: Characters of the readable part kept in front of the hash of a mapped id.
_READABLE = 40
_HASH_LEN = 12


def key_problem(key: object) -> str | None:
    """Why ``key`` is not a valid sample key, or ``None`` when it is (the rule in the module docstring)."""
    if not isinstance(key, str) or not _KEY_RE.match(key):
        return ("keys are '/'-joined non-empty components of [A-Za-z0-9_-] (no dots, no leading, "
                "trailing or doubled '/')")
    if len(key) > MAX_KEY_LEN:
        return f"{len(key)} characters, more than {MAX_KEY_LEN}"
    head, _, last = key.rpartition("/")
    if len(last) > MAX_LAST_COMPONENT:
        return f"last component has {len(last)} characters, more than {MAX_LAST_COMPONENT} (ustar name)"
    if len(head) > MAX_KEY_DIR:
        return f"the part before the last '/' has {len(head)} characters, more than {MAX_KEY_DIR} (ustar prefix)"
    return None


def check_key(key: str) -> str:
    """Validate a sample key (module docstring); raises ``ValueError`` naming the key and the reason."""
    problem = key_problem(key)
    if problem is not None:
        raise ValueError(f"invalid sample key {key!r}: {problem}")
    return key


def check_field(field: str) -> str:
    if not _FIELD_RE.match(field) or field in ("reason", "recon", "json") or len(field) > MAX_FIELD_LEN:
        raise ValueError(f"invalid extra field name {field!r} (use [A-Za-z0-9_-], at most {MAX_FIELD_LEN} "
                         "characters, not reason/recon/json)")
    return field


class Key(str):
    """A key from :func:`make_key`; ``original`` holds the corpus ids when they could not be used verbatim.

    Records built with such a key keep ``original`` in their metadata (``meta["original_id"]``).
    """

    original: tuple[str, ...] | None = None


_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-/]")
_SOURCE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
_READABLE_RE = re.compile(r"[A-Za-z0-9]")


def _clean(part: str) -> str:
    return _KEY_BAD.sub("_", str(part).strip()).strip("/")


def _hashed(readable: str, originals: list[str]) -> str:
    """``<readable prefix>-<12 hex digits of SHA-1 of the original ids>`` (just the hash if nothing is readable)."""
    digest = hashlib.sha1(json.dumps(originals, ensure_ascii=False).encode("utf-8")).hexdigest()[:_HASH_LEN]
    prefix = re.sub(r"_+", "_", readable.replace("/", "_")).strip("_-")[:_READABLE].rstrip("_-")
    return f"{prefix}-{digest}" if prefix else f"h{digest}"


def make_key(source: str, *ids: object) -> Key:
    """A valid store key ``<source>/<id>[/<id>...]`` from corpus ids, always (or ``ValueError`` for a bad ``source``).

    Verbatim where possible: dots and any other character outside ``[A-Za-z0-9_-/]`` become ``_``
    (YouTube ids keep their leading ``-``: ``audioset/--PJHxphWEs_30000``), and a ``/`` inside an id
    nests it. An id that cannot be used that way (empty; a path component left empty, e.g. by a URL;
    a component with no ASCII letter or digit, which would collide as ``___``) becomes
    ``<readable prefix>-<hash>``; so does a last component too long for ustar, and a key still over
    the limits has all its ids replaced by one such component. The mapping is deterministic, so
    re-runs produce the same keys, and the returned :class:`Key` carries the original ids.
    """
    if not _SOURCE_RE.match(str(source)):
        raise ValueError(f"invalid key namespace {source!r}: use 1-32 characters of [A-Za-z0-9_-]")
    raw = [str(i) for i in ids]
    parts, mapped = [], False
    for original in raw:
        cleaned = _clean(original)
        if any(not _READABLE_RE.search(c) for c in cleaned.split("/")):  # empty, or nothing left readable
            cleaned, mapped = _hashed(cleaned, [original]), True
        parts.append(cleaned)
    if parts:
        last = parts[-1].rsplit("/", 1)
        if len(last[-1]) > MAX_LAST_COMPONENT:
            last[-1], mapped = _hashed(last[-1], raw), True
            parts[-1] = "/".join(last)
    key = "/".join([source, *parts])
    if key_problem(key) is not None and parts:
        key, mapped = f"{source}/{_hashed('_'.join(parts), raw)}", True
    check_key(key)
    out = Key(key)
    if mapped:
        out.original = tuple(raw)
    return out
