"""Sequence format: layout of the released code, round trip, labels, CFG copy, collation."""

from __future__ import annotations

import pytest
import torch

from uniaudio.core.token_space import TokenLayout
from uniaudio.model.config import AuxDecoderConfig, DistillTarget
from uniaudio.model.sequence import (
    IGNORE,
    AudioSegment,
    TextSegment,
    build_sequence,
    collate,
    parse_sequence,
)


def _codes(size: int, t: int, seed: int) -> torch.Tensor:
    return torch.randint(0, size, (8, t), generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def layout() -> TokenLayout:
    return TokenLayout()  # the released-size layout: cards 4100 / 8200, LLaMA-3.2 text ids


def test_audio_item_layout_matches_released(layout: TokenLayout) -> None:
    reason, recon = _codes(4096, 3, 1), _codes(8192, 5, 2)
    seq = build_sequence([AudioSegment(reason, recon, loss=True)], layout)
    a = layout.audio
    assert seq.tokens.shape == (1 + 3 + 1 + 1 + 5 + 1, 9)
    assert (seq.tokens[0, :8] == a.reason_bos).all()
    assert torch.equal(seq.tokens[1:4, :8], reason.T)
    assert (seq.tokens[4, :8] == a.reason_eos).all()
    # reconstruction frames and their brackets are offset by the reasoning card (RC = 4100)
    assert (seq.tokens[5, :8] == a.recon_bos + 4100).all()
    assert torch.equal(seq.tokens[6:11, :8], recon.T + 4100)
    assert (seq.tokens[11, :8] == a.recon_eos + 4100).all()
    # audio steps: [c1..c8, 0] with mask [T]*8 + [F]
    assert (seq.tokens[:, 8] == 0).all()
    assert seq.stream_mask[:, :8].all() and not seq.stream_mask[:, 8].any()
    assert seq.loss_mask[:, :8].all()


def test_text_item_layout(layout: TokenLayout) -> None:
    seq = build_sequence([TextSegment((10, 11), role="transcription", loss=True)], layout)
    assert seq.tokens[:, 8].tolist() == [128000, 128011, 10, 11, 128012, 128001]
    assert (seq.tokens[:, :8] == 0).all()
    assert seq.stream_mask[:, 8].all() and not seq.stream_mask[:, :8].any()


def test_round_trip(layout: TokenLayout) -> None:
    segments = [
        TextSegment((5, 6, 7), role="prompt"),
        AudioSegment(reconstruction=_codes(8192, 4, 3), role="audio_prompt"),
        TextSegment((1, 2), role="caption"),
        AudioSegment(_codes(4096, 2, 4), _codes(8192, 6, 5), loss=False),
        TextSegment((9, 8, 7), role="transcription", loss=True),
        AudioSegment(reasoning=_codes(4096, 3, 6), loss=True),
        AudioSegment(reconstruction=_codes(8192, 2, 7), loss=False),
    ]
    parsed = parse_sequence(build_sequence(segments, layout), layout)
    assert len(parsed) == len(segments)
    for got, want in zip(parsed, segments, strict=True):
        assert type(got) is type(want) and got.loss == want.loss
        if isinstance(want, TextSegment):
            assert got.ids == want.ids
            assert got.role == ("text" if want.role == "prompt" else want.role)
        else:
            assert got.role == want.role
            for part in ("reasoning", "reconstruction"):
                w, g = getattr(want, part), getattr(got, part)
                assert (w is None and g is None) or torch.equal(g, w)


def test_labels_shift_targets(layout: TokenLayout) -> None:
    seq = build_sequence([TextSegment((3,), role="text"), TextSegment((4,), role="answer", loss=True)], layout)
    labels = seq.labels()
    # steps: bos 3 eos | bos <answer> 4 </answer> eos ; the answer's steps are predicted one step earlier
    assert labels[:, 8].tolist() == [IGNORE, IGNORE, 128000, 128017, 4, 128005, 128001, IGNORE]
    assert (labels[:, :8] == IGNORE).all()


def test_unconditional_copy_pads_condition_only(layout: TokenLayout) -> None:
    seq = build_sequence([TextSegment((1, 2), role="prompt"), TextSegment((3, 4), role="caption"),
                          AudioSegment(_codes(4096, 2, 8), None), AudioSegment(None, _codes(8192, 2, 9)),
                          TextSegment((5,), role="transcription", loss=True)], layout)
    assert [(s.role, s.start, s.end) for s in seq.spans] == [
        ("prompt", 0, 4), ("caption", 4, 10), ("audio", 10, 14), ("audio", 14, 18), ("transcription", 18, 23)]
    unc = seq.unconditional(layout)
    a = layout.audio
    assert torch.equal(unc.tokens[:4], seq.tokens[:4])  # the task instruction stays
    assert (unc.tokens[4:10, 8] == layout.text.text_pad).all()
    assert (unc.tokens[10:14, :8] == a.reason_pad).all()
    assert (unc.tokens[14:18, :8] == a.recon_pad + a.reason_card).all()
    assert torch.equal(unc.tokens[18:], seq.tokens[18:])
    assert torch.equal(unc.stream_mask, seq.stream_mask)


def test_invalid_inputs_raise(layout: TokenLayout) -> None:
    with pytest.raises(ValueError, match=r"reasoning: codes must lie in \[0, 4096\)"):
        build_sequence([AudioSegment(torch.full((8, 2), 4096), None)], layout)
    with pytest.raises(ValueError, match="expected codes of shape"):
        build_sequence([AudioSegment(torch.zeros(7, 2, dtype=torch.long), None)], layout)
    with pytest.raises(ValueError, match="role 'lyrics' is unknown"):
        build_sequence([TextSegment((1,), role="lyrics")], layout)


def test_collate_pads_and_aligns_distillation(layout: TokenLayout) -> None:
    aux = AuxDecoderConfig(hidden=8, targets=(DistillTarget("wavlm", 3, 4),))
    feats = torch.randn(9, 3)  # 9 of the 3 * 4 = 12 feature frames are present
    s1 = build_sequence([TextSegment((1,)), AudioSegment(_codes(4096, 1, 1), _codes(8192, 3, 2), loss=True,
                                                         features={"wavlm": feats})], layout, aux)
    s2 = build_sequence([TextSegment((2, 3), loss=True)], layout, aux)
    batch = collate([s1, s2])
    t = len(s1)
    assert batch.tokens.shape == (2, t, 9)
    assert not batch.stream_mask[1, len(s2):].any() and (batch.labels[1, len(s2) - 1:] == IGNORE).all()
    # reconstruction frames sit after text(3) + reason bos/code/eos(3) + recon bos(1)
    assert batch.distill_positions.tolist() == [7, 8, 9]
    assert torch.equal(batch.distill_targets["wavlm"].reshape(-1, 3)[:9], feats)
    assert batch.distill_valid["wavlm"].reshape(-1).tolist() == [True] * 9 + [False] * 3
