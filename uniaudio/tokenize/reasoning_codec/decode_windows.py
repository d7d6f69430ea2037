"""How reconstruction tokens of any length are decoded in overlapping windows and joined.

The arithmetic is the released ``code2sound_no_reason`` / ``token2audio_no_reason`` (20 s windows by
default): a window of ``W = int(seconds·12.5)`` token frames (250 at 20 s), a hop of ``W // 4 · 3`` (186)
and an overlap of ``W − hop`` (64). Tokens shorter than one window, or not ending on the hop grid, are
extended by repeating them cyclically (as the released code does) to ``k·hop + overlap`` frames; windows
start at ``0, hop, …, (k − 1)·hop``. Each window is sampled by the flow decoder with an in-context prefix of
``overlap // 2`` latent frames (32) taken from the previous window, decoded by SQ-Codec on its own, and
the waveforms are cross-faded linearly over the overlap. The result is cut to ``T·1920`` samples.

Deliberate fixes (docs/codec.md): the released code takes the prefix from the *end* of the previous window
(latents of other audio than the new window's start) and cross-fades over ``seconds·24000 − hop_wav``
samples with a waveform hop of ``seconds·24000 // 4 · 3`` (360000 at 20 s) while the token hop is
``186·1920 = 357120`` samples, so windows drift apart. Here the prefix is the previous window's latents at
the new window's first frames, and the waveform hop and overlap are exactly the token hop and overlap
times 1920 samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from uniaudio.tokenize.reasoning_codec.config import RECON_HZ
from uniaudio.tokenize.reasoning_codec.windowing import RECON_SAMPLES

DEFAULT_WINDOW_SECONDS = 20.0


@dataclass(frozen=True)
class DecodeWindows:
    """The window grid for ``tokens`` reconstruction frames."""

    tokens: int
    window: int
    hop: int

    @classmethod
    def plan(cls, tokens: int, seconds: float = DEFAULT_WINDOW_SECONDS) -> DecodeWindows:
        window = seconds * RECON_HZ
        if tokens < 1:
            raise ValueError(f"nothing to decode: {tokens} token frames")
        if window != int(window) or window < 4:
            raise ValueError(f"window of {seconds} s is not a whole number (>= 4) of 12.5 Hz frames")
        window = int(window)
        return cls(tokens=tokens, window=window, hop=window // 4 * 3)

    @property
    def overlap(self) -> int:
        return self.window - self.hop

    @property
    def prefix_latents(self) -> int:
        """In-context latent frames taken from the previous window (released ``ovlp_frames``)."""
        return self.overlap // 2

    @property
    def padded(self) -> int:
        """Token frames after cyclic extension: ``k·hop + overlap`` ≥ max(tokens, window)."""
        length = max(self.tokens, self.window)
        return -(-(length - self.overlap) // self.hop) * self.hop + self.overlap

    @property
    def starts(self) -> list[int]:
        return list(range(0, self.padded - self.hop, self.hop))


def extend_cyclically(codes: torch.Tensor, length: int) -> torch.Tensor:
    """(B, T, C) → (B, length, C) by repeating the time axis (the released repeated doubling + cut)."""
    reps = -(-length // codes.shape[1])
    return codes.repeat(1, reps, 1)[:, :length]


def cross_fade_join(output: torch.Tensor | None, wave: torch.Tensor, overlap: int) -> torch.Tensor:
    """Append ``wave`` (B, n) to ``output``, blending their shared ``overlap`` samples linearly."""
    if output is None:
        return wave
    ramp = torch.linspace(0, 1, overlap, dtype=wave.dtype, device=wave.device)
    blended = output[:, -overlap:] * (1 - ramp) + wave[:, :overlap] * ramp
    return torch.cat([output[:, :-overlap], blended, wave[:, overlap:]], dim=1)


def decode_windows(codec, sq_codec, codes: torch.Tensor, steps: int, cfg: float, seed: int,
                   seconds: float = DEFAULT_WINDOW_SECONDS) -> torch.Tensor:
    """Reconstruction codes (B, T, 8) → waveform (B, T·1920) at 24 kHz (see the module docstring).

    ``codec`` is a :class:`~.codec.ReasoningCodec` built with a decoder, ``sq_codec`` an
    :class:`~.sq_codec.SQCodec`."""
    grid = DecodeWindows.plan(codes.shape[1], seconds)
    codes = extend_cyclically(codes, grid.padded)
    generator = torch.Generator().manual_seed(seed)
    output, previous = None, None
    for start in grid.starts:
        prefix = None
        if previous is not None:
            prefix = previous[:, 2 * grid.hop: 2 * grid.hop + grid.prefix_latents]
        latents = codec.sample_window(codes[:, start:start + grid.window], prefix, steps, cfg, generator)
        wave = sq_codec(latents)[:, : grid.window * RECON_SAMPLES].float()
        output = cross_fade_join(output, wave, grid.overlap * RECON_SAMPLES)
        previous = latents
    return output[:, : grid.tokens * RECON_SAMPLES]

