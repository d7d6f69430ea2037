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

from dataclasses import dataclass

import numpy as np

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "INDEX_NAME",
    "StoreSpec",
]

FORMAT_NAME = "uniaudio-token-store"
FORMAT_VERSION = 1
INDEX_NAME = "index.json"


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


# --- members -------------------------------------------------------------------------------------


