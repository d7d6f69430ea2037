"""MusicFM-25Hz, the codec's music SSL encoder, implemented without fairseq.

Released path: ``mert_fairseq/models/musicfm/musicfm_model.py`` wrapping ``MusicFM25Hz``. Here:

* input 24 kHz mono, truncated to a multiple of 960 samples (one 25 Hz frame);
* mel front end (torchaudio's MelSpectrogram + AmplitudeToDB defaults: Hann window, centred
  reflect-padded STFT, HTK mel scale): n_fft 2048, hop 240, 128 mels, power → dB, normalised with the released
  statistics (``melspec_2048`` mean 6.768444971712967, std 18.417922652295623, as released); the last
  STFT frame is dropped, giving exactly ``n/240`` frames;
* ``conv``: two residual 3×3 Conv2d blocks, each halving frequency and time (100 Hz → 25 Hz), then
  ``linear`` maps ``conv_dim·n_mels/4`` → ``dim``;
* ``conformer``: transformers' ``Wav2Vec2ConformerEncoder`` configured as the released ``w2v2_config.json``
  (:data:`RELEASED_CONFORMER`: swish FFN/convolution activation, rotary base 10000, kernel 31, LayerNorm
  eps 1e-5), eval mode;
* outputs ``hidden_states[acoustic_layer]`` (4) and ``hidden_states[semantic_layer]`` (11), fp32; layers
  past the deepest one needed are not run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn
from transformers import Wav2Vec2ConformerConfig
from transformers.models.wav2vec2_conformer.modeling_wav2vec2_conformer import Wav2Vec2ConformerEncoder

from uniaudio.tokenize.reasoning_codec.config import SAMPLE_RATE, MusicEncoderConfig

FRAME_SAMPLES = 960


class Res2dBlock(nn.Module):
    """Residual 3×3 conv block with a strided 3×3 shortcut; batch-norm in eval mode at inference."""

    def __init__(self, in_ch: int, out_ch: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv3 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)
        self.bn3 = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.bn3(self.conv3(x)))


class Conv2dSubsampling(nn.Module):
    """(B, n_mels, T) → (B, T/4, dim): two stride-(2,2) residual blocks, then a linear projection."""

    def __init__(self, conv_dim: int, n_mels: int, dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(Res2dBlock(1, conv_dim, (2, 2)), Res2dBlock(conv_dim, conv_dim, (2, 2)))
        self.linear = nn.Linear(conv_dim * n_mels // 4, dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv(mel.unsqueeze(1))
        b, c, f, t = x.shape
        return self.linear(x.permute(0, 3, 1, 2).reshape(b, t, c * f))


class MusicFM25Hz(nn.Module):
    """The music SSL encoder; :meth:`forward` returns the (acoustic, semantic) layer features."""

    def __init__(self, config: MusicEncoderConfig) -> None:
        super().__init__()
        self.config = config
        fbank = torchaudio.functional.melscale_fbanks(
            config.n_fft // 2 + 1, 0.0, SAMPLE_RATE / 2, config.n_mels, SAMPLE_RATE)  # htk, no norm
        self.register_buffer("mel_fbank", fbank.t().contiguous(), persistent=False)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        self.conv = Conv2dSubsampling(config.conv_dim, config.n_mels, config.dim)
        self.conformer = Wav2Vec2ConformerEncoder(conformer_config(config))

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, n) 24 kHz → normalised dB mel (B, n_mels, n/240), n truncated to a multiple of 960."""
        n = wave.shape[-1] // FRAME_SAMPLES * FRAME_SAMPLES
        with torch.autocast(device_type=wave.device.type, enabled=False):
            stft = torch.stft(wave[..., :n].float(), self.config.n_fft, self.config.hop_length,
                              window=self.window, return_complex=True)
            power = self.mel_fbank @ (stft.abs() ** 2)
            mel = 10.0 * torch.log10(power.clamp(min=1e-10))[..., :-1]
        return (mel - self.config.mel_mean) / self.config.mel_std

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, n) → acoustic and semantic features, each (B, n // 960, dim), fp32."""
        with torch.autocast(device_type=wave.device.type, enabled=False):
            hidden = self.hidden_states(self.conv(self.log_mel(wave)))
        return hidden[self.config.acoustic_layer], hidden[self.config.semantic_layer]

    def hidden_states(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``hidden_states`` as transformers numbers them (0 = conformer input, i = after layer i, the
        last one after the final LayerNorm), computed only up to the deepest layer needed."""
        enc = self.conformer
        deepest = max(self.config.acoustic_layer, self.config.semantic_layer)
        positions = enc.embed_positions(x)
        hidden = [x]
        for layer in enc.layers[:min(deepest, len(enc.layers))]:
            x = layer(x, attention_mask=None, relative_position_embeddings=positions)
            hidden.append(x)
        if deepest == len(enc.layers):
            hidden[-1] = enc.layer_norm(hidden[-1])
        return hidden


# The settings of the released MusicFM conformer (``musicfm/model/w2v2_config.json``, a
# wav2vec2-conformer-rope-large config) that shape the encoder's forward pass; MusicFM25Hz overrides only
# ``hidden_size`` and ``num_hidden_layers``. Dropouts are the released ones: inference runs in eval mode,
# where they are inactive. ``pos_conv_embed`` (built from ``num_conv_pos_embeddings``/``..._groups`` and
# ``feat_extract_activation``) is part of the checkpoint but unused by the conformer's forward.
RELEASED_CONFORMER = {
    "hidden_act": "swish",
    "layer_norm_eps": 1e-5,
    "conv_depthwise_kernel_size": 31,
    "position_embeddings_type": "rotary",
    "rotary_embedding_base": 10000,
    "max_source_positions": 5000,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "feat_extract_activation": "gelu",
    "do_stable_layer_norm": True,
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.1,
    "conformer_conv_dropout": 0.1,
    "layerdrop": 0.0,
}


def conformer_config(config: MusicEncoderConfig) -> Wav2Vec2ConformerConfig:
    """The transformers config of MusicFM's conformer: :data:`RELEASED_CONFORMER` with the widths of
    ``config`` (official: 12 × 1024, 16 heads, FFN 4096, depthwise kernel 31)."""
    settings = dict(RELEASED_CONFORMER, hidden_size=config.dim, num_hidden_layers=config.num_layers,
                    num_attention_heads=config.num_heads, intermediate_size=config.ffn_dim,
                    conv_depthwise_kernel_size=config.conv_kernel)
    return Wav2Vec2ConformerConfig(**settings, attn_implementation="sdpa")
