"""The UniAudio 2.0 multi-stream LLM: embeddings, experts, cross-modal LLaMA, text head, local decoder.

Forward pass over tokens (B, T, S) with stream mask (B, T, S), M = audio steps (stream 0 present):

1. ``x = Σ_i m_i · E_i(x_i)``: text stream through ``text_embeddings`` (LLaMA's), audio codebook k through
   ``audio_embeddings`` at ``id + k·V`` (V = reason_card + recon_card).
2. ``x ← x + M ⊙ (understanding(x_in) − x)``, ``x_in = M ⊙ x`` (released) or ``x``.
3. ``h = cross_modal(x)`` (the LLaMA layers and final norm).
4. ``h ← h + M ⊙ (generation(h_in) − h)``.
5. text logits ``lm_head(h)``; audio: the local decoder predicts the 8 codebooks of the next frame from
   ``h_t`` (8 positions: ``[h_t, E_0(c_0), …, E_6(c_6)]`` → ``local_projection`` → ``local_decoder`` →
   ``audio_head[k]``), teacher-forced in training.

The mixing uses ``torch.where``, so text positions keep their values bit-exactly: with text-only input the
text logits are those of the source LLaMA.

Training rows may pack several samples (:class:`~uniaudio.model.sequence.Batch` ``position_ids`` and
``document_ids``): the three sequence stacks restart RoPE per sample and attend block-causally (kernel by
:meth:`UniAudioModel.set_attention`); the local and auxiliary decoders work per position. ``forward`` runs
every module on every call whatever the batch holds (a text-only batch still runs the local decoder on one
unscored frame, a batch without features the auxiliary decoder on one invalid position), so ranks of a
DDP/ZeRO job never diverge in the modules they run. The root module holds no parameter of its own (the audio
head is the :class:`~uniaudio.model.audio_head.AudioHead` submodule): DeepSpeed ZeRO-3 gathers a partitioned
parameter only around its own module's forward and backward, and cannot hook the backward of the root,
whose output (:class:`TrainOutput`) it does not see into.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from transformers import DynamicCache
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from uniaudio.model.attention import AttentionKind, check_attention_kind, packed_mask
from uniaudio.model.audio_head import AudioHead
from uniaudio.model.aux_decoder import SemanticDistillationDecoder
from uniaudio.model.config import UniAudioConfig
from uniaudio.model.llama_init import load_llama_weights
from uniaudio.model.sequence import IGNORE, Batch
from uniaudio.model.stack import LlamaStack

PARAM_GROUPS: dict[str, tuple[str, ...]] = {
    "text_embeddings": ("text_embeddings.",),
    "audio_embeddings": ("audio_embeddings.",),
    "understanding": ("understanding.",),
    "cross_modal": ("cross_modal.", "lm_head."),
    "generation": ("generation.",),
    "local_decoder": ("local_projection.", "local_decoder.", "audio_head."),
    "aux_decoder": ("aux_decoder.",),
}
"""Parameter groups by stage role: name → parameter-name prefixes (every parameter is in exactly one).
``audio_embeddings`` also feeds the local decoder its previous codebooks; ``lm_head`` trains with the
cross-modal stack."""

RENAMED_GROUPS = {"embeddings": ("text_embeddings", "audio_embeddings")}
"""Former group names and the groups that replaced them (named in the error for an old name)."""

INIT_STD = 0.02


@dataclass
class ModelCache:
    """KV caches of the three sequence-level stacks (the local decoder keeps its own per frame)."""

    understanding: DynamicCache
    cross_modal: DynamicCache
    generation: DynamicCache

    def __len__(self) -> int:
        return self.cross_modal.get_seq_length()


@dataclass
class Hidden:
    """Per-step states: ``final`` feeds the text head and local decoder; ``understanding`` (after the
    understanding experts' update) feeds the auxiliary decoder."""

    final: Tensor
    understanding: Tensor


@dataclass
class TrainOutput:
    """Predictions at the scored steps of a :class:`Batch`.

    ``text_logits`` (N_t, vocab) with ``text_targets`` (N_t,); ``audio_logits`` (N_a, n_codebooks, V) with
    ``audio_targets`` (N_a, n_codebooks), -100 where a codebook is not scored (N_a >= 1: a batch without
    audio targets yields one all -100 row, so the local decoder always runs); ``aux`` the distillation
    predictions {name: (N_d, frames_per_token, dim)} when the auxiliary decoder exists, with the matching
    ``aux_targets`` and ``aux_valid`` (N_d, frames_per_token) (N_d >= 1, likewise).
    """

    text_logits: Tensor
    text_targets: Tensor
    audio_logits: Tensor
    audio_targets: Tensor
    aux: dict[str, Tensor] = field(default_factory=dict)
    aux_targets: dict[str, Tensor] = field(default_factory=dict)
    aux_valid: dict[str, Tensor] = field(default_factory=dict)


class UniAudioModel(nn.Module):
    """The whole network for one :class:`UniAudioConfig` (see the module docstring)."""

    def __init__(self, config: UniAudioConfig) -> None:
        super().__init__()
        self.config = config
        d = config.cross_modal.d_model
        a = config.tokens.audio
        self.text_embeddings = nn.Embedding(config.text_vocab_size, d)
        self.audio_embeddings = nn.EmbeddingBag(a.n_codebooks * a.card, d, mode="sum")
        self.understanding = LlamaStack(config.understanding)
        self.cross_modal = LlamaStack(config.cross_modal)
        self.generation = LlamaStack(config.generation)
        self.lm_head = nn.Linear(d, config.text_vocab_size, bias=False)
        self.local_projection = nn.Linear(d, config.local_decoder.d_model, bias=False)
        self.local_decoder = LlamaStack(config.local_decoder)
        self.audio_head = AudioHead(a.n_codebooks, config.local_decoder.d_model, a.card)
        self.aux_decoder = (SemanticDistillationDecoder(d, config.aux_decoder)
                            if config.aux_decoder is not None else None)
        self.register_buffer("codebook_offsets", torch.arange(a.n_codebooks) * a.card, persistent=False)
        self.attention: AttentionKind = "sdpa"
        self.reset_parameters()

    # ---- construction helpers ------------------------------------------------------------------------

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """LLaMA-style init: normal(0, 0.02) weights, zero biases, unit norms."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding | nn.EmbeddingBag):
                nn.init.normal_(module.weight, std=INIT_STD)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, LlamaRMSNorm):
                nn.init.ones_(module.weight)
        nn.init.normal_(self.audio_head.weight, std=INIT_STD)

    @classmethod
    def from_llama(cls, llama_dir: str, config: UniAudioConfig) -> UniAudioModel:
        """Fresh experts and audio parts; text embeddings, cross-modal layers and LM head from a local
        Hugging Face LLaMA checkpoint (``config.json`` + safetensors); see :mod:`uniaudio.model.llama_init`."""
        model = cls(config)
        load_llama_weights(model, config, llama_dir)
        return model

    def drop_aux_decoder(self) -> None:
        """Remove the stage-1 auxiliary decoder (and its config), as after stage 1."""
        self.aux_decoder = None
        self.config = self.config.with_(aux_decoder=None)

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        for stack in (self.understanding, self.cross_modal, self.generation, self.local_decoder):
            stack.set_gradient_checkpointing(enabled)

    def set_attention(self, kind: AttentionKind) -> None:
        """Attention kernel of the three sequence stacks over packed rows: ``sdpa`` (boolean T×T mask; CPU
        and GPU) or ``flex`` (flex attention with a block mask, compiled on CUDA; GPU training). A runtime
        choice, not saved with the checkpoint; see :mod:`uniaudio.model.attention`."""
        self.attention = check_attention_kind(kind)
        for stack in (self.understanding, self.cross_modal, self.generation):
            stack.set_attention(kind)

    # ---- parameter groups ----------------------------------------------------------------------------

    def param_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Named parameters by group (:data:`PARAM_GROUPS`); a parameter outside every group raises."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {g: [] for g in PARAM_GROUPS}
        for name, p in self.named_parameters():
            groups[group_of(name)].append((name, p))
        return groups

    def set_trainable(self, groups: set[str] | list[str] | tuple[str, ...]) -> None:
        """Train exactly ``groups`` (``requires_grad``); every other group is frozen."""
        unknown = sorted(set(groups) - set(PARAM_GROUPS))
        if unknown:
            renamed = "".join(f"; {old!r} is now {' + '.join(map(repr, new))}"
                              for old, new in RENAMED_GROUPS.items() if old in unknown)
            raise ValueError(f"set_trainable: unknown groups {unknown}; known: {sorted(PARAM_GROUPS)}{renamed}")
        for name, params in self.param_groups().items():
            for _, p in params:
                p.requires_grad_(name in groups)

    # ---- sequence-level pass -------------------------------------------------------------------------

    def new_cache(self) -> ModelCache:
        return ModelCache(self.understanding.new_cache(), self.cross_modal.new_cache(),
                          self.generation.new_cache())

    def embed(self, tokens: Tensor, stream_mask: Tensor) -> Tensor:
        """Masked sum of the stream embeddings: (B, T, S) ids and mask → (B, T, D). The audio streams are
        one ``EmbeddingBag`` sum weighted by the mask (no (B, T, 8, D) intermediate)."""
        b, t, s = tokens.shape
        audio_ids = (tokens[..., :-1].clamp(min=0) + self.codebook_offsets).reshape(b * t, s - 1)
        weights = stream_mask[..., :-1].reshape(b * t, s - 1).to(self.audio_embeddings.weight.dtype)
        audio = self.audio_embeddings(audio_ids, per_sample_weights=weights).view(b, t, -1)
        text = self.text_embeddings(tokens[..., -1].clamp(min=0)) * stream_mask[..., -1:]
        return audio + text

    def hidden_states(self, tokens: Tensor, stream_mask: Tensor, cache: ModelCache | None = None,
                      position_ids: Tensor | None = None, document_ids: Tensor | None = None) -> Hidden:
        """Steps 1-4 of the module docstring for (B, T, S) input: causal over the whole row, extending
        ``cache`` when given, or over packed rows when ``position_ids`` and ``document_ids`` (B, T) are given
        (block-causal, positions restarting per sample; no cache)."""
        if tokens.shape != stream_mask.shape or tokens.shape[-1] != self.config.n_streams:
            raise ValueError(
                f"UniAudioModel: tokens {tuple(tokens.shape)} and stream_mask {tuple(stream_mask.shape)} "
                f"must both be (B, T, {self.config.n_streams})"
            )
        seen = len(cache) if cache is not None else 0
        if seen + tokens.shape[1] > self.config.max_seq_len:
            raise ValueError(f"UniAudioModel: {seen + tokens.shape[1]} steps exceed max_seq_len="
                             f"{self.config.max_seq_len} of config {self.config.name!r}")
        if (position_ids is None) != (document_ids is None):
            raise ValueError("UniAudioModel.hidden_states: position_ids and document_ids go together")
        packed: dict[str, object] = {}
        if document_ids is not None:
            if position_ids.shape != tokens.shape[:2] or document_ids.shape != tokens.shape[:2]:
                raise ValueError(f"UniAudioModel: position_ids {tuple(position_ids.shape)} and document_ids "
                                 f"{tuple(document_ids.shape)} must be (B, T) = {tuple(tokens.shape[:2])}")
            packed = {"positions": position_ids, "mask": packed_mask(document_ids, self.attention)}
        is_audio = stream_mask[..., :1]
        x = self.embed(tokens, stream_mask)
        caches = (cache.understanding, cache.cross_modal, cache.generation) if cache is not None else (None,) * 3
        u = self.understanding(self._expert_input(x, is_audio), caches[0], **packed)
        x = torch.where(is_audio, u, x)
        h = self.cross_modal(x, caches[1], **packed)
        g = self.generation(self._expert_input(h, is_audio), caches[2], **packed)
        return Hidden(final=torch.where(is_audio, g, h), understanding=x)

    def _expert_input(self, x: Tensor, is_audio: Tensor) -> Tensor:
        return x if self.config.expert_sees_text else x * is_audio

    def text_logits(self, hidden: Tensor) -> Tensor:
        return self.lm_head(hidden)

    def logits(self, tokens: Tensor, stream_mask: Tensor) -> Tensor:
        """Text logits (B, T, vocab) at every step (inference and evaluation)."""
        return self.text_logits(self.hidden_states(tokens, stream_mask).final)

    # ---- local audio decoder -------------------------------------------------------------------------

    def frame_logits(self, context: Tensor, codes: Tensor) -> Tensor:
        """Teacher-forced local decoding: states (N, D) and the target frames (N, n_codebooks) →
        logits (N, n_codebooks, V), codebook k predicted from ``[context, E_0(c_0), …, E_{k-1}(c_{k-1})]``."""
        n_cb = self.config.tokens.audio.n_codebooks
        prev_ids = codes[:, : n_cb - 1].clamp(min=0) + self.codebook_offsets[: n_cb - 1]
        prev = self.audio_embeddings(prev_ids.reshape(-1, 1)).view(codes.shape[0], n_cb - 1, -1)
        inputs = torch.cat([context.unsqueeze(1), prev], dim=1)
        out = self.local_decoder(self.local_projection(inputs))
        return self.audio_head(out)

    def local_step(self, x: Tensor, k: int, cache: DynamicCache) -> Tensor:
        """One autoregressive local-decoder step for codebook ``k``: ``x`` is the context state (k = 0) or
        the embedding of codebook k-1's id (B, D); returns logits (B, V)."""
        out = self.local_decoder(self.local_projection(x).unsqueeze(1), cache)
        return self.audio_head(out[:, 0], k)

    def embed_code(self, ids: Tensor, k: int) -> Tensor:
        """Embedding of codebook ``k`` ids (B,) for the local decoder's next input."""
        return self.audio_embeddings((ids + self.codebook_offsets[k]).unsqueeze(1))

    # ---- training pass -------------------------------------------------------------------------------

    def forward(self, batch: Batch) -> TrainOutput:
        """The training pass: predictions at the scored steps of ``batch`` (text head, teacher-forced local
        decoder, aux), every module run whatever the batch holds (see the module docstring). It is
        ``forward`` so DDP/DeepSpeed wrappers see it: ``engine(batch)``."""
        hidden = self.hidden_states(batch.tokens, batch.stream_mask, position_ids=batch.position_ids,
                                    document_ids=batch.document_ids)
        flat = hidden.final.reshape(-1, hidden.final.shape[-1])
        labels = batch.labels.reshape(-1, batch.labels.shape[-1])
        text_at = labels[:, -1] != IGNORE
        audio_at = _at_least_one((labels[:, :-1] != IGNORE).any(dim=1))
        audio_targets = labels[audio_at, :-1]
        out = TrainOutput(
            text_logits=self.text_logits(flat[text_at]),
            text_targets=labels[text_at, -1],
            audio_logits=self.frame_logits(flat[audio_at], audio_targets),
            audio_targets=audio_targets,
        )
        if self.aux_decoder is not None:
            self._distill(hidden.understanding.reshape(flat.shape), batch, out)
        return out

    def _distill(self, understanding: Tensor, batch: Batch, out: TrainOutput) -> None:
        """Auxiliary predictions at the batch's distillation positions, or at step 0 with nothing valid when
        it has none; a target the batch does not carry is all invalid."""
        positions = batch.distill_positions
        n = len(positions)
        if n == 0:
            positions = positions.new_zeros(1)
        out.aux = self.aux_decoder(understanding[positions])
        for t in self.aux_decoder.config.targets:
            target = batch.distill_targets.get(t.name) if n else None
            if target is None:
                out.aux_targets[t.name] = understanding.new_zeros(len(positions), t.frames_per_token, t.dim)
                out.aux_valid[t.name] = torch.zeros(len(positions), t.frames_per_token, dtype=torch.bool,
                                                    device=understanding.device)
            else:
                out.aux_targets[t.name] = target
                out.aux_valid[t.name] = batch.distill_valid[t.name]


def _at_least_one(selected: Tensor) -> Tensor:
    """``selected`` (N,) bool with element 0 also set when nothing is (no host synchronisation)."""
    selected = selected.clone()
    selected[0] |= ~selected.any()
    return selected


def group_of(param_name: str) -> str:
    """The :data:`PARAM_GROUPS` group a parameter name belongs to."""
    for group, prefixes in PARAM_GROUPS.items():
        if param_name.startswith(prefixes):
            return group
    raise ValueError(f"parameter {param_name!r} belongs to no group of {sorted(PARAM_GROUPS)}")
