"""How a clip of any length becomes fixed-rate windows, and how many frames it yields.

Token counts follow the released code, which the released LLM was trained on:
``T_s = int(n/24000·12.5) + 1`` reconstruction and ``T_r = int(n/24000·5) + 1`` reasoning frames.

Windows start every 30 s (720000 samples) and read 240 samples past their end (the released windows are
720240 samples long), so window ``k`` yields exactly the frames of ``[30k, 30k + 30)`` s and long inputs
do not drift. (The released code cut non-overlapping 720240-sample windows: its frame grid slips 10 ms
per window.)

Two modes:

* ``tile`` (released, default for ``official``): the clip is repeated cyclically until it fills whole
  30 s windows. Every window is a full 30 s of audio, as the released LLM saw: short clips cost as much
  as 30 s and their tokens are those of the tiled signal.
* ``segment`` (cheaper): the clip is zero-padded only to the next 0.4 s (9600 samples: 2 reasoning
  and 5 reconstruction frames) that covers ``T_s``/``T_r`` frames; the last
  window is shorter than 30 s. MusicFM, WavLM, the reasoning transformer and the VQs run on the padded
  length only (Whisper always sees a zero-padded 30 s, as its feature extractor does). Tokens differ
  from ``tile`` mode (the context seen by the encoders differs), so a store must not mix the modes;
  the mode is part of the codec fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from uniaudio.tokenize.reasoning_codec.config import (
    REASON_HZ,
    RECON_HZ,
    SAMPLE_RATE,
    SEGMENT_SAMPLES,
    WINDOW_CONTEXT,
    WINDOW_SAMPLES,
    WindowMode,
)

RECON_SAMPLES = 1920  # samples per 12.5 Hz frame
REASON_SAMPLES = 4800  # samples per 5 Hz frame


def token_counts(num_samples: int) -> tuple[int, int]:
    """(reasoning frames, reconstruction frames) for ``num_samples`` at 24 kHz, as released."""
    seconds = num_samples / SAMPLE_RATE
    return int(seconds * REASON_HZ) + 1, int(seconds * RECON_HZ) + 1


@dataclass(frozen=True)
class ClipWindows:
    """A clip cut into windows: each ``windows[k]`` has ``L_k + 240`` samples, ``L_k`` a multiple of 9600."""

    windows: list[np.ndarray]
    reason_frames: int
    recon_frames: int


def cut_windows(wave: np.ndarray, mode: WindowMode) -> ClipWindows:
    """Cut a mono float32 24 kHz clip into encoder windows (see the module docstring)."""
    if wave.ndim != 1:
        raise ValueError(f"expected a mono 1-D waveform, got shape {wave.shape}")
    n = wave.shape[0]
    if n == 0:
        raise ValueError("empty waveform")
    t_r, t_s = token_counts(n)
    needed = max(t_s * RECON_SAMPLES, t_r * REASON_SAMPLES)
    if mode == "tile":
        total = -(-needed // WINDOW_SAMPLES) * WINDOW_SAMPLES
        signal = np.resize(wave.astype(np.float32, copy=False), total + WINDOW_CONTEXT)
    elif mode == "segment":
        total = -(-needed // SEGMENT_SAMPLES) * SEGMENT_SAMPLES
        signal = np.zeros(total + WINDOW_CONTEXT, dtype=np.float32)
        signal[:n] = wave
    else:
        raise ValueError(f"window mode must be 'tile' or 'segment', got {mode!r}")
    windows = [signal[start:min(start + WINDOW_SAMPLES, total) + WINDOW_CONTEXT]
               for start in range(0, total, WINDOW_SAMPLES)]
    return ClipWindows(windows=windows, reason_frames=t_r, recon_frames=t_s)
