"""Decode path, part 2: SQ-Codec latents (25 Hz) → 24 kHz waveform.

Released: ``models/scalar24k.py::ScalarAE``, config ``sqcodec_config.yaml`` (``generator.config``),
weights ``sqcodec.pth['codec_model']`` with ``encoder.*``/``decoder.*``. Decoding scalar-quantises the
latents (``round(9·x)/9`` on tanh-bounded values) then runs a convolutional decoder whose upsampling
ratios multiply to 960 (25 Hz → 24 kHz). Only the decoder is built; ``encoder.*`` weights are skipped.

The released ``generator.config`` is not in the public repository, so the decoder layout here is the
project's (documented in docs/codec.md): ``conv_in`` (k7) → per ratio r an ELU + ConvTranspose1d
(kernel 2r, stride r, channels halved) and three dilated residual units (1, 3, 9) → ELU → ``conv_out``
(k7) → tanh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn

HOP = 960


@dataclass(frozen=True, kw_only=True)
class SQCodecConfig:
    latent_dim: int = 136
    channels: int = 1024
    ratios: tuple[int, ...] = (8, 6, 5, 4)
    levels: int = 9

    def __post_init__(self) -> None:
        if math.prod(self.ratios) != HOP:
            raise ValueError(f"SQ-Codec ratios {self.ratios} must multiply to {HOP} (25 Hz → 24 kHz)")
        if self.channels % 2 ** len(self.ratios):
            raise ValueError(f"SQ-Codec channels {self.channels} must be divisible by 2^{len(self.ratios)}")

    @classmethod
    def from_yaml(cls, path: Path) -> SQCodecConfig:
        try:
            data = yaml.safe_load(Path(path).read_text())
            cfg = data["generator"]["config"]
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: cannot read SQ-Codec generator.config ({exc})") from exc
        return cls(latent_dim=int(cfg["latent_dim"]), channels=int(cfg["channels"]),
                   ratios=tuple(int(r) for r in cfg["ratios"]), levels=int(cfg.get("levels", 9)))

    def to_yaml(self) -> str:
        return yaml.safe_dump({"generator": {"config": {
            "latent_dim": self.latent_dim, "channels": self.channels, "ratios": list(self.ratios),
            "levels": self.levels}}})


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 7, dilation=dilation, padding=3 * dilation)
        self.conv2 = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.elu(self.conv1(F.elu(x))))


class UpBlock(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, ratio: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(dim_in, dim_out, 2 * ratio, stride=ratio,
                                     padding=ratio // 2 + ratio % 2, output_padding=ratio % 2)
        self.res = nn.Sequential(*(ResidualUnit(dim_out, d) for d in (1, 3, 9)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res(self.up(F.elu(x)))


class SQDecoder(nn.Module):
    def __init__(self, config: SQCodecConfig) -> None:
        super().__init__()
        self.conv_in = nn.Conv1d(config.latent_dim, config.channels, 7, padding=3)
        dims = [config.channels // 2**i for i in range(len(config.ratios) + 1)]
        self.blocks = nn.ModuleList(UpBlock(dims[i], dims[i + 1], r) for i, r in enumerate(config.ratios))
        self.conv_out = nn.Conv1d(dims[-1], 1, 7, padding=3)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(latents)
        for block in self.blocks:
            x = block(x)
        return torch.tanh(self.conv_out(F.elu(x)))


class SQCodec(nn.Module):
    """Latents (B, T25, latent_dim) → waveform (B, T25·960) at 24 kHz."""

    def __init__(self, config: SQCodecConfig) -> None:
        super().__init__()
        self.config = config
        self.decoder = SQDecoder(config)

    @torch.inference_mode()
    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        levels = self.config.levels
        quantized = torch.round(levels * latents.float().clamp(-1, 1)) / levels
        return self.decoder(quantized.transpose(1, 2)).squeeze(1)


def load_sq_codec(config_path: Path, weights_path: Path) -> SQCodec:
    """SQ-Codec from ``sqcodec_config.yaml`` + ``sqcodec.pth`` (``{'codec_model': state_dict}``)."""
    model = SQCodec(SQCodecConfig.from_yaml(config_path))
    try:
        blob = torch.load(weights_path, map_location="cpu", weights_only=True)
        state = blob["codec_model"]
    except (OSError, KeyError, TypeError) as exc:
        raise ValueError(f"{weights_path}: expected a torch file with a 'codec_model' state dict ({exc})") from exc
    state = {k.removeprefix("module."): v for k, v in state.items()}
    decoder = {k: v for k, v in state.items() if k.startswith("decoder.")}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(decoder))
    unexpected = sorted(k for k in state if not k.startswith(("decoder.", "encoder.")))
    unexpected += sorted(set(decoder) - set(expected))
    shapes = [f"{k}: {tuple(decoder[k].shape)} vs {tuple(expected[k].shape)}"
              for k in set(decoder) & set(expected) if decoder[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(f"{weights_path}: SQ-Codec weights do not match {config_path}: "
                         f"missing {missing}; unexpected {unexpected}; mis-shaped {shapes}")
    model.load_state_dict(decoder)
    return model.eval()

