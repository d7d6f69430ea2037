"""Fixtures for sentence tests: a tiny LLaMA-arranged text tokenizer, a text corpus, token stores (random tokens),
and token stores of real audio tokenized by the tiny codec."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.token_store import TokenStoreWriter
from uniaudio.pipelines.token_store.sample import TokenSample, sample_metadata
from uniaudio.pipelines.tokenize_stage import TokenizeStageConfig, load_tokenizer, stage_codec_meta
from uniaudio.sentences.audio_render import read_origin_audio
from uniaudio.testing.audio import encode_audio, synth, write_audio
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
                pools: dict[str, str] | None = None, extra: dict | None = None):
    """Every unit of ``kind`` over ``stores`` run in-process (no Ray), after the builder's driver-side check, as
    ``build_sentences`` does: ``(sentences, skips)``. ``extra``: kind options (e.g. ``{"codec": ...}``)."""
    from uniaudio.sentences.registry import BuildContext, BuildOptions, Skip, get_builder
    from uniaudio.sentences.sources import codec_of_inputs, list_input_shards, read_input_shard

    builder = get_builder(kind)
    codec = codec_of_inputs(stores)
    options = BuildOptions(kind=kind, max_tokens=max_tokens, seed=seed, tokenizer=tokenizer, extra=dict(extra or {}))
    builder.check(options, codec)
    sentences, skips = [], []
    for unit in builder.units(list_input_shards(stores, pools), options):
        samples = [s for shard in unit["shards"] for s in read_input_shard(shard)]
        for item in builder.build_unit(unit, samples, BuildContext(options, unit["id"], codec.get("fingerprint"))):
            (skips if isinstance(item, Skip) else sentences).append(item)
    return sentences, skips


# -- token stores of real audio, tokenized by the tiny codec (audio-level kinds: mixture, variation) ----------

#: The codec of :func:`audio_token_stores` (the cached tiny set, cheap ``segment`` windows on CPU).
AUDIO_CODEC = TokenizeStageConfig(codec="tiny", window_mode="segment")

# (store, key, file, sample rate, channels, file seconds, origin offset, origin seconds, f0, labels)
_AUDIO_RECORDS = [
    ("speech", "librispeech/a-0001", "speech/a-0001.flac", 16000, 1, 2.0, 0.0, 2.0, 180.0,
     {"text": "the quick brown fox", "speaker": "s1"}),
    ("speech", "librispeech/a-0002", "speech/a-0002.wav", 16000, 1, 2.6, 0.5, 1.7, 140.0,
     {"text": "jumps over a lazy dog", "speaker": "s1"}),
    ("speech", "librispeech/a-0003", "speech/a-0003.wav", 22050, 1, 1.3, 0.0, 1.3, 210.0,
     {"text": "birds sing", "speaker": "s2"}),
    ("sound", "audiocaps/a-0001", "sound/a-0001.flac", 44100, 2, 1.7, 0.0, 1.7, 440.0, {"caption": "a bell rings"}),
    ("sound", "audiocaps/a-0002", "sound/a-0002.wav", 24000, 1, 0.3, 0.0, 0.3, 600.0, {"caption": "a short click"}),
    ("music", "musiccaps/a-0001", "music/a-0001.flac", 44100, 2, 1.7, 0.0, 1.7, 262.0, {"caption": "calm piano"}),
    ("music", "musiccaps/a-0002", "music.tar:a-0002.wav", 24000, 1, 1.3, 0.0, 1.3, 330.0, {"caption": "a flute"}),
]


@pytest.fixture(scope="session")
def audio_token_stores(tmp_path_factory):
    """Speech, sound and music token stores whose samples point (``origin``) at real audio files (flac/wav, 16 to
    44.1 kHz, mono/stereo, one at an offset, one in a tar member, one shorter than 0.4 s) and carry tokens and the
    codec record of :data:`AUDIO_CODEC`. Returns ``{"speech": uri, "sound": uri, "music": uri, "root": dir}``."""
    root = tmp_path_factory.mktemp("audio-token-stores")
    corpus = root / "corpus"
    tar_members: dict[str, bytes] = {}
    for _, _, file, rate, channels, seconds, _, _, f0, _ in _AUDIO_RECORDS:
        data = synth(seconds, rate, channels=channels, seed=int(f0), f0=f0)
        if ".tar:" in file:
            tar_members[file.split(":", 1)[1]] = encode_audio(data, rate, file.rsplit(".", 1)[1])
        else:
            write_audio(corpus / file, seconds, rate, channels=channels, seed=int(f0), f0=f0)
    with tarfile.open(corpus / "music.tar", "w") as tar:
        for name, blob in tar_members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    meta = stage_codec_meta(AUDIO_CODEC)
    tokenizer = load_tokenizer(AUDIO_CODEC)
    stores = {}
    for store in ("speech", "sound", "music"):
        uri = str(root / store)
        with TokenStoreWriter(uri, meta, ShardLimits(max_samples=8)) as writer:
            for pool, key, file, _, _, _, offset, seconds, _, labels in _AUDIO_RECORDS:
                if pool != store:
                    continue
                audio_uri, member = (str(corpus / file.split(":")[0]), file.split(":")[1]) if ".tar:" in file \
                    else (str(corpus / file), None)
                md = sample_metadata(key=key, source=key.split("/")[0], duration_s=seconds, codec=meta,
                                     audio_uri=audio_uri, member=member, offset_s=offset, **labels)
                enc = tokenizer.encode([read_origin_audio(md)])[0]
                writer.write(TokenSample(key=key, reason=enc.reason, recon=enc.recon, meta=md))
        stores[store] = uri
    return {**stores, "root": str(root)}
