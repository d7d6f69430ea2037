"""Fixtures for the codec tests: one tiny checkpoint set per session, loaded through the real loaders."""

from __future__ import annotations

import os

import pytest

from uniaudio.tokenize.reasoning_codec import CheckpointSet, CodecTokenizer, tiny_set_dir


@pytest.fixture(scope="session")
def codec_cache(tmp_path_factory):
    """``$UNIAUDIO_CACHE`` pointed at a session temp dir (restored afterwards)."""
    path = tmp_path_factory.mktemp("uniaudio-cache")
    old = os.environ.get("UNIAUDIO_CACHE")
    os.environ["UNIAUDIO_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("UNIAUDIO_CACHE", None)
    else:
        os.environ["UNIAUDIO_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_set(codec_cache) -> CheckpointSet:
    """The cached tiny set (what ``--codec tiny`` uses), built once per session in ``codec_cache``."""
    return CheckpointSet.from_dir(tiny_set_dir())


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_set) -> CodecTokenizer:
    """Encode + decode, ``segment`` windows (cheap on CPU); tests switch modes explicitly when needed."""
    return CodecTokenizer.load(tiny_set, device="cpu", decode=True, window_mode="segment")
