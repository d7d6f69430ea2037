"""Tiny sentence stores (v2, written with :class:`uniaudio.sentences.store.SentenceStoreWriter`) for training
tests, benchmarks and the demo: random tokens in the released task layouts.

Sizes fit the ``tiny`` model (reasoning codes < 64, reconstruction codes < 128, text ids < 300) and every
larger preset. Sample ``i`` of a store is a pure function of ``(seed, i)``.
"""

from __future__ import annotations

import numpy as np

from uniaudio.core.shard_file import ShardLimits
from uniaudio.sentences.sentence import Sentence, SentenceSegment
from uniaudio.sentences.store import SentenceStoreWriter

__all__ = ["FEATURE_DIM", "TASKS", "random_sentence", "write_random_store"]

FEATURE_DIM = 16
TASKS = ("asr", "tts", "text-only")
TINY_VOCAB = 448


def _audio(rng: np.random.Generator, loss: bool, features: bool, frames: tuple[int, int]) -> SentenceSegment:
    t_r = int(rng.integers(*frames))
    t_s = t_r * 5 // 2
    feats = {"distill_wavlm": rng.standard_normal((t_s, FEATURE_DIM)).astype(np.float16)} if features else {}
    return SentenceSegment("audio", "audio", loss, source_key="tokens/x",
                           reason=rng.integers(0, 64, (8, t_r)).astype(np.uint16),
                           recon=rng.integers(0, 128, (8, t_s)).astype(np.uint16), features=feats)


def _text(rng: np.random.Generator, role: str, loss: bool, n: tuple[int, int]) -> SentenceSegment:
    ids = tuple(int(i) for i in rng.integers(0, 300, int(rng.integers(*n))))
    return SentenceSegment("text", role, loss, text=" ".join(map(str, ids)), ids=ids)


def random_sentence(task: str, i: int, seed: int, features: bool = False, scale: int = 1) -> Sentence:
    """Sample ``i`` of ``task`` (``asr``: prompt, audio, scored transcription; ``tts``: prompt, transcription,
    scored audio; ``text-only``: scored text); ``scale`` multiplies the lengths."""
    rng = np.random.default_rng([seed, i])
    frames = (2 * scale, 5 * scale)
    if task == "asr":
        segs = [_text(rng, "prompt", False, (2, 4)), _audio(rng, False, features, frames),
                _text(rng, "transcription", True, (3 * scale, 9 * scale))]
    elif task == "tts":
        segs = [_text(rng, "prompt", False, (2, 4)), _text(rng, "transcription", False, (3 * scale, 9 * scale)),
                _audio(rng, True, False, frames)]
    elif task == "text-only":
        segs = [_text(rng, "text", True, (10 * scale, 40 * scale))]
    else:
        raise ValueError(f"random_sentence: task {task!r} is not one of {TASKS}")
    return Sentence(key=f"{task}/s{i:05d}", task=task, strategy=None, segments=segs)


def write_random_store(uri: str, task: str, n: int, per_shard: int, seed: int = 0, features: bool = False,
                       vocab_size: int = TINY_VOCAB, scale: int = 1) -> str:
    """Write ``n`` random samples of ``task`` to a new store at ``uri`` in shards of ``per_shard``."""
    with SentenceStoreWriter(uri, limits=ShardLimits(max_samples=per_shard)) as writer:
        for i in range(n):
            writer.write(random_sentence(task, i, seed, features, scale))
            if writer.full():
                writer.commit()
        writer.close(tokenizer={"vocab_size": vocab_size, "fingerprint": "random"}, codec_fingerprint="random")
    return uri
