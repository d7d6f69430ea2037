"""Tiny sentence stores for the training tests (:mod:`uniaudio.testing.sentence_stores`): the same few
samples come back every epoch, so a short run can learn them (the loss falls)."""

from __future__ import annotations

import pytest

from uniaudio.testing.sentence_stores import write_random_store


@pytest.fixture(scope="session")
def stores(tmp_path_factory) -> dict[str, str]:
    """``asr`` (with distillation features, 3 shards), ``tts`` (2 shards) and ``text-only`` (1 shard)."""
    root = tmp_path_factory.mktemp("train-stores")
    return {
        "asr": write_random_store(str(root / "asr"), "asr", 12, 4, seed=1, features=True),
        "tts": write_random_store(str(root / "tts"), "tts", 10, 5, seed=2),
        "text-only": write_random_store(str(root / "text"), "text-only", 8, 8, seed=3),
    }
