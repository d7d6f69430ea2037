"""The data types as tasks: released key order, prompts outside the loss, skips by reason, token counts."""

from __future__ import annotations

import pytest
import torch

from tests.sentences.conftest import run_builder
from uniaudio.core.token_space import TokenLayout
from uniaudio.model.sequence import build_sequence
from uniaudio.sentences.registry import load_prompts
from uniaudio.sentences.tasks import TASKS
from uniaudio.tokenize.text_tokenizer import TextTokenizer

# reference-code.md §3, task_formats: keys in order, the scored key last (reason+semantic = one audio segment).
RELEASED = {
    "asr": ["audio", "transcription"],
    "tts": ["transcription", "audio"],
    "instruct-tts": ["caption", "transcription", "audio"],
    "speech-caption": ["audio", "caption"],
    "tta": ["caption", "audio"],
    "ttm": ["caption", "audio"],
    "audio-caption": ["audio", "caption"],
    "music-caption": ["audio", "caption"],
    "lyric-recognition": ["audio", "lyric"],
    "lyric-to-song": ["lyric", "audio"],
    "audio-only": ["audio"],
}


def _role(seg) -> str:
    return "audio" if seg.modality == "audio" else seg.role


@pytest.mark.parametrize("task", sorted(RELEASED))
def test_task_layout_follows_released_key_order(task, token_stores):
    stores = list(token_stores.values())
    sentences, _ = run_builder(task, stores)
    assert sentences, f"{task}: the fixture stores should yield sentences"
    prompts = set(load_prompts().get(task, []))
    for s in sentences:
        body = s.segments
        if task != "audio-only":
            assert body[0].role == "prompt" and not body[0].loss
            assert body[0].text.removesuffix("\n\n") in prompts
            body = body[1:]
        else:
            assert all(seg.role != "prompt" for seg in body)
        assert [_role(seg) for seg in body] == RELEASED[task]
        assert [seg.loss for seg in body] == [False] * (len(body) - 1) + [True]
        assert s.task == task and s.strategy is None and s.key == f"{task}/{s.source_keys[0]}"
        assert all(seg.source_key == s.source_keys[0] for seg in body)


def test_records_lacking_what_a_task_needs_are_skipped_with_reasons(token_stores):
    sentences, skips = run_builder("asr", list(token_stores.values()))
    reasons = {}
    for skip in skips:
        reasons.setdefault(skip.reason, []).append(skip.key)
    assert reasons["no transcript"] == ["librispeech/utt005"]
    assert len(reasons["pool sound is not speech"]) == 6 and len(reasons["pool music is not speech"]) == 5
    assert len(sentences) == 15
    _, skips = run_builder("tta", [token_stores["sound"]])
    assert [(s.key, s.reason) for s in skips] == [("audiocaps/clip002", "no caption")]
    _, skips = run_builder("lyric-recognition", [token_stores["music"]])
    assert {s.reason for s in skips} == {"no lyrics"} and len(skips) == 2


def test_pool_override_per_store(token_stores):
    sentences, _ = run_builder("tta", [token_stores["music"]], pools={token_stores["music"]: "sound"})
    assert len(sentences) == 5
    assert not run_builder("tta", [token_stores["music"]])[0]


def test_num_tokens_is_the_sequence_length_and_within_the_limit(token_stores, text_tokenizer_dir):
    tok = TextTokenizer.load(text_tokenizer_dir)
    layout = TokenLayout(text=tok.specials)
    for task, limit in (("asr", 120), ("tts", 2048), ("instruct-tts", 2048), ("audio-only", 60)):
        sentences, skips = run_builder(task, list(token_stores.values()), max_tokens=limit,
                                       tokenizer=text_tokenizer_dir)
        assert sentences
        for s in sentences:
            assert s.num_tokens == len(build_sequence(s.to_model_segments(), layout)) <= limit
        if limit < 200:
            assert any(k.reason == "longer than --max-tokens" for k in skips)


def test_text_segments_decode_to_the_source_text(token_stores, text_tokenizer_dir):
    tok = TextTokenizer.load(text_tokenizer_dir)
    sentences, _ = run_builder("asr", [token_stores["speech"]], tokenizer=text_tokenizer_dir)
    meta = {s.key: s for s in sentences}
    assert any("東京" in s.segments[-1].text for s in sentences)
    for s in meta.values():
        for seg in s.segments:
            if seg.modality == "text":
                assert tok.decode(seg.ids) == seg.text


def test_audio_segments_carry_the_samples_tokens_and_features(token_stores):
    from uniaudio.pipelines.token_store import iter_store

    original = {t.key: t for t in iter_store(token_stores["speech"])}
    sentences, _ = run_builder("tts", [token_stores["speech"]])
    for s in sentences:
        audio = s.segments[-1]
        src = original[audio.source_key]
        assert (audio.reason == src.reason).all() and (audio.recon == src.recon).all()
        assert torch.equal(torch.from_numpy(audio.features["hubert"]), torch.from_numpy(src.extras["hubert"].T.copy()))


def test_every_task_has_several_prompts():
    prompts = load_prompts()
    for task in TASKS:
        if TASKS[task].prompt:
            assert len(set(prompts[task])) >= 3
