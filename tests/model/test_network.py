"""The network: experts never touch text (logits equal the source LLaMA's), groups freeze, shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from uniaudio.model.config import LLAMA3_ROPE_SCALING, UniAudioConfig
from uniaudio.model.network import PARAM_GROUPS, UniAudioModel
from uniaudio.model.sequence import AudioSegment, TextSegment, build_sequence, collate


def _save_tiny_llama(path: Path, tie: bool = True) -> LlamaForCausalLM:
    """A tiny LLaMA-3.2-shaped model matching the ``tiny`` preset's cross-modal stack, saved as HF does."""
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=2112, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                      max_position_embeddings=131072, tie_word_embeddings=tie,
                      rope_parameters={**LLAMA3_ROPE_SCALING, "rope_theta": 500000.0})
    llama = LlamaForCausalLM(cfg).eval()
    llama.save_pretrained(path)
    return llama


@pytest.mark.parametrize("expert_sees_text", [False, True])
def test_text_logits_equal_source_llama(tmp_path: Path, tiny_config: UniAudioConfig, expert_sees_text: bool) -> None:
    llama = _save_tiny_llama(tmp_path / "llama")
    torch.manual_seed(2)
    model = UniAudioModel.from_llama(str(tmp_path / "llama"), tiny_config.with_(expert_sees_text=expert_sees_text))
    model.eval()
    segs = [[TextSegment(tuple(range(3, 40)), role="caption")], [TextSegment((7, 8, 9), role="text")]]
    batch = collate([build_sequence(s, tiny_config.tokens) for s in segs])
    with torch.no_grad():
        ours = model.logits(batch.tokens[:1], batch.stream_mask[:1])
        ref = llama(input_ids=batch.tokens[:1, :, -1]).logits
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_text_before_audio_is_untouched_and_audio_uses_experts(tmp_path: Path, tiny_config: UniAudioConfig) -> None:
    llama = _save_tiny_llama(tmp_path / "llama", tie=False)
    model = UniAudioModel.from_llama(str(tmp_path / "llama"), tiny_config).eval()
    a = tiny_config.tokens.audio
    g = torch.Generator().manual_seed(3)
    seq = build_sequence([TextSegment((11, 12, 13)), AudioSegment(torch.randint(0, 64, (8, 4), generator=g),
                                                                  torch.randint(0, 128, (8, 5), generator=g))],
                         tiny_config.tokens)
    n_text = 5
    with torch.no_grad():
        ours = model.logits(seq.tokens[None], seq.stream_mask[None])
        ref = llama(input_ids=seq.tokens[None, :n_text, -1]).logits
        torch.testing.assert_close(ours[:, :n_text], ref, rtol=1e-5, atol=1e-5)
        # audio steps do go through the generation experts: perturbing them changes audio-step outputs only
        before = model.hidden_states(seq.tokens[None], seq.stream_mask[None]).final
        model.generation.layers[0].mlp.down_proj.weight.add_(0.5)
        after = model.hidden_states(seq.tokens[None], seq.stream_mask[None]).final
    assert torch.equal(before[:, :n_text], after[:, :n_text])
    assert not torch.allclose(before[:, n_text:], after[:, n_text:])
    assert a.card == 204


def test_from_llama_reports_config_mismatch(tmp_path: Path, tiny_config: UniAudioConfig) -> None:
    _save_tiny_llama(tmp_path / "llama")
    wrong = tiny_config.with_(cross_modal=tiny_config.cross_modal.__class__(
        **{**tiny_config.cross_modal.__dict__, "n_layers": 3, "d_ff": 96}))
    with pytest.raises(ValueError, match=r"num_hidden_layers: llama 2 vs config 3.*intermediate_size"):
        UniAudioModel.from_llama(str(tmp_path / "llama"), wrong)


def test_param_groups_cover_everything_once(tiny_config: UniAudioConfig) -> None:
    from uniaudio.model.config import AuxDecoderConfig, DistillTarget

    model = UniAudioModel(tiny_config.with_(aux_decoder=AuxDecoderConfig(16, (DistillTarget("wavlm", 4, 4),))))
    groups = model.param_groups()
    assert set(groups) == set(PARAM_GROUPS) and all(groups.values())
    named = [n for ps in groups.values() for n, _ in ps]
    assert sorted(named) == sorted(n for n, _ in model.named_parameters())


def test_root_module_holds_no_parameter_of_its_own(tiny_model: UniAudioModel) -> None:
    """ZeRO-3 gathers a parameter only around its module's forward and backward, and the root's backward hook
    never fires (its output, TrainOutput, is opaque to DeepSpeed): every weight lives in a submodule."""
    assert list(tiny_model.named_parameters(recurse=False)) == []
    assert tiny_model.state_dict()["audio_head.weight"].shape == (8, tiny_model.config.local_decoder.d_model,
                                                                  tiny_model.config.tokens.audio.card)


def test_frozen_groups_stay_bit_identical(tiny_model: UniAudioModel, tiny_config: UniAudioConfig) -> None:
    from uniaudio.model.losses import compute_loss

    model = tiny_model.train()
    model.set_trainable({"generation", "local_decoder"})
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    g = torch.Generator().manual_seed(4)
    batch = collate([build_sequence([TextSegment((5, 6), role="transcription"),
                                     AudioSegment(torch.randint(0, 64, (8, 3), generator=g),
                                                  torch.randint(0, 128, (8, 4), generator=g), loss=True)],
                                    tiny_config.tokens)])
    compute_loss(model(batch), batch, tiny_config.loss, tiny_config.tokens.audio).total.backward()
    opt.step()
    groups = model.param_groups()
    for group, params in groups.items():
        for name, p in params:
            if group in {"generation", "local_decoder"}:
                assert not torch.equal(p, before[name]), f"{name} ({group}) did not train"
            else:
                assert torch.equal(p, before[name]), f"{name} ({group}) changed while frozen"


def test_gradient_checkpointing_matches_plain_backward(tiny_model: UniAudioModel, tiny_config: UniAudioConfig) -> None:
    from uniaudio.model.losses import compute_loss

    g = torch.Generator().manual_seed(5)
    batch = collate([build_sequence([TextSegment((5, 6), loss=True),
                                     AudioSegment(torch.randint(0, 64, (8, 2), generator=g), None, loss=True)],
                                    tiny_config.tokens)])
    grads = []
    for enabled in (False, True):
        tiny_model.zero_grad()
        tiny_model.train().set_gradient_checkpointing(enabled)
        loss = compute_loss(tiny_model(batch), batch, tiny_config.loss, tiny_config.tokens.audio)
        loss.total.backward()
        grads.append(tiny_model.understanding.layers[0].self_attn.q_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_sequence_longer_than_context_is_refused(tiny_model: UniAudioModel, tiny_config: UniAudioConfig) -> None:
    seq = build_sequence([TextSegment(tuple(range(600)))], tiny_config.tokens)
    with pytest.raises(ValueError, match="602 steps exceed max_seq_len=512 of config 'tiny'"):
        tiny_model.logits(seq.tokens[None], seq.stream_mask[None])


def test_stage_one_trains_audio_embeddings_with_text_embeddings_frozen(tiny_config: UniAudioConfig) -> None:
    from uniaudio.model.config import AuxDecoderConfig, DistillTarget
    from uniaudio.model.losses import compute_loss

    torch.manual_seed(0)
    cfg = tiny_config.with_(aux_decoder=AuxDecoderConfig(16, (DistillTarget("wavlm", 4, 1),)))
    model = UniAudioModel(cfg).train()
    trained = {"understanding", "audio_embeddings", "aux_decoder"}
    model.set_trainable(trained)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    g = torch.Generator().manual_seed(6)
    batch = collate([build_sequence([AudioSegment(torch.randint(0, 64, (8, 3), generator=g),
                                                  torch.randint(0, 128, (8, 4), generator=g),
                                                  features={"wavlm": torch.randn(4, 4, generator=g)}),
                                     TextSegment((5, 6, 7), role="caption", loss=True)],
                                    cfg.tokens, cfg.aux_decoder)])
    compute_loss(model(batch), batch, cfg.loss, cfg.tokens.audio).total.backward()
    opt.step()
    for group, params in model.param_groups().items():
        changed = any(not torch.equal(p, before[n]) for n, p in params)
        assert changed == (group in trained), group
    with pytest.raises(ValueError, match="'embeddings' is now 'text_embeddings' \\+ 'audio_embeddings'"):
        model.set_trainable({"embeddings"})
