"""Audio records and rejects: the schema every corpus source yields (docs/formats.md, "Audio records").

An :class:`AudioRecord` points at audio that can be read again (``audio_uri`` + ``member`` +
``offset_s``/``duration_s``) and carries the corpus' labels verbatim (only surrounding whitespace is
stripped). ``member`` addresses audio inside a container:

* tar / zip archive: the member's path inside the archive (``EN_B00000_S00000_W000000.mp3``);
* parquet file: ``"<row>:<column>"`` (row index in the file, column holding ``{bytes, path}`` or bytes);
* plain file: ``None``.

A :class:`Reject` is a record that could not be used, with a :class:`RejectReason` code and a
human-readable ``detail`` naming the file or row.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import pyarrow as pa

__all__ = [
    "RECORD_SCHEMA",
    "REJECT_SCHEMA",
    "AudioRecord",
    "Reject",
    "RejectReason",
    "parquet_member",
    "parse_parquet_member",
]


class RejectReason(str, Enum):
    """Why a record was dropped. The value is what lands in the rejects manifest."""

    MISSING_FILE = "missing_file"
    ZERO_BYTE = "zero_byte"
    UNDECODABLE = "undecodable"
    MALFORMED_METADATA = "malformed_metadata"
    ORPHAN_MEMBER = "orphan_member"
    UNMAPPED_SOURCE = "unmapped_source"
    BLACKLISTED = "blacklisted"
    DUPLICATE_KEY = "duplicate_key"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    SILENT = "silent"
    CLIPPED = "clipped"
    LOW_BANDWIDTH = "low_bandwidth"
    CODEC_ERROR = "codec_error"
    #: the record's key breaks the key rule (``uniaudio.core.keys.check_key``); checked at ingest and build
    INVALID_KEY = "invalid_key"


def parquet_member(row: int, column: str) -> str:
    return f"{row}:{column}"


def parse_parquet_member(member: str) -> tuple[int, str]:
    row, _, column = member.partition(":")
    if not row.isdigit() or not column:
        raise ValueError(f"parquet member must look like '<row>:<column>', got {member!r}")
    return int(row), column


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = str(text).strip()
    return text or None


@dataclass
class AudioRecord:
    """One unit of audio with its labels. Required fields first; unknowns are ``None``."""

    key: str
    source: str
    audio_uri: str
    member: str | None = None
    offset_s: float = 0.0
    duration_s: float | None = None
    sample_rate: int | None = None
    text: str | None = None
    caption: str | None = None
    labels: list[str] = field(default_factory=list)
    speaker: str | None = None
    language: str | None = None
    lyrics: str | None = None
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "." in self.key:
            raise ValueError(f"record key {self.key!r} contains a dot; build keys with make_key()")
        original = getattr(self.key, "original", None)  # ids make_key could not use verbatim
        if original is not None:
            self.meta = {**self.meta, "original_id": original[0] if len(original) == 1 else list(original)}
        self.key = str(self.key)
        self.text = _clean(self.text)
        self.caption = _clean(self.caption)
        self.lyrics = _clean(self.lyrics)
        self.speaker = _clean(self.speaker)
        self.language = _clean(self.language)
        self.labels = [str(label).strip() for label in self.labels if str(label).strip()]

    def to_row(self) -> dict[str, Any]:
        """Flat row for Arrow/Parquet; ``meta`` becomes a JSON string."""
        row = asdict(self)
        row["meta"] = json.dumps(self.meta, ensure_ascii=False, sort_keys=True, default=str)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AudioRecord:
        data = {k: row.get(k) for k in RECORD_SCHEMA.names}
        meta = data.get("meta")
        data["meta"] = json.loads(meta) if isinstance(meta, str) and meta else (meta or {})
        data["labels"] = list(data.get("labels") or [])
        data["offset_s"] = float(data.get("offset_s") or 0.0)
        return cls(**data)


@dataclass
class Reject:
    """A record that was dropped, and why."""

    key: str
    source: str
    reason: RejectReason | str
    detail: str

    def to_row(self) -> dict[str, str]:
        reason = self.reason.value if isinstance(self.reason, RejectReason) else str(self.reason)
        return {"key": self.key, "source": self.source, "reason": reason, "detail": self.detail}


RECORD_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("source", pa.string()),
        ("audio_uri", pa.string()),
        ("member", pa.string()),
        ("offset_s", pa.float64()),
        ("duration_s", pa.float64()),
        ("sample_rate", pa.int64()),
        ("text", pa.string()),
        ("caption", pa.string()),
        ("labels", pa.list_(pa.string())),
        ("speaker", pa.string()),
        ("language", pa.string()),
        ("lyrics", pa.string()),
        ("split", pa.string()),
        ("meta", pa.string()),
    ]
)

REJECT_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("source", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)
