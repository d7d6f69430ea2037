"""Initialise the LLaMA parts of a :class:`UniAudioModel` from a local Hugging Face LLaMA checkpoint.

Reads ``DIR/config.json`` and ``DIR/model.safetensors`` (or the shards named by
``DIR/model.safetensors.index.json``); copies ``model.embed_tokens`` → ``text_embeddings``,
``model.layers.*``/``model.norm`` → ``cross_modal``, ``lm_head`` → ``lm_head`` (a copy of the embeddings
when the source ties them, as LLaMA-3.2-1B/3B do: the released model keeps them untied). Experts, audio
embeddings, local decoder and auxiliary decoder keep their fresh initialisation.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn
from transformers import LlamaConfig

from uniaudio.model.config import UniAudioConfig

_PREFIX_MAP = (("model.embed_tokens.", "text_embeddings."), ("model.layers.", "cross_modal.layers."),
               ("model.norm.", "cross_modal.norm."), ("lm_head.", "lm_head."))


def load_llama_weights(model: nn.Module, config: UniAudioConfig, llama_dir: str | Path) -> None:
    """Copy the LLaMA checkpoint's weights into ``model`` (built from ``config``) after checking they match.

    Raises ``ValueError`` listing every config mismatch, or every missing/unexpected/mis-shaped tensor.
    """
    root = Path(llama_dir)
    hf = _read_config(root)
    _check_config(config, hf, root / "config.json")
    source = _read_tensors(root)
    if "lm_head.weight" not in source and hf.tie_word_embeddings and "model.embed_tokens.weight" in source:
        source["lm_head.weight"] = source["model.embed_tokens.weight"].clone()
    mapped: dict[str, Tensor] = {}
    unexpected = []
    for name, tensor in source.items():
        for old, new in _PREFIX_MAP:
            if name.startswith(old):
                mapped[new + name[len(old):]] = tensor
                break
        else:
            unexpected.append(name)
    targets = {k: v for k, v in model.state_dict().items() if k.startswith(tuple(n for _, n in _PREFIX_MAP))}
    missing = sorted(set(targets) - set(mapped))
    unexpected += sorted(set(mapped) - set(targets))
    shapes = [f"{k}: llama {tuple(mapped[k].shape)} vs model {tuple(targets[k].shape)}"
              for k in sorted(set(mapped) & set(targets)) if mapped[k].shape != targets[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(f"{root}: LLaMA weights do not fit config {config.name!r}: missing {missing}; "
                         f"unexpected {sorted(unexpected)}; mis-shaped {shapes}")
    with torch.no_grad():
        params = dict(model.named_parameters())
        for k, v in mapped.items():
            params[k].copy_(v)


def _read_config(root: Path) -> LlamaConfig:
    path = root / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no config.json (expected a Hugging Face LLaMA checkpoint directory)")
    data = json.loads(path.read_text())
    if data.get("model_type") != "llama":
        raise ValueError(f"{path}: model_type is {data.get('model_type')!r}, not 'llama'")
    return LlamaConfig.from_pretrained(str(root), local_files_only=True)


def _check_config(config: UniAudioConfig, hf: LlamaConfig, path: Path) -> None:
    c = config.cross_modal
    want = {
        "hidden_size": c.d_model, "num_hidden_layers": c.n_layers, "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads, "intermediate_size": c.d_ff, "rms_norm_eps": c.rms_norm_eps,
        "vocab_size": config.text_vocab_size, "hidden_act": "silu",
        "attention_bias": False, "mlp_bias": False,
    }
    got_rope = dict(hf.rope_parameters or {})
    ours = c.to_llama_config().rope_parameters
    bad = [f"{k}: llama {getattr(hf, k, None)!r} vs config {v!r}" for k, v in want.items()
           if getattr(hf, k, None) != v]
    bad += [f"rope_parameters.{k}: llama {got_rope.get(k)!r} vs config {v!r}" for k, v in ours.items()
            if got_rope.get(k) != v]
    if getattr(hf, "head_dim", None) not in (None, c.head_dim):
        bad.append(f"head_dim: llama {hf.head_dim} vs config {c.head_dim}")
    if bad:
        raise ValueError(f"{path}: LLaMA config does not match cross_modal of {config.name!r}: {bad}")


def _read_tensors(root: Path) -> dict[str, Tensor]:
    single = root / "model.safetensors"
    index = root / "model.safetensors.index.json"
    if single.is_file():
        return load_file(str(single))
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, Tensor] = {}
        for shard in shards:
            out.update(load_file(str(root / shard)))
        return out
    raise FileNotFoundError(f"{root}: neither model.safetensors nor model.safetensors.index.json")
