"""Interchange with the released checkpoint names (reference-code.md §9), built here at tiny size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from uniaudio.model.config import UniAudioConfig
from uniaudio.model.official import export_official, import_official, read_official_state

REASON_CARD, RECON_CARD = 68, 140  # V = 208: the recon card differs from the tiny preset's (136)


def _released_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Released names and shapes for tiny sizes: D=64 (4 heads, 2 KV, MLP 128), decoder 32 (2 heads, 1 KV)."""
    g = torch.Generator().manual_seed(seed)
    v = REASON_CARD + RECON_CARD

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    state = {"backbone.transformer.wte.weight": r(2112, 64), "backbone.lm_head.weight": r(2112, 64),
             "audio_embeddings.weight": r(8 * v, 64), "projection.weight": r(32, 64), "audio_head": r(8, 32, v)}
    stacks = {"backbone.transformer": (2, 64, 64 + 2 * 32, 128),
              "audio_understanding_expert.transformer": (1, 64, 64 + 2 * 32, 128),
              "audio_generation_expert.transformer": (1, 64, 64 + 2 * 32, 128),
              "decoder.transformer": (1, 32, 32 + 2 * 16, 64)}
    for prefix, (n, d, qkv, ff) in stacks.items():
        state[f"{prefix}.ln_f.weight"] = r(d)
        for i in range(n):
            h = f"{prefix}.h.{i}"
            state.update({f"{h}.norm_1.weight": r(d), f"{h}.norm_2.weight": r(d), f"{h}.attn.qkv.weight": r(qkv, d),
                          f"{h}.attn.proj.weight": r(d, d), f"{h}.mlp.fc_1.weight": r(ff, d),
                          f"{h}.mlp.fc_2.weight": r(ff, d), f"{h}.mlp.proj.weight": r(d, ff)})
    return state


def test_import_export_round_trip(tmp_path: Path, tiny_config: UniAudioConfig) -> None:
    state = _released_state()
    src = tmp_path / "ep3.checkpoint"
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "step": torch.tensor(3)}, src)
    model = import_official(src, tiny_config)
    a = model.config.tokens.audio
    assert (a.reason_card, a.recon_card, a.card) == (REASON_CARD, RECON_CARD, 208)
    layer = model.cross_modal.layers[1].self_attn
    qkv = state["backbone.transformer.h.1.attn.qkv.weight"]
    assert torch.equal(layer.q_proj.weight, qkv[:64]) and torch.equal(layer.k_proj.weight, qkv[64:96])
    assert torch.equal(layer.v_proj.weight, qkv[96:])
    assert torch.equal(model.local_decoder.layers[0].mlp.gate_proj.weight,
                       state["decoder.transformer.h.0.mlp.fc_1.weight"])
    assert torch.equal(model.understanding.norm.weight, state["audio_understanding_expert.transformer.ln_f.weight"])
    for suffix in (".checkpoint", ".safetensors"):
        out = tmp_path / f"export{suffix}"
        export_official(model, out)
        back = read_official_state(out)
        assert sorted(back) == sorted(state)
        assert all(torch.equal(back[k], state[k]) for k in state)


def test_import_lists_every_problem(tmp_path: Path, tiny_config: UniAudioConfig) -> None:
    state = _released_state()
    del state["backbone.transformer.h.0.norm_1.weight"]
    state["backbone.transformer.h.1.attn.proj.weight"] = torch.zeros(64, 63)
    state["audio_generation_expert.transformer.h.0.mlp.extra.weight"] = torch.zeros(1)
    src = tmp_path / "bad.safetensors"
    from safetensors.torch import save_file

    save_file(state, str(src))
    with pytest.raises(ValueError, match=r"no counterpart: \['audio_generation_expert.transformer.h.0.mlp.extra"):
        import_official(src, tiny_config)
    del state["audio_generation_expert.transformer.h.0.mlp.extra.weight"]
    save_file(state, str(src))
    with pytest.raises(ValueError, match=r"missing keys \(1\).*input_layernorm.*mis-shaped keys \(1\).*o_proj"):
        import_official(src, tiny_config)


def test_import_refuses_pickled_objects(tmp_path: Path, tiny_config: UniAudioConfig) -> None:
    import argparse

    src = tmp_path / "with_args.checkpoint"
    torch.save({"model": _released_state(), "args": argparse.Namespace(lr=1)}, src)
    with pytest.raises(ValueError, match="weights_only=True"):
        import_official(src, tiny_config)
