"""Decode path, part 2: SQ-Codec latents (25 Hz) → 24 kHz waveform, in the released ``ScalarModel`` layout.

Released: ``models/scalar24k.py`` (``ScalarAE`` wrapping ``ScalarModel(**generator.config)`` from
``sqcodec_config.yaml``), weights ``sqcodec.pth = {'codec_model': ScalarModel.state_dict()}``. The layout
re-implemented here, key by key:

* ``encoder.0``: weight-norm Conv1d(num_bands → init_channel, default_kernel_size); ``encoder.1`` a
  ``PreProcessor`` (Conv1d + PReLU + average pooling over ``num_samples``) when ``num_samples > 1``; one
  ``ResEncoderBlock`` per downsample factor (5 residual units with dilations 1, 3, 5, 7, 9, then a
  weight-norm strided ``down_conv.layer`` and a PReLU ``down_conv.activation`` that all blocks share, as
  the released default argument does); a weight-norm Conv1d to ``latent_hidden_dim``, then tanh;
* ``decoder.0``: weight-norm Conv1d(latent_hidden_dim → init_channel·2^n, delay_kernel_size); one
  ``ResDecoderBlock`` per upsample factor (weight-norm ConvTranspose1d ``up_conv.layer`` without
  activation, then 5 residual units); a ``PostProcessor`` (repeat ``num_samples``× + Conv1d + PReLU)
  when ``num_samples > 1``; a weight-norm Conv1d(init_channel → num_bands); no output activation;
* residual unit: ``x + PReLU(conv2(PReLU(conv1(x))))``, ``conv1`` dilated (res_kernel_size), ``conv2``
  kernel 1, both weight-norm;
* weight norm is the old ``torch.nn.utils.weight_norm`` layout: parameters ``weight_g`` (norm over every
  dimension but the first) and ``weight_v``; ``weight = weight_g · weight_v / ‖weight_v‖``;
* padding: non-causal convolutions pad ``(k·d − d) // 2`` both sides, transposed ones ``(k − s) // 2``;
  causal ones pad ``d·(k − 1)`` on the left / trim the last ``s`` outputs;
* decoding quantises ``round(9·x)/9`` with no clamp (the released ``round_func9``).

The released ``sqcodec_config.yaml`` is not public: :class:`SQCodecConfig` holds ``ScalarModel``'s
constructor arguments; its defaults (136-d latent, 25 Hz, hop 960 at 24 kHz from the paper and the
released code; channel widths, factors and kernels inferred) are replaced by the YAML when it is read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from uniaudio.tokenize.reasoning_codec.weights_file import read_state_dict

SAMPLE_RATE = 24_000
HOP = 960  # 25 Hz latents
LEVELS = 9
DILATIONS = (1, 3, 5, 7, 9)


@dataclass(frozen=True, kw_only=True)
class SQCodecConfig:
    """``ScalarModel``'s constructor arguments (the ``generator.config`` mapping of the YAML)."""

    num_bands: int = 1
    sample_rate: int = SAMPLE_RATE
    causal: bool = False
    num_samples: int = 1
    downsample_factors: tuple[int, ...] = (3, 4, 4, 4, 5)
    downsample_kernel_sizes: tuple[int, ...] = (6, 8, 8, 8, 10)
    upsample_factors: tuple[int, ...] = (5, 4, 4, 4, 3)
    upsample_kernel_sizes: tuple[int, ...] = (10, 8, 8, 8, 6)
    latent_hidden_dim: int = 136
    default_kernel_size: int = 7
    delay_kernel_size: int = 5
    init_channel: int = 64
    res_kernel_size: int = 7

    def __post_init__(self) -> None:
        if self.sample_rate != SAMPLE_RATE or self.num_bands != 1:
            raise ValueError(f"SQ-Codec must be mono {SAMPLE_RATE} Hz, got {self.num_bands} band(s) at "
                             f"{self.sample_rate} Hz")
        for name in ("down", "up"):
            factors = getattr(self, f"{name}sample_factors")
            kernels = getattr(self, f"{name}sample_kernel_sizes")
            if len(factors) != len(kernels):
                raise ValueError(f"SQ-Codec {name}sample_factors {factors} and kernel sizes {kernels} differ in length")
            if self.num_samples * math.prod(factors) != HOP:
                raise ValueError(f"SQ-Codec num_samples·prod({name}sample_factors) = "
                                 f"{self.num_samples}·{math.prod(factors)} must be {HOP} (25 Hz at 24 kHz)")
            if self.causal and any(k != 2 * s for s, k in zip(factors, kernels, strict=True)):
                raise ValueError(f"causal SQ-Codec needs kernel = 2·stride, got {factors} / {kernels}")
        if min(self.latent_hidden_dim, self.init_channel, self.num_samples) < 1:
            raise ValueError("SQ-Codec latent_hidden_dim, init_channel and num_samples must be >= 1")

    @classmethod
    def from_yaml(cls, path: Path) -> SQCodecConfig:
        """Read ``generator.config`` of ``sqcodec_config.yaml``; every constructor argument must be there."""
        try:
            data = yaml.safe_load(Path(path).read_text())
            cfg = data["generator"]["config"]
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: cannot read SQ-Codec generator.config ({exc!r})") from exc
        if not isinstance(cfg, dict):
            raise ValueError(f"{path}: generator.config is not a mapping")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in cfg]
        unknown = sorted(set(cfg) - set(names))
        if missing or unknown:
            raise ValueError(f"{path}: generator.config must hold ScalarModel's arguments; missing {missing}, "
                             f"unknown {unknown}")
        values = {n: tuple(int(v) for v in cfg[n]) if isinstance(cfg[n], list) else cfg[n] for n in names}
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def to_yaml(self) -> str:
        config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return yaml.safe_dump({"generator": {"config": config}})


class WNConv1d(nn.Module):
    """Conv1d (or ConvTranspose1d) with old-style weight norm: ``weight_g``, ``weight_v``, ``bias``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, stride: int = 1, dilation: int = 1,
                 causal: bool = False, transposed: bool = False) -> None:
        super().__init__()
        shape = (c_in, c_out, kernel) if transposed else (c_out, c_in, kernel)
        weight = torch.empty(shape)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        self.weight_g = nn.Parameter(weight.norm(dim=(1, 2), keepdim=True))
        self.weight_v = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.stride, self.dilation, self.causal, self.transposed = stride, dilation, causal, transposed
        if transposed:
            self.padding = 0 if causal else (kernel - stride) // 2
        else:
            self.padding = 0 if causal else (kernel * dilation - dilation) // 2
        self.left = dilation * (kernel - 1) if causal and not transposed else 0

    def weight(self) -> torch.Tensor:
        return self.weight_g * self.weight_v / self.weight_v.norm(dim=(1, 2), keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            y = F.conv_transpose1d(x, self.weight(), self.bias, self.stride, self.padding)
            return y[..., : -self.stride] if self.causal else y
        return F.conv1d(F.pad(x, (self.left, 0)), self.weight(), self.bias, self.stride, self.padding,
                        self.dilation)


class PlainConv1d(nn.Conv1d):
    """Conv1d without weight norm (``PreProcessor``/``PostProcessor``), same-length padding."""

    def __init__(self, channels: int, kernel: int, causal: bool) -> None:
        super().__init__(channels, channels, kernel, padding=0 if causal else (kernel - 1) // 2)
        self.left = kernel - 1 if causal else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int, kernel: int, causal: bool) -> None:
        super().__init__()
        self.conv1 = WNConv1d(channels, channels, kernel, dilation=dilation, causal=causal)
        self.conv2 = WNConv1d(channels, channels, 1, causal=causal)
        self.activation1 = nn.PReLU()
        self.activation2 = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.activation2(self.conv2(self.activation1(self.conv1(x))))


class DownConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, causal: bool, activation: nn.PReLU) -> None:
        super().__init__()
        self.layer = WNConv1d(c_in, c_out, kernel, stride=stride, causal=causal)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.layer(x))


class UpConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, causal: bool) -> None:
        super().__init__()
        self.layer = WNConv1d(c_in, c_out, kernel, stride=stride, causal=causal, transposed=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class ResEncoderBlock(nn.Module):
    def __init__(self, c_in: int, stride: int, kernel: int, cfg: SQCodecConfig, activation: nn.PReLU) -> None:
        super().__init__()
        self.convs = nn.ModuleList(ResidualUnit(c_in, d, cfg.res_kernel_size, cfg.causal) for d in DILATIONS)
        self.down_conv = DownConv(c_in, 2 * c_in, kernel, stride, cfg.causal, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x)
        return self.down_conv(x)


class ResDecoderBlock(nn.Module):
    def __init__(self, c_in: int, stride: int, kernel: int, cfg: SQCodecConfig) -> None:
        super().__init__()
        self.up_conv = UpConv(c_in, c_in // 2, kernel, stride, cfg.causal)
        self.convs = nn.ModuleList(ResidualUnit(c_in // 2, d, cfg.res_kernel_size, cfg.causal) for d in DILATIONS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up_conv(x)
        for conv in self.convs:
            x = conv(x)
        return x


class PreProcessor(nn.Module):
    def __init__(self, channels: int, cfg: SQCodecConfig) -> None:
        super().__init__()
        self.conv = PlainConv1d(channels, cfg.default_kernel_size, cfg.causal)
        self.activation = nn.PReLU()
        self.pooling = nn.AvgPool1d(cfg.num_samples)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pooling(self.activation(self.conv(x)))


class PostProcessor(nn.Module):
    def __init__(self, channels: int, cfg: SQCodecConfig) -> None:
        super().__init__()
        self.num_samples = cfg.num_samples
        self.conv = PlainConv1d(channels, cfg.default_kernel_size, cfg.causal)
        self.activation = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(x.repeat_interleave(self.num_samples, dim=-1)))


class SQCodec(nn.Module):
    """``ScalarModel``: :meth:`encode` waveform → latents, :meth:`forward` latents → waveform."""

    def __init__(self, config: SQCodecConfig) -> None:
        super().__init__()
        self.config = config
        c, k = config.init_channel, config.default_kernel_size
        shared = nn.PReLU()  # the released DownsampleLayer's default activation: one module for all blocks
        encoder: list[nn.Module] = [WNConv1d(config.num_bands, c, k, causal=config.causal)]
        if config.num_samples > 1:
            encoder.append(PreProcessor(c, config))
        for i, (s, kern) in enumerate(zip(config.downsample_factors, config.downsample_kernel_sizes, strict=True)):
            encoder.append(ResEncoderBlock(c * 2**i, s, kern, config, shared))
        top = c * 2 ** len(config.downsample_factors)
        encoder.append(WNConv1d(top, config.latent_hidden_dim, k, causal=config.causal))
        n_up = len(config.upsample_factors)
        decoder: list[nn.Module] = [WNConv1d(config.latent_hidden_dim, c * 2**n_up, config.delay_kernel_size)]
        for i, (s, kern) in enumerate(zip(config.upsample_factors, config.upsample_kernel_sizes, strict=True)):
            decoder.append(ResDecoderBlock(c * 2 ** (n_up - i), s, kern, config))
        if config.num_samples > 1:
            decoder.append(PostProcessor(c, config))
        decoder.append(WNConv1d(c, config.num_bands, k, causal=config.causal))
        self.encoder = nn.ModuleList(encoder)
        self.decoder = nn.ModuleList(decoder)

    @torch.inference_mode()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, n) 24 kHz → tanh-bounded latents (B, ≈n/960, latent_hidden_dim), before quantisation."""
        x = wave.float()[:, None]
        for layer in self.encoder[:-1]:
            x = layer(x)
        return torch.tanh(self.encoder[-1](x)).transpose(1, 2)

    @torch.inference_mode()
    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, T25, latent_hidden_dim) → waveform (B, ≥ T25·960); ``round(9x)/9`` first. Runs in
        fp32 even under autocast (the release decodes outside its bf16 block)."""
        with torch.autocast(device_type=latents.device.type, enabled=False):
            x = (torch.round(LEVELS * latents.float()) / LEVELS).transpose(1, 2)
            for layer in self.decoder:
                x = layer(x)
        return x[:, 0]


def load_sq_codec(config_path: Path, weights_path: Path) -> SQCodec:
    """SQ-Codec from ``sqcodec_config.yaml`` + ``sqcodec.pth`` (``{'codec_model': state_dict}``) or its
    converted ``.safetensors``; strict: every key of the released layout, nothing else."""
    config = SQCodecConfig.from_yaml(config_path)
    model = SQCodec(config)
    state = {k.removeprefix("module."): v for k, v in
             read_state_dict(weights_path, "codec_model", "SQ-Codec").items()}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: file {list(state[k].shape)}, model {list(expected[k].shape)}"
              for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(f"{weights_path}: SQ-Codec weights do not match {config_path}: "
                         f"missing {missing}; unexpected {unexpected}; mis-shaped {shapes}")
    model.load_state_dict(state, strict=True)
    return model.eval()
