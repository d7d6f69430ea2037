"""Decode path: reconstruction tokens → flow-matching DiT → SQ-Codec → 24 kHz audio."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tokenize.signals import tone
from uniaudio.tokenize.reasoning_codec import CodecTokenizer


def test_decode_returns_audio_of_the_token_length(tiny_tokenizer):
    (enc,) = tiny_tokenizer.encode([tone(2.0)])
    wave = tiny_tokenizer.decode(enc.recon, steps=2)
    assert wave.dtype == np.float32 and wave.shape == (26 * 1920,)
    assert np.isfinite(wave).all() and np.abs(wave).max() <= 1.0 and wave.std() > 0
    np.testing.assert_array_equal(wave, tiny_tokenizer.decode(enc.recon, steps=2))  # seeded noise
    assert not np.array_equal(wave, tiny_tokenizer.decode(enc.recon, steps=2, seed=1))


def test_long_token_sequences_decode_in_windows_to_the_exact_length(tiny_tokenizer):
    rng = np.random.default_rng(0)
    recon = rng.integers(0, 128, size=(8, 700), dtype=np.uint16)  # 56 s: four 20 s windows (hop 186 frames)
    wave = tiny_tokenizer.decode(recon, steps=1, cfg=1.0)
    assert wave.shape == (700 * 1920,)


def test_decode_only_builds_no_encoders(tiny_set):
    dec = CodecTokenizer.load(tiny_set, encode=False, decode=True)
    assert dec.encoders is None and dec.codec.reasoning is None
    with pytest.raises(RuntimeError, match="without encoders"):
        dec.encode([tone(1.0)])
    with pytest.raises(ValueError, match=r"\(8, T\)"):
        dec.decode(np.zeros((7, 5), np.uint16))
    with pytest.raises(ValueError, match=r"\[0, 128\)"):
        dec.decode(np.full((8, 5), 500, np.uint16))
