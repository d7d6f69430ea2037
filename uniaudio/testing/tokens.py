"""Token-store samples for tests, benchmarks and the demo: random tokens with consistent shapes.

These are for exercising the store (writer, readers, validator); tokens produced by the real codec
come from ``uniaudio.tokenize``.
"""

from __future__ import annotations

import numpy as np

from uniaudio.pipelines.token_store.format import StoreSpec
from uniaudio.pipelines.token_store.sample import TokenSample, sample_metadata

__all__ = ["TEST_CODEC", "random_sample"]

TEST_CODEC = {"name": "random", "config": "test", "fingerprint": "random-tokens-v1"}


def random_sample(
    key: str,
    duration_s: float,
    seed: int = 0,
    spec: StoreSpec | None = None,
    extras: dict[str, np.ndarray] | None = None,
    **meta: object,
) -> TokenSample:
    """A sample whose frame counts match ``duration_s`` at the spec's rates, with random token ids."""
    spec = spec or StoreSpec()
    rng = np.random.default_rng(seed)
    t_r = int(duration_s * spec.reason_hz) + 1
    t_s = int(duration_s * spec.recon_hz) + 1
    reason = rng.integers(0, spec.reason_card, (spec.codebooks, t_r), dtype=np.uint16)
    recon = rng.integers(0, spec.recon_card, (spec.codebooks, t_s), dtype=np.uint16)
    source = key.split("/", 1)[0]
    fields = {"audio_uri": f"/corpus/{key}.wav", **meta}
    md = sample_metadata(key=key, source=source, duration_s=duration_s, codec=TEST_CODEC, **fields)
    return TokenSample(key=key, reason=reason, recon=recon, meta=md, extras=extras or {})
