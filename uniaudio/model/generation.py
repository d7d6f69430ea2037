"""Inference with KV caches: text decoding for understanding tasks, frame-by-frame audio generation.

Text (:func:`generate_text`): greedy or top-k sampling from the text head, one text step at a time, until
``<|end_of_text|>`` (released understanding stop rule) or ``max_new_tokens``.

Audio (:func:`generate_audio`): the sequence is extended by the BOS frame of the start phase
(``reasoning`` → ``[reason_bos]*8``; ``reconstruction`` → ``[recon_bos+RC]*8``), then each frame is
predicted by the local decoder, codebook by codebook, from the last step's state. Ids are restricted to the
current phase: reasoning codes or ``reason_eos`` while reasoning; after ``reason_eos`` only ids >= RC (the
released ``forbid_prefix``) i.e. reconstruction codes or ``recon_eos+RC``. A special id chosen for codebook
0 fills the whole frame (special frames are uniform); after the reasoning EOS frame the reconstruction BOS
frame is appended. Generation stops at the all-``recon_eos+RC`` frame (released rule) or ``max_frames``.
Classifier-free guidance runs a second row holding :meth:`TokenSequence.unconditional` of the prompt and
mixes logits as ``uncond + scale · (cond − uncond)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from uniaudio.model.network import UniAudioModel
from uniaudio.model.sequence import TokenSequence, audio_step, text_step


@dataclass(frozen=True)
class Sampling:
    """``temperature == 0`` is greedy; ``top_k`` keeps the k most likely ids (None: all)."""

    temperature: float = 1.0
    top_k: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"Sampling.temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"Sampling.top_k must be >= 1 or None, got {self.top_k}")

    def pick(self, logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One id per row of (R, V) logits (-inf entries are never picked)."""
        if self.temperature == 0 or self.top_k == 1:
            return logits.argmax(dim=-1)
        logits = logits.float() / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            kth = logits.topk(self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@dataclass
class TextGeneration:
    """Generated ids (the stop token excluded) and whether the stop token was produced."""

    ids: list[int]
    stopped: bool


@dataclass
class AudioGeneration:
    """Generated codes (raw codec ids, brackets removed): ``reasoning`` (n_codebooks, T_r) and
    ``reconstruction`` (n_codebooks, T_s); ``frames`` all appended frames as stored (ids offset, BOS/EOS
    frames included, (N, n_codebooks)); ``stopped``: the reconstruction EOS frame was produced."""

    reasoning: Tensor
    reconstruction: Tensor
    frames: Tensor
    stopped: bool


@torch.no_grad()
def generate_text(model: UniAudioModel, prompt: TokenSequence, max_new_tokens: int = 256,
                  sampling: Sampling | None = None, generator: torch.Generator | None = None) -> TextGeneration:
    """Continue ``prompt`` with text until ``<|end_of_text|>`` or ``max_new_tokens``."""
    sampling = sampling or Sampling(temperature=0.0)
    stop = model.config.tokens.text.end_of_text
    n_streams = model.config.n_streams
    device = model.audio_head.weight.device
    cache = model.new_cache()
    h = model.hidden_states(prompt.tokens[None].to(device), prompt.stream_mask[None].to(device), cache).final
    ids: list[int] = []
    for _ in range(max_new_tokens):
        token = int(sampling.pick(model.text_logits(h[:, -1]), generator)[0])
        if token == stop:
            return TextGeneration(ids, stopped=True)
        ids.append(token)
        tokens, mask = text_step(token, n_streams)
        h = model.hidden_states(tokens[None, None].to(device), mask[None, None].to(device), cache).final
    return TextGeneration(ids, stopped=False)


@torch.no_grad()
def generate_audio(model: UniAudioModel, prompt: TokenSequence, max_frames: int = 500, start: str = "reasoning",
                   cfg_scale: float = 1.0, sampling: Sampling | None = None,
                   generator: torch.Generator | None = None) -> AudioGeneration:
    """Generate one audio item after ``prompt`` (see the module docstring)."""
    if start not in ("reasoning", "reconstruction"):
        raise ValueError(f"generate_audio: start must be 'reasoning' or 'reconstruction', got {start!r}")
    sampling = sampling or Sampling(temperature=1.0, top_k=30)
    a = model.config.tokens.audio
    device = model.audio_head.weight.device
    rows = [prompt] if cfg_scale == 1.0 else [prompt, prompt.unconditional(model.config.tokens)]
    tokens = torch.stack([r.tokens for r in rows]).to(device)
    mask = torch.stack([r.stream_mask for r in rows]).to(device)
    cache = model.new_cache()
    model.hidden_states(tokens, mask, cache)

    phase = start
    bos = a.reason_bos if start == "reasoning" else a.recon_id(a.recon_bos)
    pending = [torch.full((a.n_codebooks,), bos, dtype=torch.long)]
    frames: list[Tensor] = []
    stopped = False
    generated = 0
    while True:
        frames += pending
        steps = [audio_step(f) for f in pending]
        step_tokens = torch.stack([s[0] for s in steps]).expand(len(rows), -1, -1).to(device)
        step_mask = torch.stack([s[1] for s in steps]).expand(len(rows), -1, -1).to(device)
        h = model.hidden_states(step_tokens, step_mask, cache).final[:, -1]
        if generated == max_frames:
            break
        frame = _sample_frame(model, h, phase, cfg_scale, sampling, generator)
        generated += 1
        if int(frame[0]) == a.reason_eos:
            pending = [frame, torch.full_like(frame, a.recon_id(a.recon_bos))]
            phase = "reconstruction"
        elif int(frame[0]) == a.recon_id(a.recon_eos):
            frames.append(frame)
            stopped = True
            break
        else:
            pending = [frame]
    stored = torch.stack(frames)
    return AudioGeneration(*_split_frames(stored, model), frames=stored, stopped=stopped)


def _allowed(model: UniAudioModel, phase: str, device: torch.device) -> tuple[Tensor, Tensor, int]:
    """Masks over the id space: codes of the phase, codes + its EOS; and the EOS id."""
    a = model.config.tokens.audio
    codes = torch.zeros(a.card, dtype=torch.bool, device=device)
    if phase == "reasoning":
        codes[: a.reason_codebook_size] = True
        eos = a.reason_eos
    else:
        codes[a.reason_card : a.reason_card + a.recon_codebook_size] = True
        eos = a.recon_id(a.recon_eos)
    with_eos = codes.clone()
    with_eos[eos] = True
    return codes, with_eos, eos


def _sample_frame(model: UniAudioModel, context: Tensor, phase: str, cfg_scale: float, sampling: Sampling,
                  generator: torch.Generator | None) -> Tensor:
    """One frame's ids (n_codebooks,) from the local decoder; rows of ``context`` are [cond(, uncond)]."""
    a = model.config.tokens.audio
    codes, with_eos, eos = _allowed(model, phase, context.device)
    cache = model.local_decoder.new_cache()
    x = context
    out = []
    for k in range(a.n_codebooks):
        rows = model.local_step(x, k, cache).float()
        logits = rows[1] + cfg_scale * (rows[0] - rows[1]) if rows.shape[0] == 2 else rows[0]
        allowed = with_eos if k == 0 else codes
        token = int(sampling.pick(logits.masked_fill(~allowed, float("-inf"))[None], generator)[0])
        if k == 0 and token == eos:
            return torch.full((a.n_codebooks,), eos, dtype=torch.long)
        out.append(token)
        ids = torch.full((context.shape[0],), token, dtype=torch.long, device=context.device)
        x = model.embed_code(ids, k)
    return torch.tensor(out, dtype=torch.long)


def _split_frames(frames: Tensor, model: UniAudioModel) -> tuple[Tensor, Tensor]:
    """Raw reasoning and reconstruction codes of the stored frames (special frames dropped)."""
    a = model.config.tokens.audio
    first = frames[:, 0]
    reason = frames[first < a.reason_codebook_size]
    is_recon_code = (first >= a.reason_card) & (first < a.reason_card + a.recon_codebook_size)
    recon = frames[is_recon_code] - a.reason_card
    return reason.T.contiguous(), recon.T.contiguous()
