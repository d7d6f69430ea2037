"""Loss weights and per-stream metrics."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from uniaudio.model.config import LossConfig, UniAudioConfig
from uniaudio.model.losses import compute_loss
from uniaudio.model.network import UniAudioModel
from uniaudio.model.sequence import AudioSegment, TextSegment, build_sequence, collate


def _batch(config: UniAudioConfig, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return collate([build_sequence([TextSegment((5, 6, 7), role="caption", loss=True),
                                    AudioSegment(torch.randint(0, 64, (8, 3), generator=g),
                                                 torch.randint(0, 128, (8, 4), generator=g), loss=True)],
                                   config.tokens)])


def test_changing_one_codebook_moves_audio_loss_by_its_weight(tiny_model: UniAudioModel,
                                                               tiny_config: UniAudioConfig) -> None:
    batch = _batch(tiny_config)
    with torch.no_grad():
        out = tiny_model(batch)
    weights = tiny_config.loss.codebook_weights
    assert weights == (0.25, 0.25, 0.25, 0.125, 0.125, 0.125, 0.125, 0.125)
    audio = tiny_config.tokens.audio
    base = compute_loss(out, batch, tiny_config.loss, audio).audio
    for k in (0, 5):
        changed = out.audio_targets.clone()
        changed[:, k] = (changed[:, k] + 17) % tiny_config.tokens.audio.card
        moved = compute_loss(replace(out, audio_targets=changed), batch, tiny_config.loss, audio).audio
        ce_old = F.cross_entropy(out.audio_logits[:, k], out.audio_targets[:, k])
        ce_new = F.cross_entropy(out.audio_logits[:, k], changed[:, k])
        torch.testing.assert_close(moved - base, weights[k] * (ce_new - ce_old), rtol=1e-4, atol=1e-6)
        assert abs(float(ce_new - ce_old)) > 1e-3


def test_total_is_weighted_sum_and_metrics_split_streams(tiny_model: UniAudioModel,
                                                         tiny_config: UniAudioConfig) -> None:
    batch = _batch(tiny_config, seed=1)
    out = tiny_model(batch)
    cfg = LossConfig(text_weight=1.6, audio_weight=1.0)
    loss = compute_loss(out, batch, cfg, tiny_config.tokens.audio)
    torch.testing.assert_close(loss.total, 1.6 * loss.text + 1.0 * loss.audio)
    torch.testing.assert_close(loss.text, F.cross_entropy(out.text_logits, out.text_targets))
    m = loss.metrics
    # text: bos <caption> 5 6 7 </caption> eos scored from the step before each (the first one has none)
    assert m["text_count"] == 6
    # reasoning frames: bos, 3 codes, eos; reconstruction frames: bos, 4 codes, eos
    assert m["reason_cb0_count"] == 5 and m["recon_cb7_count"] == 6
    is_reason = out.audio_targets[:, 2] < tiny_config.tokens.audio.reason_card
    manual = F.cross_entropy(out.audio_logits[is_reason, 2], out.audio_targets[is_reason, 2])
    torch.testing.assert_close(m["reason_cb2_loss"], manual.detach())
    hits = (out.audio_logits[~is_reason, 3].argmax(-1) == out.audio_targets[~is_reason, 3]).float().mean()
    torch.testing.assert_close(m["recon_cb3_acc"], hits)
    loss.total.backward()
    assert tiny_model.lm_head.weight.grad is not None and tiny_model.audio_head.weight.grad is not None


def test_aux_distillation_loss_is_added_in_stage_one(tiny_config: UniAudioConfig) -> None:
    from uniaudio.model.config import AuxDecoderConfig, DistillTarget

    cfg = tiny_config.with_(aux_decoder=AuxDecoderConfig(16, (DistillTarget("wavlm", 6, 4),
                                                              DistillTarget("musicfm", 5, 2))))
    torch.manual_seed(0)
    model = UniAudioModel(cfg)
    feats = {"wavlm": torch.randn(16, 6), "musicfm": torch.randn(8, 5)}
    batch = collate([build_sequence([AudioSegment(torch.randint(0, 64, (8, 2)), torch.randint(0, 128, (8, 4)),
                                                  loss=True, features=feats)], cfg.tokens, cfg.aux_decoder)])
    out = model(batch)
    assert out.aux["wavlm"].shape == (4, 4, 6) and out.aux["musicfm"].shape == (4, 2, 5)
    loss = compute_loss(out, batch, cfg.loss, cfg.tokens.audio)
    expected = ((out.aux["wavlm"] - feats["wavlm"].view(4, 4, 6)) ** 2).mean()
    expected = (expected + ((out.aux["musicfm"] - feats["musicfm"].view(4, 2, 5)) ** 2).mean()) / 2
    torch.testing.assert_close(loss.aux, expected)
    torch.testing.assert_close(loss.total, 1.6 * loss.text + loss.audio + cfg.loss.aux_weight * loss.aux)
    loss.total.backward()
    assert model.aux_decoder.heads["wavlm"][0].weight.grad.abs().sum() > 0
    model.drop_aux_decoder()
    assert model.aux_decoder is None and model.config.aux_decoder is None
    assert not any(n.startswith("aux_decoder.") for n in model.state_dict())


def test_text_only_and_audio_only_batches(tiny_model: UniAudioModel, tiny_config: UniAudioConfig) -> None:
    for segs, scored in (([TextSegment((1, 2, 3), loss=True)], "text"),
                         ([AudioSegment(torch.zeros(8, 0, dtype=torch.long), torch.randint(0, 128, (8, 3)),
                                        loss=True)], "audio")):
        batch = collate([build_sequence(segs, tiny_config.tokens)])
        loss = compute_loss(tiny_model(batch), batch, tiny_config.loss, tiny_config.tokens.audio)
        loss.total.backward()
        text, audio = float(loss.metrics["text_loss"]), float(loss.metrics["audio_loss"])
        assert (text > 0) == (scored == "text") and (audio > 0) == (scored == "audio")
