"""Packed rows: equal to the samples run one by one, no NaN on padding, row planning."""

from __future__ import annotations

import warnings

import pytest
import torch

from uniaudio.model.config import AuxDecoderConfig, DistillTarget, UniAudioConfig
from uniaudio.model.losses import compute_loss, scored_counts
from uniaudio.model.network import UniAudioModel
from uniaudio.model.packing import pack, packing_efficiency, plan_rows
from uniaudio.model.sequence import AudioSegment, TextSegment, TokenSequence, build_sequence, collate, collate_packed

AUX = AuxDecoderConfig(16, (DistillTarget("wavlm", 6, 1), DistillTarget("music", 5, 1)))


def _samples(config: UniAudioConfig, seed: int = 0) -> list[TokenSequence]:
    """Five samples of different kinds and lengths (ASR-like, TTS-like with features, text-only, audio-only)."""
    g = torch.Generator().manual_seed(seed)
    a = config.tokens.audio

    def codes(size: int, n: int) -> torch.Tensor:
        return torch.randint(0, size, (a.n_codebooks, n), generator=g)

    def words(n: int) -> tuple[int, ...]:
        return tuple(torch.randint(0, 400, (n,), generator=g).tolist())

    feats = {"wavlm": torch.randn(5, 6, generator=g), "music": torch.randn(5, 5, generator=g)}
    segs = [
        [TextSegment(words(3), role="prompt"), AudioSegment(codes(64, 2), codes(128, 4)),
         TextSegment(words(4), role="transcription", loss=True)],
        [TextSegment(words(5), role="transcription"),
         AudioSegment(codes(64, 3), codes(128, 5), loss=True, features=feats)],
        [TextSegment(words(9), loss=True)],
        [AudioSegment(codes(64, 1), codes(128, 3), loss=True)],
        [TextSegment(words(2), role="caption", loss=True), AudioSegment(None, codes(128, 2), loss=True)],
    ]
    return [build_sequence(s, config.tokens, config.aux_decoder) for s in segs]


@pytest.fixture
def aux_model(tiny_config: UniAudioConfig) -> UniAudioModel:
    torch.manual_seed(0)
    return UniAudioModel(tiny_config.with_(aux_decoder=AUX)).eval()


def test_packed_batch_equals_samples_run_one_by_one(aux_model: UniAudioModel) -> None:
    cfg = aux_model.config
    seqs = _samples(cfg)
    length = 40
    plan = plan_rows([len(s) for s in seqs], length)
    assert len(plan) < len(seqs) and any(len(row) > 1 for row in plan)
    batch = collate_packed([[seqs[i] for i in row] for row in plan], length)
    assert batch.n_samples == len(seqs)
    packed = aux_model.hidden_states(batch.tokens, batch.stream_mask, position_ids=batch.position_ids,
                                     document_ids=batch.document_ids)
    singles = [collate([s]) for s in seqs]
    for r, row in enumerate(plan):
        start = 0
        for i in row:
            alone = aux_model.hidden_states(seqs[i].tokens[None], seqs[i].stream_mask[None])
            end = start + len(seqs[i])
            torch.testing.assert_close(packed.final[r, start:end], alone.final[0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(aux_model.text_logits(packed.final[r, start:end]),
                                       aux_model.text_logits(alone.final[0]), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(packed.understanding[r, start:end], alone.understanding[0],
                                       rtol=1e-5, atol=1e-5)
            start = end

    # losses: the packed sums are the sums of the samples' sums, over the same counts
    loss = compute_loss(aux_model(batch), batch, cfg.loss, cfg.tokens.audio)
    parts = [compute_loss(aux_model(b), b, cfg.loss, cfg.tokens.audio) for b in singles]
    torch.testing.assert_close(loss.sums, torch.stack([p.sums for p in parts]).sum(0), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(loss.counts, sum(scored_counts(b, cfg.aux_decoder) for b in singles))
    total = sum(p.counts for p in parts)
    assert total[0] > 0 and total[1] > 0 and total[2] == 5 and total[3] == 5
    means = loss.sums / total
    expected = 1.6 * means[0] + means[1] + cfg.loss.aux_weight * means[2:].mean()
    torch.testing.assert_close(loss.total, expected, rtol=1e-5, atol=1e-5)


def test_flex_block_mask_matches_sdpa(aux_model: UniAudioModel) -> None:
    """The flex path's mask on CPU (eager flex attention, forward only: PyTorch has no CPU flex backward)."""
    batch = pack(_samples(aux_model.config, seed=1), 48)
    with torch.no_grad():
        sdpa = aux_model.hidden_states(batch.tokens, batch.stream_mask, position_ids=batch.position_ids,
                                       document_ids=batch.document_ids).final
        aux_model.set_attention("flex")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # eager flex attention warns that it is unfused
            flex = aux_model.hidden_states(batch.tokens, batch.stream_mask, position_ids=batch.position_ids,
                                           document_ids=batch.document_ids).final
    real = batch.document_ids >= 0
    torch.testing.assert_close(flex[real], sdpa[real], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="unknown attention kind 'flash'"):
        aux_model.set_attention("flash")


def test_padding_gives_no_nan_and_no_gradient(aux_model: UniAudioModel) -> None:
    cfg = aux_model.config
    model = aux_model.train()
    seqs = _samples(cfg)
    batch = collate_packed([[seqs[2]], [seqs[0], seqs[3]]], 64)  # mostly padding
    assert packing_efficiency(batch) < 0.5
    hidden = model.hidden_states(batch.tokens, batch.stream_mask, position_ids=batch.position_ids,
                                 document_ids=batch.document_ids)
    assert torch.isfinite(hidden.final).all()
    loss = compute_loss(model(batch), batch, cfg.loss, cfg.tokens.audio)
    loss.total.backward()
    assert torch.isfinite(loss.total)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # changing the padding's tokens changes nothing the real steps see
    other = collate_packed([[seqs[2]], [seqs[0], seqs[3]]], 64)
    other.tokens[batch.document_ids < 0] = 7
    other.stream_mask[batch.document_ids < 0] = True
    again = model.hidden_states(other.tokens, other.stream_mask, position_ids=other.position_ids,
                                document_ids=other.document_ids)
    real = batch.document_ids >= 0
    torch.testing.assert_close(again.final[real], hidden.final[real])


def test_every_module_runs_whatever_the_batch_holds(aux_model: UniAudioModel) -> None:
    """A text-only batch without features still gives every parameter a gradient (zero where nothing is
    scored), so DDP/ZeRO ranks never run different modules."""
    cfg = aux_model.config
    model = aux_model.train()
    batch = collate([build_sequence([TextSegment((4, 5, 6), loss=True)], cfg.tokens)])  # no aux fields at all
    assert batch.distill_targets == {} and len(batch.distill_positions) == 0
    out = model(batch)
    assert out.audio_logits.shape[0] == 1 and bool((out.audio_targets == -100).all())
    assert all(v.shape[0] == 1 and not v.any() for v in out.aux_valid.values())
    loss = compute_loss(out, batch, cfg.loss, cfg.tokens.audio)
    loss.total.backward()
    assert loss.audio.item() == 0.0 and loss.aux.item() == 0.0 and loss.text.item() > 0
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    assert float(model.audio_head.weight.grad.abs().sum()) == 0.0
    assert float(model.aux_decoder.heads["wavlm"][0].weight.grad.abs().sum()) == 0.0


def test_global_counts_weigh_every_token_alike(aux_model: UniAudioModel) -> None:
    """Two micro-batches normalised by their summed counts give the gradient of one batch holding both."""
    cfg = aux_model.config
    model = aux_model.train()
    seqs = _samples(cfg)
    micro = [collate(seqs[:1], pad_to=40), collate(seqs[1:], pad_to=40)]
    counts = sum(scored_counts(b, cfg.aux_decoder) for b in micro)

    def grads() -> list[torch.Tensor]:
        out = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        return out

    for b in micro:
        compute_loss(model(b), b, cfg.loss, cfg.tokens.audio, counts=counts).total.backward()
    accumulated = grads()
    whole = collate(seqs, pad_to=40)
    compute_loss(model(whole), whole, cfg.loss, cfg.tokens.audio).total.backward()
    for a, b in zip(accumulated, grads(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="counts has shape"):
        compute_loss(model(whole), whole, cfg.loss, cfg.tokens.audio, counts=counts[:2])


def test_plan_rows_fits_deterministically() -> None:
    lengths = [7, 3, 9, 2, 5, 5, 1, 8]
    plan = plan_rows(lengths, 10)
    assert plan == plan_rows(lengths, 10)
    assert sorted(i for row in plan for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 10 for row in plan)
    assert plan == [[2, 6], [3, 7], [0, 1], [4, 5]]  # 40 steps in 4 full rows, the largest placed first
    with pytest.raises(ValueError, match="sample 2 has 9 steps, more than the row length 8"):
        plan_rows(lengths, 8)


def test_collate_packed_layout(tiny_config: UniAudioConfig) -> None:
    seqs = _samples(tiny_config)[2:4]
    batch = collate_packed([seqs], 30)
    n0, n1 = len(seqs[0]), len(seqs[1])
    assert batch.document_ids[0].tolist() == [0] * n0 + [1] * n1 + [-1] * (30 - n0 - n1)
    assert batch.position_ids[0, :n0 + n1].tolist() == list(range(n0)) + list(range(n1))
    # no target crosses the boundary: the last step of sample 0 predicts nothing
    assert bool((batch.labels[0, n0 - 1] == -100).all())
    assert packing_efficiency(batch) == pytest.approx((n0 + n1) / 30)
    with pytest.raises(ValueError, match="row 0 holds"):
        collate_packed([seqs], n0 + n1 - 1)


def test_all_padding_rows_and_batches_are_finite(aux_model: UniAudioModel) -> None:
    """An empty row (all padding), or a whole batch of them (a rank with nothing left to score), runs every
    module and gives a zero, finite loss."""
    cfg = aux_model.config
    model = aux_model.train()
    seqs = _samples(cfg)
    mixed = collate_packed([[seqs[1]], []], 32)
    assert mixed.n_samples == 1 and bool((mixed.document_ids[1] == -1).all())
    empty = collate_packed([[], []], 32, n_streams=cfg.n_streams)
    assert empty.n_samples == 0 and float(scored_counts(empty, cfg.aux_decoder).sum()) == 0
    for batch in (mixed, empty):
        model.zero_grad()
        hidden = model.hidden_states(batch.tokens, batch.stream_mask, position_ids=batch.position_ids,
                                     document_ids=batch.document_ids)
        assert torch.isfinite(hidden.final).all()
        loss = compute_loss(model(batch), batch, cfg.loss, cfg.tokens.audio)
        loss.total.backward()
        assert torch.isfinite(loss.total)
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert loss.total.item() == 0.0
    with pytest.raises(ValueError, match="every row is empty; pass n_streams"):
        collate_packed([[]], 8)
