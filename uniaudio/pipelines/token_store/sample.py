"""One token-store sample in memory, and its metadata record."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from uniaudio.core.keys import check_field, check_key
from uniaudio.core.npy_codec import npy_bytes

__all__ = ["METADATA_FIELDS", "TokenSample", "sample_metadata"]

#: Metadata fields every sample's ``<key>.json`` carries (``None`` when unknown).
METADATA_FIELDS = (
    "key",
    "source",
    "duration_s",
    "text",
    "caption",
    "labels",
    "speaker",
    "language",
    "lyrics",
    "split",
    "origin",
    "codec",
)


def sample_metadata(
    *,
    key: str,
    source: str,
    duration_s: float,
    codec: dict[str, Any],
    audio_uri: str,
    member: str | None = None,
    offset_s: float = 0.0,
    text: str | None = None,
    caption: str | None = None,
    labels: list[str] | None = None,
    speaker: str | None = None,
    language: str | None = None,
    lyrics: str | None = None,
    split: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``<key>.json`` record: labels, ``origin`` (where to read the audio again) and ``codec``."""
    meta: dict[str, Any] = {
        "key": key,
        "source": source,
        "duration_s": float(duration_s),
        "text": text,
        "caption": caption,
        "labels": list(labels or []),
        "speaker": speaker,
        "language": language,
        "lyrics": lyrics,
        "split": split,
        "origin": {
            "audio_uri": audio_uri,
            "member": member,
            "offset_s": float(offset_s),
            "duration_s": float(duration_s),
        },
        "codec": {k: codec.get(k) for k in ("name", "config", "fingerprint")},
    }
    meta.update(extra)
    return meta


@dataclass
class TokenSample:
    """Tokens and metadata of one clip: ``reason`` (8, T_r) and ``recon`` (8, T_s), uint16."""

    key: str
    reason: np.ndarray
    recon: np.ndarray
    meta: dict[str, Any]
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_key(self.key)
        for name in self.extras:
            check_field(name)
        if self.meta.get("key", self.key) != self.key:
            raise ValueError(f"sample {self.key!r}: metadata key {self.meta.get('key')!r} differs")

    @property
    def duration_s(self) -> float:
        return float(self.meta.get("duration_s") or 0.0)

    def members(self) -> list[tuple[str, bytes]]:
        """Tar members in store order: reason, recon, json, then extras sorted by name."""
        for name, arr in (("reason", self.reason), ("recon", self.recon)):
            if arr.dtype != np.uint16 or arr.ndim != 2:
                raise ValueError(f"sample {self.key!r}: {name} must be a 2-D uint16 array, got "
                                 f"{arr.dtype} {arr.shape}")
        out = [
            (f"{self.key}.reason.npy", npy_bytes(self.reason)),
            (f"{self.key}.recon.npy", npy_bytes(self.recon)),
            (f"{self.key}.json", json.dumps(self.meta, ensure_ascii=False, sort_keys=True).encode("utf-8")),
        ]
        out += [(f"{self.key}.{name}.npy", npy_bytes(arr)) for name, arr in sorted(self.extras.items())]
        return out
