"""Fixtures for sentence tests: a tiny LLaMA-arranged text tokenizer, a text corpus, and token stores."""

from __future__ import annotations

import numpy as np
import pytest

from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.token_store import TokenStoreWriter
from uniaudio.testing.tokens import TEST_CODEC, random_sample
from uniaudio.tokenize.text_tokenizer import train_tiny_tokenizer

# Documents of very different lengths; two without text (skipped by the builder).
DOCUMENTS = [
    ("doc-long", "Once upon a time, in a land of many words, " * 12 + "the end."),
    ("doc-unicode", "Grüße aus Köln — 東京の音楽 🎵\n\nA second paragraph with\ttabs and  double  spaces. " * 3),
    ("doc-short", "Hi."),
    ("doc-none", None),
    ("doc-empty", ""),
    ("doc-mid", "Speech, sound and music: one audio language model trained on text too. " * 2),
]

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "Grüße", "東京", "birds", "sing"]


@pytest.fixture(scope="session")
def text_tokenizer_dir(tmp_path_factory):
    corpus = [t for _, t in DOCUMENTS if t] * 5
    return str(train_tiny_tokenizer(corpus, tmp_path_factory.mktemp("text-tokenizer"), vocab_size=300))


def _speech(i: int) -> dict:
    duration = 1.6 + (i % 5) * 0.9
    n = 3 + i % 4
    words = [WORDS[(i + k) % len(WORDS)] for k in range(n)]
    step = duration / n
    alignment = [[w, round(k * step, 3), round((k + 1) * step, 3)] for k, w in enumerate(words)]
    meta = {"text": " ".join(words), "speaker": f"spk{i % 3}" if i != 7 else None,
            "source_meta": {"alignment": alignment}}
    if i % 4 == 0:
        meta["caption"] = f"A calm voice, speaker {i % 3}, reading slowly."
    if i == 5:
        meta["text"] = None
    return {"key": f"librispeech/utt{i:03d}", "duration_s": duration, **meta}


def _sound(i: int) -> dict:
    meta = {"key": f"audiocaps/clip{i:03d}", "duration_s": 1.0 + i % 3}
    if i != 2:
        meta["caption"] = f"A dog barks {i} times while cars pass — übrigens."
    return meta


def _music(i: int) -> dict:
    meta = {"key": f"musiccaps/song{i:03d}", "duration_s": 2.0 + i % 2, "caption": f"Calm piano piece number {i}."}
    if i % 2 == 0:
        meta["lyrics"] = f"la la love song {i}\nsecond line"
    return meta


def write_store(uri: str, records: list[dict], features: bool = False, shard_samples: int = 8,
                codec: dict | None = None) -> str:
    with TokenStoreWriter(uri, codec or TEST_CODEC, ShardLimits(max_samples=shard_samples)) as writer:
        for n, rec in enumerate(records):
            rec = dict(rec)
            key, duration = rec.pop("key"), rec.pop("duration_s")
            sample = random_sample(key, duration, seed=n, **rec)
            if features:
                t_s = sample.recon.shape[1]
                # (D, T) as `shards build --distill-features` writes them
                sample.extras["hubert"] = np.random.default_rng(n).standard_normal((4, t_s * 2)).astype(np.float16)
            writer.write(sample)
    return uri


@pytest.fixture(scope="session")
def token_stores(tmp_path_factory):
    """Three token stores (speech with alignments, speakers and distillation features; sound; music)."""
    root = tmp_path_factory.mktemp("token-stores")
    return {
        "speech": write_store(str(root / "speech"), [_speech(i) for i in range(16)], features=True),
        "sound": write_store(str(root / "sound"), [_sound(i) for i in range(6)]),
        "music": write_store(str(root / "music"), [_music(i) for i in range(5)]),
    }


def run_builder(kind: str, stores: list[str], max_tokens: int = 2048, seed: int = 0, tokenizer: str | None = None,
                pools: dict[str, str] | None = None):
    """Every unit of ``kind`` over ``stores`` run in-process (no Ray): ``(sentences, skips)``."""
    from uniaudio.sentences.registry import BuildContext, BuildOptions, Skip, get_builder
    from uniaudio.sentences.sources import list_input_shards, read_input_shard

    builder = get_builder(kind)
    options = BuildOptions(kind=kind, max_tokens=max_tokens, seed=seed, tokenizer=tokenizer)
    sentences, skips = [], []
    for unit in builder.units(list_input_shards(stores, pools), options):
        samples = [s for shard in unit["shards"] for s in read_input_shard(shard)]
        for item in builder.build_unit(unit, samples, BuildContext(options, unit["id"])):
            (skips if isinstance(item, Skip) else sentences).append(item)
    return sentences, skips
