"""ReasoningCodec configurations: ``official`` (the released sizes) and ``tiny`` (same classes, small widths).

Only widths, depths and codebook sizes differ between the two. Frame rates never do: on 24 kHz input
both give reasoning tokens at 5 Hz and reconstruction tokens at 12.5 Hz, because the strides (Whisper
50 Hz, MusicFM 25 Hz, WavLM 50 Hz, the 2/4-fold downsampling convolutions, one query per 5 frames)
are fixed by the architecture, not by the config.

The released numbers come from ``tools/tokenizer/ReasoningCodec_film`` (docs/codec.md lists them).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SAMPLE_RATE = 24_000
REASON_HZ = 5.0
RECON_HZ = 12.5
N_CODEBOOKS = 8
WINDOW_SECONDS = 30
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE  # 720000: the hop between windows
WINDOW_CONTEXT = 240  # extra samples read past each window's end (released: 720240-sample windows)
SEGMENT_SAMPLES = 9600  # 0.4 s: the least common multiple of one 5 Hz and one 12.5 Hz frame

WindowMode = Literal["tile", "segment"]


def _positive(name: str, **values: int | float) -> None:
    for key, value in values.items():
        if value <= 0:
            raise ValueError(f"{name}.{key} must be > 0, got {value}")


@dataclass(frozen=True, kw_only=True)
class MusicEncoderConfig:
    """MusicFM-25Hz: mel front end → Conv2d subsampling (×4 in time) → conformer encoder."""

    dim: int = 1024
    conv_dim: int = 512
    n_mels: int = 128
    n_fft: int = 2048
    hop_length: int = 240
    num_layers: int = 12
    num_heads: int = 16
    ffn_dim: int = 4096
    conv_kernel: int = 31
    mel_mean: float = 6.768444971712967  # released melspec_2048 statistics, unrounded
    mel_std: float = 18.417922652295623
    acoustic_layer: int = 4
    semantic_layer: int = 11

    def __post_init__(self) -> None:
        _positive("music", dim=self.dim, conv_dim=self.conv_dim, num_layers=self.num_layers)
        if self.n_mels % 4:
            raise ValueError(f"music.n_mels must be a multiple of 4, got {self.n_mels}")
        if self.dim % self.num_heads or self.dim % 16:
            raise ValueError(f"music.dim {self.dim} must be a multiple of num_heads {self.num_heads} and of "
                             "16 (the conformer's positional-convolution groups)")
        if self.hop_length * 4 * 25 != SAMPLE_RATE:
            raise ValueError(f"music.hop_length must be 240 (100 Hz mel → 25 Hz), got {self.hop_length}")
        for name in ("acoustic_layer", "semantic_layer"):
            layer = getattr(self, name)
            if not 0 <= layer <= self.num_layers:
                raise ValueError(f"music.{name}={layer} is outside hidden states 0..{self.num_layers}")


@dataclass(frozen=True, kw_only=True)
class CodecConfig:
    """The codec's own layers (checkpoint ``ReasoningCodec.checkpoint``) and the widths they expect.

    ``whisper_dim``/``wavlm_dim``/``music.dim`` must equal the frozen encoders' hidden sizes; the
    loader checks that against the encoders' own configs.
    """

    name: str
    whisper_dim: int = 1024
    wavlm_dim: int = 768
    wavlm_layers: tuple[int, int] = (6, 10)  # mean of hidden_states[6:10]
    music: MusicEncoderConfig = field(default_factory=MusicEncoderConfig)
    dim: int = 768
    reason_depth: int = 5
    reason_head_dim: int = 128
    reason_rotary_dim: int = 64
    reason_ff_mult: int = 4
    queries_every: int = 5
    reason_codebooks: int = N_CODEBOOKS
    reason_card: int = 4096
    reason_codebook_dim: int = 64
    recon_card: int = 8192
    recon_codebook_dim: int = 32
    acoustic_codebooks: int = 6
    film_scale: float = 0.1
    window_mode: WindowMode = "tile"

    def __post_init__(self) -> None:
        _positive(self.name, dim=self.dim, reason_depth=self.reason_depth, reason_card=self.reason_card,
                  recon_card=self.recon_card, whisper_dim=self.whisper_dim, wavlm_dim=self.wavlm_dim)
        if self.dim % self.reason_head_dim:
            raise ValueError(f"{self.name}: dim {self.dim} not a multiple of reason_head_dim "
                             f"{self.reason_head_dim}")
        if self.reason_rotary_dim % 2 or self.reason_rotary_dim > self.reason_head_dim:
            raise ValueError(f"{self.name}: reason_rotary_dim must be even and <= reason_head_dim")
        if self.reason_card > 4096 or self.recon_card > 8192:
            raise ValueError(f"{self.name}: codebook sizes above 4096/8192 do not fit the token store")
        if self.acoustic_codebooks + 2 != N_CODEBOOKS or self.reason_codebooks != N_CODEBOOKS:
            raise ValueError(f"{self.name}: both token streams have exactly {N_CODEBOOKS} codebooks")
        if self.queries_every != 5:
            raise ValueError(f"{self.name}: one query per 5 frames (25 Hz → 5 Hz) is fixed")
        if self.window_mode not in ("tile", "segment"):
            raise ValueError(f"{self.name}: window_mode must be 'tile' or 'segment', got {self.window_mode!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        data = dict(data)
        data["music"] = MusicEncoderConfig(**data.get("music", {}))
        if "wavlm_layers" in data:
            data["wavlm_layers"] = tuple(data["wavlm_layers"])
        return cls(**data)


OFFICIAL = CodecConfig(name="official")

TINY = CodecConfig(
    name="tiny",
    whisper_dim=32,
    wavlm_dim=32,
    music=MusicEncoderConfig(dim=32, conv_dim=8, num_layers=12, num_heads=2, ffn_dim=64, conv_kernel=7),
    dim=32,
    reason_head_dim=16,
    reason_rotary_dim=8,
    reason_card=64,
    reason_codebook_dim=8,
    recon_card=128,
    recon_codebook_dim=8,
)

CONFIGS: dict[str, CodecConfig] = {"official": OFFICIAL, "tiny": TINY}


def codec_config(name: str) -> CodecConfig:
    """The named configuration (``official`` or ``tiny``)."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown codec config {name!r}; choose one of {sorted(CONFIGS)}") from None
