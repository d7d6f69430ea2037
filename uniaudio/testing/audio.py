"""Synthetic audio for fixtures, tests and the demo: deterministic, tiny, in every container we read.

Signals are a few harmonics plus a little seeded noise, so they are neither silent nor clipped and
have energy up to a few kHz (they pass the audio stage's filters unless a test wants otherwise).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["FORMATS", "encode_audio", "synth", "write_audio"]

# suffix → (soundfile format, subtype)
FORMATS: dict[str, tuple[str, str | None]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
}


def synth(duration_s: float, sample_rate: int, channels: int = 1, seed: int = 0, f0: float = 220.0) -> np.ndarray:
    """float32 array of shape (frames,) for mono or (frames, channels), peak about 0.5."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    cols = []
    for ch in range(channels):
        base = f0 * (1 + 0.25 * ch)
        x = sum(np.sin(2 * np.pi * base * k * t + k) / k for k in range(1, 8))
        x = x + 0.02 * rng.standard_normal(n)
        cols.append(0.5 * x / max(1e-9, np.abs(x).max()))
    out = np.stack(cols, axis=1).astype(np.float32)
    return out[:, 0] if channels == 1 else out


def encode_audio(data: np.ndarray, sample_rate: int, suffix: str) -> bytes:
    """Encode ``data`` in the container named by ``suffix`` (wav, flac, mp3, ogg, opus)."""
    fmt, subtype = FORMATS[suffix]
    if suffix == "opus" and sample_rate not in (8000, 12000, 16000, 24000, 48000):
        raise ValueError(f"opus cannot hold {sample_rate} Hz audio")
    buf = io.BytesIO()
    sf.write(buf, data, sample_rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def write_audio(
    path: str | Path,
    duration_s: float,
    sample_rate: int,
    channels: int = 1,
    seed: int = 0,
    f0: float = 220.0,
) -> Path:
    """Write a synthetic clip to ``path`` in the format its suffix names; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = synth(duration_s, sample_rate, channels, seed, f0)
    path.write_bytes(encode_audio(data, sample_rate, path.suffix.lstrip(".").lower()))
    return path
