"""Generation: a tiny model memorises a TTS and an ASR sequence, then regenerates them and stops."""

from __future__ import annotations

import pytest
import torch

from uniaudio.model.config import preset
from uniaudio.model.generation import Sampling, generate_audio, generate_text
from uniaudio.model.losses import compute_loss
from uniaudio.model.network import UniAudioModel
from uniaudio.model.sequence import AudioSegment, TextSegment, build_sequence, collate

CFG = preset("tiny")
G = torch.Generator().manual_seed(0)
REASON = torch.randint(0, 64, (8, 3), generator=G)
RECON = torch.randint(0, 128, (8, 4), generator=G)
TTS = [TextSegment((20, 21, 22), role="transcription"), AudioSegment(REASON, RECON, loss=True)]
ASR = [AudioSegment(REASON, RECON), TextSegment((30, 31, 32, 33), role="transcription", loss=True)]


@pytest.fixture(scope="module")
def memorised() -> UniAudioModel:
    torch.manual_seed(0)
    model = UniAudioModel(CFG)
    batch = collate([build_sequence(TTS, CFG.tokens), build_sequence(ASR, CFG.tokens)])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = compute_loss(model(batch), batch, CFG.loss, CFG.tokens.audio)
        opt.zero_grad()
        loss.total.backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("cfg_scale", [1.0, 1.5])
def test_audio_generation_reproduces_frames_and_stops(memorised: UniAudioModel, cfg_scale: float) -> None:
    out = generate_audio(memorised, build_sequence(TTS[:1], CFG.tokens), max_frames=30, cfg_scale=cfg_scale,
                         sampling=Sampling(temperature=0))
    assert out.stopped
    assert torch.equal(out.reasoning, REASON) and torch.equal(out.reconstruction, RECON)
    expected = build_sequence([TTS[1]], CFG.tokens).tokens[:, :8]
    assert torch.equal(out.frames, expected)  # bos, codes, eos frames exactly as the sequence format lays out


def test_sampled_frames_are_well_formed_and_capped(memorised: UniAudioModel) -> None:
    a = CFG.tokens.audio
    out = generate_audio(memorised, build_sequence([TextSegment((40,), role="caption")], CFG.tokens),
                         max_frames=6, cfg_scale=2.0, sampling=Sampling(temperature=3.0, top_k=50),
                         generator=torch.Generator().manual_seed(1))
    frames = out.frames
    assert (frames[0] == a.reason_bos).all()
    for f in frames[1:]:
        first = int(f[0])
        if first in (a.reason_eos, a.recon_id(a.recon_bos), a.recon_id(a.recon_eos)):
            assert (f == first).all()
        elif first < a.reason_card:
            assert (f < a.reason_codebook_size).all()
        else:
            assert ((f >= a.reason_card) & (f < a.reason_card + a.recon_codebook_size)).all()
    generated = len(frames) - 1 - int((frames[:, 0] == a.recon_id(a.recon_bos)).sum())
    assert out.stopped or generated == 6


def test_text_generation_stops_at_end_of_text(memorised: UniAudioModel) -> None:
    text = CFG.tokens.text
    out = generate_text(memorised, build_sequence(ASR[:1], CFG.tokens), max_new_tokens=20)
    open_, close = text.marker_ids("transcription")
    assert out.stopped and out.ids == [text.begin_of_text, open_, 30, 31, 32, 33, close]
    capped = generate_text(memorised, build_sequence(ASR[:1], CFG.tokens), max_new_tokens=3,
                           sampling=Sampling(temperature=1.0, top_k=5), generator=torch.Generator().manual_seed(0))
    assert not capped.stopped and len(capped.ids) == 3


def test_kv_cached_steps_match_full_forward() -> None:
    torch.manual_seed(3)
    model = UniAudioModel(CFG).eval()
    seq = build_sequence(TTS, CFG.tokens)
    with torch.no_grad():
        full = model.hidden_states(seq.tokens[None], seq.stream_mask[None]).final
        cache = model.new_cache()
        parts = [model.hidden_states(seq.tokens[None, :4], seq.stream_mask[None, :4], cache).final]
        for t in range(4, len(seq)):
            step = slice(t, t + 1)
            parts.append(model.hidden_states(seq.tokens[None, step], seq.stream_mask[None, step], cache).final)
    assert len(cache) == len(seq)
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)
