"""The codec's frozen encoders: Whisper encoder, WavLM and MusicFM, loaded from local files.

* Whisper: ``transformers.WhisperModel.from_pretrained(dir).encoder``; input resampled 24k→16k, the
  Whisper log-mel (80 bins, n_fft 400, hop 160, the extractor's mel filters and dynamic-range clamp)
  computed in torch on the model's device, padded to 30 s → 1500 frames at 50 Hz.
* WavLM: ``transformers.AutoModel.from_pretrained(dir)``; 24k→16k, 160 zero samples appended, mean of
  ``hidden_states[6:10]`` → 50 Hz.
* MusicFM-25Hz (:mod:`.music_encoder`) from the music SSL weights file.

:meth:`FrozenEncoders.forward` takes windows of ``L + 240`` samples at 24 kHz (``L`` a multiple of
9600) and returns features trimmed to exactly ``L/480`` (50 Hz) or ``L/960`` (25 Hz) frames.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torchaudio
from torch import nn
from transformers import AutoModel, WhisperFeatureExtractor, WhisperModel

from uniaudio.tokenize.reasoning_codec.config import WINDOW_CONTEXT, CodecConfig
from uniaudio.tokenize.reasoning_codec.music_encoder import MusicFM25Hz
from uniaudio.tokenize.reasoning_codec.weights_file import read_state_dict

log = logging.getLogger(__name__)

WHISPER_SR = 16_000
WHISPER_SAMPLES = 30 * WHISPER_SR
WHISPER_N_FFT = 400
WHISPER_HOP = 160
LEGACY_WEIGHT_NORM = {".weight_g": ".parametrizations.weight.original0",
                      ".weight_v": ".parametrizations.weight.original1"}
MUSIC_KEY = re.compile(r"(?:^|\.)((?:conv|conformer)\..*)$")  # leftmost conv./conformer. segment


class WhisperLogMel(nn.Module):
    """Whisper's log-mel features in torch (same filters and clamping as ``WhisperFeatureExtractor``)."""

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        filters = WhisperFeatureExtractor(feature_size=n_mels).mel_filters  # (n_fft/2+1, n_mels)
        self.register_buffer("filters", torch.tensor(filters, dtype=torch.float32).t(), persistent=False)
        self.register_buffer("window", torch.hann_window(WHISPER_N_FFT), persistent=False)

    def forward(self, wave16: torch.Tensor) -> torch.Tensor:
        """(B, n ≤ 480000) 16 kHz → (B, n_mels, 3000), zero-padded to 30 s as the extractor does.

        Frames that see only the zero padding have zero power, so the STFT runs on the input and the
        ``n_fft`` zeros after it only: the same values as a 30 s STFT at a fraction of the cost for
        short windows (``segment`` mode).
        """
        frames = WHISPER_SAMPLES // WHISPER_HOP
        n = wave16.shape[-1]
        # frame t sees samples [160t - 200, 160t + 200): those with 160t - 200 >= n see only zeros, and
        # a prefix of length >= n + 400 computes every other frame without reaching its own end
        span = min(WHISPER_SAMPLES, -(-(n + WHISPER_N_FFT) // WHISPER_HOP) * WHISPER_HOP)
        wave16 = torch.nn.functional.pad(wave16.float(), (0, span - n))
        stft = torch.stft(wave16, WHISPER_N_FFT, WHISPER_HOP, window=self.window, return_complex=True)
        power = stft[..., :frames].abs() ** 2
        if power.shape[-1] < frames:
            power = torch.nn.functional.pad(power, (0, frames - power.shape[-1]))
        logmel = torch.clamp(self.filters @ power, min=1e-10).log10()
        logmel = torch.maximum(logmel, logmel.amax(dim=(-2, -1), keepdim=True) - 8.0)
        return (logmel + 4.0) / 4.0


class FrozenEncoders(nn.Module):
    """Whisper encoder + WavLM + MusicFM; no gradients, eval mode."""

    def __init__(self, config: CodecConfig, whisper_encoder: nn.Module, wavlm: nn.Module,
                 music: MusicFM25Hz) -> None:
        super().__init__()
        self.config = config
        self.whisper_encoder = whisper_encoder
        self.wavlm = wavlm
        self.music = music
        self.whisper_mel = WhisperLogMel(whisper_encoder.config.num_mel_bins)
        self.resample = torchaudio.transforms.Resample(24_000, WHISPER_SR)
        check_widths(config, whisper_encoder.config.d_model, wavlm.config.hidden_size, music.config.dim)
        self.requires_grad_(False)
        self.eval()

    def forward(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, L + 240) at 24 kHz → ``whisper`` (B, L/480, Dw), ``wavlm`` (B, L/480, Dl),
        ``music_acoustic`` / ``music_semantic`` (B, L/960, Dm)."""
        length = windows.shape[-1] - WINDOW_CONTEXT
        n50, n25 = length // 480, length // 960
        with torch.autocast(device_type=windows.device.type, enabled=False):
            wave16 = self.resample(windows.float())
            mel = self.whisper_mel(wave16[:, :WHISPER_SAMPLES])
        whisper = self.whisper_encoder(mel.to(self._dtype(self.whisper_encoder))).last_hidden_state
        wavlm_in = torch.nn.functional.pad(wave16, (0, 160))
        hidden = self.wavlm(wavlm_in, output_hidden_states=True).hidden_states
        lo, hi = self.config.wavlm_layers
        wavlm = torch.stack(hidden[lo:hi]).mean(0)
        acoustic, semantic = self.music(windows)
        feats = {"whisper": whisper[:, :n50], "wavlm": wavlm[:, :n50],
                 "music_acoustic": acoustic[:, :n25], "music_semantic": semantic[:, :n25]}
        for name, value in feats.items():
            expected = n50 if name in ("whisper", "wavlm") else n25
            if value.shape[1] != expected:
                raise RuntimeError(f"{name} gave {value.shape[1]} frames for {length} samples, "
                                   f"expected {expected}")
        return feats

    @staticmethod
    def _dtype(module: nn.Module) -> torch.dtype:
        return next(module.parameters()).dtype


def check_widths(config: CodecConfig, whisper: int, wavlm: int, music: int) -> None:
    """Raise if the encoders' hidden sizes differ from what the codec's layers expect."""
    found = {"whisper": (whisper, config.whisper_dim), "wavlm": (wavlm, config.wavlm_dim),
             "music": (music, config.music.dim)}
    bad = [f"{k}: encoder has {got}, codec config {config.name!r} expects {want}"
           for k, (got, want) in found.items() if got != want]
    if bad:
        raise ValueError("frozen encoder widths do not match the codec: " + "; ".join(bad))


@dataclass(frozen=True)
class EncoderPaths:
    """Where the frozen encoders live: two Hugging Face directories and the music SSL weights file."""

    whisper: Path
    wavlm: Path
    music_ssl: Path


def _checked_from_pretrained(loader, path: Path, what: str, required_prefix: str = "") -> nn.Module:
    """``loader.from_pretrained(path)``, raising if weights are missing or mis-shaped (transformers
    would re-initialise them randomly); unexpected entries (unused heads) are only logged."""
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{what} directory {path} has no config.json (expected a "
                                "save_pretrained / Hugging Face snapshot)")
    try:
        model, info = loader.from_pretrained(path, output_loading_info=True)
    except (RuntimeError, OSError) as exc:
        raise ValueError(f"{what} weights in {path} do not fit its config.json or cannot be read: "
                         f"{str(exc).splitlines()[0]}") from exc
    missing = [k for k in info.get("missing_keys", []) if k.startswith(required_prefix)]
    mismatched = [str(m) for m in info.get("mismatched_keys", [])]
    if missing or mismatched:
        raise ValueError(f"{what} weights in {path} do not fit its config.json: missing {sorted(missing)}; "
                         f"mis-shaped {mismatched}")
    if info.get("unexpected_keys"):
        log.info("%s: ignored %d unused entries", path, len(info["unexpected_keys"]))
    return model


def load_whisper_encoder(path: Path) -> nn.Module:
    """The encoder of ``WhisperModel.from_pretrained(path)`` (decoder weights are not required)."""
    return _checked_from_pretrained(WhisperModel, path, "Whisper", required_prefix="encoder.").encoder


def load_wavlm(path: Path) -> nn.Module:
    return _checked_from_pretrained(AutoModel, path, "WavLM")


def current_weight_norm_name(key: str) -> str:
    """Old ``torch.nn.utils.weight_norm`` names (``weight_g``/``weight_v``, as in checkpoints saved with
    transformers 4.19) → the parametrisation names the current modules use."""
    for old, new in LEGACY_WEIGHT_NORM.items():
        if key.endswith(old):
            return key[: -len(old)] + new
    return key


def music_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The MusicFM encoder weights from ``music_ssl.pt`` (``{'model': state_dict}`` read with
    ``weights_only=True``) or its converted ``.safetensors`` (``uniaudio codec convert``).

    Keys are accepted with any leading prefix before ``conv.``/``conformer.`` (fairseq checkpoints
    nest the model, e.g. ``model.conv.…``); other entries (pre-training heads) are reported and skipped.
    """
    state = read_state_dict(path, "model", "music SSL weights")
    out, skipped = {}, []
    for key, value in state.items():
        match = MUSIC_KEY.search(key)
        if match is None:
            skipped.append(key)
        else:
            out[current_weight_norm_name(match.group(1))] = value
    if skipped:
        log.info("%s: skipped %d non-encoder entries (e.g. %s)", path, len(skipped), skipped[:3])
    return out


def load_music_encoder(path: Path, config: CodecConfig) -> MusicFM25Hz:
    model = MusicFM25Hz(config.music)
    state = music_state_dict(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape]
    problems = [f"missing: {missing}" if missing else "", f"unexpected: {unexpected}" if unexpected else "",
                f"mis-shaped: {shapes}" if shapes else ""]
    if any(problems):
        raise ValueError(f"{path}: music SSL weights do not match MusicFM ({config.music}): "
                         + "; ".join(p for p in problems if p))
    model.load_state_dict(state, strict=True)
    return model


def load_frozen_encoders(paths: EncoderPaths, config: CodecConfig) -> FrozenEncoders:
    return FrozenEncoders(config, load_whisper_encoder(paths.whisper), load_wavlm(paths.wavlm),
                          load_music_encoder(paths.music_ssl, config))
