"""Test signals for the codec tests."""

from __future__ import annotations

import numpy as np


def tone(seconds: float, freq: float = 220.0, seed: int = 0) -> np.ndarray:
    """A 24 kHz test signal: a gliding tone with a little noise, so tokens vary over time."""
    n = int(round(seconds * 24_000))
    t = np.arange(n) / 24_000
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * (freq * t + 40 * t**2)
    return (0.3 * np.sin(phase) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)) + 0.02 * rng.standard_normal(n)).astype(
        np.float32
    )
