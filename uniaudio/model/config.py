"""Validated configuration of the UniAudio 2.0 model and its named presets (``tiny``, ``1b``, ``3b``).

A :class:`UniAudioConfig` is everything needed to rebuild the network: the four LLaMA stacks
(understanding experts, cross-modal stack, generation experts, local decoder), the text vocabulary, the
token layout (:mod:`uniaudio.core.token_space`), the loss weights and the optional stage-1 auxiliary decoder.
It round-trips through JSON (``config.json`` beside ``model.safetensors``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from transformers import LlamaConfig

from uniaudio.core.token_space import AudioTokens, TextTokens, TokenLayout

LLAMA3_ROPE_SCALING: dict[str, Any] = {
    "rope_type": "llama3",
    "factor": 32.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}
"""LLaMA-3.2's RoPE scaling, used by every stack of the released model (litgpt configs)."""


@dataclass(frozen=True)
class StackConfig:
    """One stack of LLaMA decoder layers (``transformers`` ``LlamaDecoderLayer``) with its final RMSNorm."""

    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ff: int
    rope_theta: float = 500000.0
    rope_scaling: dict[str, Any] | None = field(default_factory=lambda: dict(LLAMA3_ROPE_SCALING))
    rms_norm_eps: float = 1e-5
    max_positions: int = 131072

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_ff", "max_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"StackConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"StackConfig.d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"StackConfig.n_heads={self.n_heads} must be divisible by n_kv_heads={self.n_kv_heads}")
        if self.rope_theta <= 0:
            raise ValueError(f"StackConfig.rope_theta must be > 0, got {self.rope_theta}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_llama_config(self, vocab_size: int = 1) -> LlamaConfig:
        """The ``LlamaConfig`` its layers are built from (SDPA attention, no biases, SiLU MLP)."""
        rope = dict(self.rope_scaling) if self.rope_scaling else {"rope_type": "default"}
        rope["rope_theta"] = self.rope_theta
        cfg = LlamaConfig(
            vocab_size=vocab_size, hidden_size=self.d_model, intermediate_size=self.d_ff,
            num_hidden_layers=self.n_layers, num_attention_heads=self.n_heads,
            num_key_value_heads=self.n_kv_heads, rms_norm_eps=self.rms_norm_eps,
            max_position_embeddings=self.max_positions, rope_parameters=rope,
            attention_bias=False, mlp_bias=False, hidden_act="silu", tie_word_embeddings=False,
            bos_token_id=None, eos_token_id=None, pad_token_id=None,
        )
        cfg._attn_implementation = "sdpa"
        return cfg


@dataclass(frozen=True)
class LossConfig:
    """L = text_weight * L_text + audio_weight * L_audio, L_audio = sum_k codebook_weights[k] * CE_k."""

    text_weight: float = 1.6
    audio_weight: float = 1.0
    codebook_weights: tuple[float, ...] = (2 / 8, 2 / 8, 2 / 8, 1 / 8, 1 / 8, 1 / 8, 1 / 8, 1 / 8)
    aux_weight: float = 1.0
    """λ_rec of the stage-1 semantic-distillation loss (used only while the auxiliary decoder exists)."""

    def __post_init__(self) -> None:
        for name in ("text_weight", "audio_weight", "aux_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"LossConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not self.codebook_weights or min(self.codebook_weights) < 0:
            raise ValueError(f"LossConfig.codebook_weights must be non-empty and >= 0, got {self.codebook_weights}")


@dataclass(frozen=True)
class DistillTarget:
    """One frozen SSL feature the auxiliary decoder regresses: ``frames_per_token`` feature frames per
    reconstruction frame (12.5 Hz), e.g. WavLM 50 Hz → 4, MusicFM 25 Hz → 2."""

    name: str
    dim: int
    frames_per_token: int

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"DistillTarget.name must be an identifier, got {self.name!r}")
        if self.dim < 1 or self.frames_per_token < 1:
            raise ValueError(f"DistillTarget {self.name!r}: dim and frames_per_token must be >= 1")


@dataclass(frozen=True)
class AuxDecoderConfig:
    """The stage-1 semantic-distillation decoder: a 2-layer MLP per target on the understanding output."""

    hidden: int = 1024
    targets: tuple[DistillTarget, ...] = (
        # the token store's `--distill-features` fields: WavLM / MusicFM features pooled to 12.5 Hz
        DistillTarget("distill_wavlm", 768, 1),
        DistillTarget("distill_music", 1024, 1),
    )

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ValueError(f"AuxDecoderConfig.hidden must be >= 1, got {self.hidden}")
        names = [t.name for t in self.targets]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"AuxDecoderConfig.targets must be non-empty with unique names, got {names}")


@dataclass(frozen=True)
class UniAudioConfig:
    """The whole model. ``expert_sees_text=False`` reproduces the released code (experts read zeros at
    text positions); True feeds them the full hidden states (paper Eq. 7 read literally). Either way the
    experts' output only replaces audio positions: H' = H + M_aud * (f(.) - H)."""

    name: str
    understanding: StackConfig
    cross_modal: StackConfig
    generation: StackConfig
    local_decoder: StackConfig
    text_vocab_size: int = 128256
    tokens: TokenLayout = field(default_factory=TokenLayout)
    loss: LossConfig = field(default_factory=LossConfig)
    aux_decoder: AuxDecoderConfig | None = None
    expert_sees_text: bool = False
    max_seq_len: int = 2048

    def __post_init__(self) -> None:
        d = self.cross_modal.d_model
        for name in ("understanding", "generation"):
            if getattr(self, name).d_model != d:
                raise ValueError(
                    f"UniAudioConfig.{name}.d_model={getattr(self, name).d_model} must equal "
                    f"cross_modal.d_model={d} (experts share the residual stream)"
                )
        if self.text_vocab_size <= self.tokens.text.max_id:
            raise ValueError(
                f"UniAudioConfig.text_vocab_size={self.text_vocab_size} must exceed the largest text "
                f"special id {self.tokens.text.max_id}"
            )
        if len(self.loss.codebook_weights) != self.tokens.audio.n_codebooks:
            raise ValueError(
                f"UniAudioConfig.loss.codebook_weights has {len(self.loss.codebook_weights)} entries for "
                f"{self.tokens.audio.n_codebooks} codebooks"
            )
        if self.max_seq_len < 2:
            raise ValueError(f"UniAudioConfig.max_seq_len must be >= 2, got {self.max_seq_len}")

    @property
    def n_streams(self) -> int:
        """Audio codebooks plus the text stream (9 for the released model)."""
        return self.tokens.audio.n_codebooks + 1

    def with_(self, **changes: Any) -> UniAudioConfig:
        """A copy with fields replaced (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UniAudioConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"UniAudioConfig: unknown keys {unknown}")
        d = dict(data)
        for name in ("understanding", "cross_modal", "generation", "local_decoder"):
            d[name] = StackConfig(**d[name])
        if "tokens" in d:
            d["tokens"] = TokenLayout.from_dict(d["tokens"])
        if "loss" in d:
            loss = dict(d["loss"])
            if "codebook_weights" in loss:
                loss["codebook_weights"] = tuple(loss["codebook_weights"])
            d["loss"] = LossConfig(**loss)
        if d.get("aux_decoder") is not None:
            aux = dict(d["aux_decoder"])
            aux["targets"] = tuple(DistillTarget(**t) for t in aux.get("targets", ()))
            d["aux_decoder"] = AuxDecoderConfig(**aux)
        return cls(**d)


def _llama32(n_layers: int, d_model: int, n_heads: int, d_ff: int) -> StackConfig:
    return StackConfig(n_layers=n_layers, d_model=d_model, n_heads=n_heads, n_kv_heads=8, d_ff=d_ff)


def _tiny() -> UniAudioConfig:
    stack = StackConfig(n_layers=1, d_model=64, n_heads=4, n_kv_heads=2, d_ff=128)
    return UniAudioConfig(
        name="tiny",
        understanding=stack,
        cross_modal=replace(stack, n_layers=2),
        generation=stack,
        local_decoder=StackConfig(n_layers=1, d_model=32, n_heads=2, n_kv_heads=1, d_ff=64),
        text_vocab_size=2112,  # the packaged default tokenizer: 2048 BPE ids + LLaMA-3 specials at 2048+
        tokens=TokenLayout(audio=AudioTokens.standard(64, 128), text=TextTokens(special_base=2048)),
        max_seq_len=512,
    )


def _one_b() -> UniAudioConfig:
    # LLaMA-3.2-1B as the cross-modal expert: 16 layers x 2048, 32 heads (8 KV), MLP 8192.
    body = _llama32(16, 2048, 32, 8192)
    return UniAudioConfig(
        name="1b",
        understanding=replace(body, n_layers=3),
        cross_modal=body,
        generation=replace(body, n_layers=2),
        local_decoder=_llama32(4, 2048, 32, 8192),
    )


def _three_b() -> UniAudioConfig:
    # Table 17: 3 + 28 + 2 layers of 3072 (24 heads, 8 KV, MLP 8192); local decoder 4 x 2048 x 32 heads.
    body = _llama32(28, 3072, 24, 8192)
    return UniAudioConfig(
        name="3b",
        understanding=replace(body, n_layers=3),
        cross_modal=body,
        generation=replace(body, n_layers=2),
        local_decoder=_llama32(4, 2048, 32, 8192),
    )


PRESETS = {"tiny": _tiny, "1b": _one_b, "3b": _three_b}


def preset(name: str) -> UniAudioConfig:
    """The named configuration: ``tiny`` (CPU tests), ``1b`` or ``3b``."""
    if name not in PRESETS:
        raise ValueError(f"unknown model config {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()
