"""Reading audio files for direct tokenization (``uniaudio codec encode``): mono float32 at 24 kHz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

CODEC_SAMPLE_RATE = 24_000


def read_audio_24k(path: str | Path) -> np.ndarray:
    """Decode ``path`` with soundfile, average the channels (as the released tokenizer does) and
    resample to 24 kHz with soxr. Raises ``ValueError`` naming the file when it cannot be decoded."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise ValueError(f"{path}: cannot decode audio ({exc})") from exc
    if data.shape[0] == 0:
        raise ValueError(f"{path}: no audio samples")
    mono = data.mean(axis=1)
    if rate != CODEC_SAMPLE_RATE:
        mono = soxr.resample(mono, rate, CODEC_SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)
