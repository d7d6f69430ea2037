"""Interchange with the released UniAudio 2.0 LLM checkpoint (litgpt-style names, ``Model_stage3``).

Released name (optionally prefixed ``module.``)              → this model
- ``backbone.transformer.wte.weight``                           → ``text_embeddings.weight``
- ``backbone.lm_head.weight``                                   → ``lm_head.weight``
- ``backbone.transformer`` / ``audio_understanding_expert.transformer`` /
  ``audio_generation_expert.transformer`` / ``decoder.transformer``
                                                                → ``cross_modal`` / ``understanding`` /
                                                                  ``generation`` / ``local_decoder``, with
  ``h.{i}.norm_1|norm_2`` → ``layers.{i}.input_layernorm|post_attention_layernorm``,
  ``h.{i}.attn.qkv`` [q | k | v rows, non-interleaved] → ``q_proj``/``k_proj``/``v_proj``,
  ``h.{i}.attn.proj`` → ``o_proj``, ``mlp.fc_1|fc_2|proj`` → ``gate_proj|up_proj|down_proj``,
  ``ln_f`` → ``norm``
- ``audio_embeddings.weight``, ``projection.weight`` (→ ``local_projection.weight``), ``audio_head``
  (→ ``audio_head.weight``).

The released file is ``torch.save({"model": state_dict, ...})``; it is read with ``weights_only=True``
(no unpickling of arbitrary objects). The cards come from the checkpoint: ``V = audio_head.shape[-1]``,
``recon_card = V - reason_card``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from uniaudio.model.checkpoint import load_strict
from uniaudio.model.config import StackConfig, UniAudioConfig
from uniaudio.model.network import UniAudioModel

_STACKS = {
    "backbone.transformer.": "cross_modal.",
    "audio_understanding_expert.transformer.": "understanding.",
    "audio_generation_expert.transformer.": "generation.",
    "decoder.transformer.": "local_decoder.",
}
_TOP = {
    "backbone.transformer.wte.weight": "text_embeddings.weight",
    "backbone.lm_head.weight": "lm_head.weight",
    "audio_embeddings.weight": "audio_embeddings.weight",
    "projection.weight": "local_projection.weight",
    "audio_head": "audio_head.weight",
}
_LAYER = {
    "norm_1.weight": "input_layernorm.weight",
    "norm_2.weight": "post_attention_layernorm.weight",
    "attn.proj.weight": "self_attn.o_proj.weight",
    "mlp.fc_1.weight": "mlp.gate_proj.weight",
    "mlp.fc_2.weight": "mlp.up_proj.weight",
    "mlp.proj.weight": "mlp.down_proj.weight",
}
_LAYER_KEY = re.compile(r"h\.(\d+)\.(.+)")


def read_official_state(path: str | Path) -> dict[str, Tensor]:
    """The released checkpoint's model tensors: ``.safetensors``, or a ``torch.save`` file holding either
    ``{"model": state_dict}`` or a bare state dict (loaded with ``weights_only=True``); strips ``module.``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"{path}: not loadable as tensors with weights_only=True ({e})") from e
        state = obj.get("model", obj) if isinstance(obj, dict) else None
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise ValueError(f"{path}: expected a state dict of tensors (or {{'model': state_dict}})")
    return {k.removeprefix("module."): v for k, v in state.items()}


def config_for_official(state: dict[str, Tensor], base: UniAudioConfig) -> UniAudioConfig:
    """``base`` with the audio cards read from the checkpoint (``V = audio_head.shape[-1]``)."""
    if "audio_head" not in state:
        raise ValueError("official checkpoint has no 'audio_head' (is it a UniAudio 2.0 LLM checkpoint?)")
    card = int(state["audio_head"].shape[-1])
    a = base.tokens.audio
    recon_card = card - a.reason_card
    if recon_card <= a.recon_codebook_size:
        raise ValueError(f"official checkpoint: V={card} leaves recon_card={recon_card} for reason_card="
                         f"{a.reason_card}; pass the checkpoint's reason card")
    return base.with_(tokens=replace(base.tokens, audio=replace(a, recon_card=recon_card)))


def official_to_native(state: dict[str, Tensor], config: UniAudioConfig) -> dict[str, Tensor]:
    """Rename (and split ``attn.qkv``) released tensors into this model's names; unknown names raise."""
    out: dict[str, Tensor] = {}
    unknown = []
    for name, t in state.items():
        if name in _TOP:
            out[_TOP[name]] = t
            continue
        prefix = next((p for p in _STACKS if name.startswith(p)), None)
        if prefix is None:
            unknown.append(name)
            continue
        stack, rest = _STACKS[prefix], name[len(prefix):]
        if rest == "ln_f.weight":
            out[stack + "norm.weight"] = t
            continue
        m = _LAYER_KEY.fullmatch(rest)
        if m is None:
            unknown.append(name)
            continue
        layer, key = f"{stack}layers.{m.group(1)}.", m.group(2)
        if key == "attn.qkv.weight":
            q, k, v = _split_qkv(t, getattr(config, stack.rstrip(".")), name)
            out[layer + "self_attn.q_proj.weight"] = q
            out[layer + "self_attn.k_proj.weight"] = k
            out[layer + "self_attn.v_proj.weight"] = v
        elif key in _LAYER:
            out[layer + _LAYER[key]] = t
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"official checkpoint: {len(unknown)} tensors with no counterpart: {sorted(unknown)}")
    return out


def native_to_official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of :func:`official_to_native` (the auxiliary decoder has no released counterpart)."""
    top = {v: k for k, v in _TOP.items()}
    stacks = {v: k for k, v in _STACKS.items()}
    layer_names = {v: k for k, v in _LAYER.items()}
    out: dict[str, Tensor] = {}
    for name, t in state.items():
        if name in top:
            out[top[name]] = t
            continue
        if name.startswith("aux_decoder."):
            raise ValueError("export: drop the auxiliary decoder first (the released model has none)")
        stack = next(s for s in stacks if name.startswith(s))
        rest = name[len(stack):]
        if rest == "norm.weight":
            out[stacks[stack] + "ln_f.weight"] = t
            continue
        idx, key = re.fullmatch(r"layers\.(\d+)\.(.+)", rest).groups()
        base = f"{stacks[stack]}h.{idx}."
        if key in ("self_attn.k_proj.weight", "self_attn.v_proj.weight"):
            continue
        if key == "self_attn.q_proj.weight":
            prefix = f"{stack}layers.{idx}.self_attn."
            out[base + "attn.qkv.weight"] = torch.cat(
                [t, state[prefix + "k_proj.weight"], state[prefix + "v_proj.weight"]])
        else:
            out[base + layer_names[key]] = t
    return out


def import_official(path: str | Path, base: UniAudioConfig) -> UniAudioModel:
    """Build a :class:`UniAudioModel` holding the released checkpoint's weights (strict: every missing,
    unexpected or mis-shaped tensor is reported in one ``ValueError``)."""
    state = read_official_state(path)
    config = config_for_official(state, base)
    model = UniAudioModel(config)
    load_strict(model, official_to_native(state, config), source=str(path))
    return model


def export_official(model: UniAudioModel, path: str | Path) -> None:
    """Write ``model`` under the released names: ``.safetensors``, or ``torch.save({"model": ...})``
    (what the released ``resume_for_inference`` reads) for any other suffix."""
    state = native_to_official({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"model": state}, path)


def _split_qkv(qkv: Tensor, stack_cfg: StackConfig, name: str) -> tuple[Tensor, Tensor, Tensor]:
    q_rows = stack_cfg.n_heads * stack_cfg.head_dim
    kv_rows = stack_cfg.n_kv_heads * stack_cfg.head_dim
    if qkv.shape[0] != q_rows + 2 * kv_rows:
        raise ValueError(f"{name}: qkv has {qkv.shape[0]} rows, config expects {q_rows} + 2 x {kv_rows}")
    return qkv[:q_rows], qkv[q_rows : q_rows + kv_rows], qkv[q_rows + kv_rows :]
