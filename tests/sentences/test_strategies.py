"""The token-level strategies: segment (0.4 s grid), speech-text (one speaker, one order), alternation."""

from __future__ import annotations

import numpy as np

from tests.sentences.conftest import run_builder
from uniaudio.core.token_space import TokenLayout
from uniaudio.model.sequence import build_sequence
from uniaudio.pipelines.token_store import iter_store
from uniaudio.tokenize.text_tokenizer import TextTokenizer


def test_segment_cuts_2_to_8_consecutive_parts_on_the_grid(token_stores):
    original = {t.key: t for t in iter_store(token_stores["speech"])}
    sentences, _ = run_builder("segment", [token_stores["speech"]], seed=3)
    assert len(sentences) == len(original)
    counts = set()
    for s in sentences:
        audio = [seg for seg in s.segments if seg.modality == "audio"]
        counts.add(len(audio))
        assert 2 <= len(audio) <= 8 and s.strategy == "segment"
        src = original[s.source_keys[0]]
        reason = np.concatenate([a.reason for a in audio], axis=1)
        recon = np.concatenate([a.recon for a in audio], axis=1)
        # consecutive and complete: the parts put back together are the recording
        assert (reason == src.reason).all() and (recon == src.recon).all()
        for a in audio[:-1]:  # every inner cut on the shared grid: 2 reasoning = 5 reconstruction frames
            assert a.reason.shape[1] % 2 == 0 and a.recon.shape[1] == a.reason.shape[1] // 2 * 5
        feats = np.concatenate([a.features["hubert"] for a in audio])
        assert (feats == src.extras["hubert"].T).all()  # (D, T) in the token store, (T, D) in sentences
    assert len(counts) > 1


def test_segment_adds_time_aligned_transcripts(token_stores):
    original = {t.key: t for t in iter_store(token_stores["speech"])}
    sentences, _ = run_builder("segment", [token_stores["speech"]], seed=1)
    for s in sentences:
        texts = [seg.text for seg in s.segments if seg.modality == "text"]
        words = [w for w, _, _ in original[s.source_keys[0]].meta["source_meta"]["alignment"]]
        assert " ".join(texts).split() == words  # every word once, in order, with the part it is heard in
        assert all(prev.modality == "audio" for prev, seg in zip(s.segments, s.segments[1:], strict=False)
                   if seg.modality == "text")


def test_segment_fits_max_tokens_by_using_a_prefix(token_stores):
    sentences, _ = run_builder("segment", [token_stores["speech"]], max_tokens=40)
    assert sentences
    for s in sentences:
        assert s.num_tokens <= 40
        assert 2 <= sum(seg.modality == "audio" for seg in s.segments) <= 8


def test_speech_text_has_one_speaker_and_one_order(token_stores, text_tokenizer_dir):
    speakers = {t.key: t.meta["speaker"] for t in iter_store(token_stores["speech"])}
    sentences, skips = run_builder("speech-text", list(token_stores.values()), seed=0,
                                   tokenizer=text_tokenizer_dir)
    assert sentences
    orders = set()
    layout = TokenLayout(text=TextTokenizer.load(text_tokenizer_dir).specials)
    for s in sentences:
        assert len({speakers[k] for k in s.source_keys}) == 1 and len(s.source_keys) >= 2
        kinds = [seg.modality for seg in s.segments]
        pairs = [tuple(kinds[i : i + 2]) for i in range(0, len(kinds), 2)]
        assert len(set(pairs)) == 1 and set(pairs) <= {("audio", "text"), ("text", "audio")}
        orders.add(pairs[0])
        for i in range(0, len(s.segments), 2):  # each pair is one utterance: its audio and its transcript
            assert s.segments[i].source_key == s.segments[i + 1].source_key
        assert s.num_tokens == len(build_sequence(s.to_model_segments(), layout))
    reasons = {k.reason for k in skips}
    assert {"no speaker", "no transcript", "pool sound is not speech"} <= reasons


def test_speech_text_orders_vary_with_the_seed(token_stores):
    seen = set()
    for seed in range(6):
        sentences, _ = run_builder("speech-text", [token_stores["speech"]], seed=seed)
        seen |= {s.segments[0].modality for s in sentences}
    assert seen == {"audio", "text"}


def test_speech_text_respects_max_tokens(token_stores):
    sentences, _ = run_builder("speech-text", [token_stores["speech"]], max_tokens=150)
    assert sentences and all(s.num_tokens <= 150 for s in sentences)


def test_audio_caption_interleave_alternates(token_stores):
    sentences, skips = run_builder("audio-caption-interleave", list(token_stores.values()), seed=2)
    assert sentences
    for s in sentences:
        kinds = [(seg.modality, seg.role) for seg in s.segments]
        assert kinds == [("audio", "audio"), ("text", "caption")] * (len(kinds) // 2)
        assert 2 <= len(kinds) // 2 <= 8
        assert s.num_tokens <= 2048
    assert any(k.reason == "no caption" for k in skips)


def test_same_seed_same_sentences_other_seed_other_sentences(token_stores):
    a, _ = run_builder("segment", [token_stores["speech"]], seed=5)
    b, _ = run_builder("segment", [token_stores["speech"]], seed=5)
    c, _ = run_builder("segment", [token_stores["speech"]], seed=6)
    assert [x.header() for x in a] == [x.header() for x in b]
    assert [x.header() for x in a] != [x.header() for x in c]
