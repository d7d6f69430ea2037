"""Sample keys: the one rule every store uses, and how corpus ids become keys.

A key is ``/``-joined components of ``[A-Za-z0-9_-]`` (no dots: WebDataset splits member names at the
first dot), at most :data:`MAX_KEY_LEN` characters.
"""

from __future__ import annotations

import re

__all__ = ["MAX_KEY_LEN", "check_field", "check_key", "make_key"]

_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")

_FIELD_RE = re.compile(r"^[A-Za-z0-9_\-]+$")

MAX_KEY_LEN = 200


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


_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-/]")

def make_key(source: str, *ids: str) -> str:
    """A store key ``<source>/<id>[/<id>...]`` from corpus ids.

    Keys contain no dots (WebDataset splits member names at the first dot): dots and any other
    character outside ``[A-Za-z0-9_-/]`` become ``_``. The mapping is stable, so re-runs produce the
    same keys. YouTube ids keep their leading ``-`` (``audioset/--PJHxphWEs_30000``).
    """
    parts = [source, *ids]
    cleaned = [_KEY_BAD.sub("_", str(p).strip()).strip("/") for p in parts]
    if any(not p for p in cleaned):
        raise ValueError(f"empty id component in key parts {parts!r}")
    return "/".join(cleaned)
