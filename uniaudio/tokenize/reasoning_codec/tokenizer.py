"""High-level ReasoningCodec use: load a checkpoint set, encode waveforms, decode reconstruction tokens.

:class:`CodecTokenizer` is what the CLI, the Ray tokenize stage and the benchmark call. Contracts:

* input: mono float32 numpy waveforms at 24 kHz, any length ≥ 1 sample, finite values;
* output per clip: ``reason`` uint16 (8, T_r) at 5 Hz with ids < ``reason_card``, ``recon`` uint16
  (8, T_s) at 12.5 Hz with ids < ``recon_card`` in the released order [phone, structure, acoustic×6],
  and, with ``distill=True``, float16 WavLM (``wavlm_dim``, T_s) and MusicFM layer-11 (``music.dim``,
  T_s) features average-pooled to 12.5 Hz;
* deterministic: the same clip gives bit-identical tokens and features whatever else is in the call.
  Windows are only batched with windows of identical length (no padding inside a window, no masks),
  every encoder call has the same batch size (a short last chunk is filled with silent windows whose
  outputs are dropped), so every kernel sees the same shapes, and nothing is random. (Across devices
  or thread counts, float sums may differ in the last bits: features then differ by rounding and a
  token can only change at an exact tie between two codewords.)
* CPU runs in fp32; CUDA runs under bf16 autocast (``precision`` overrides; MusicFM, the mel front
  ends, VQ distances and the flow-matching ODE state always stay fp32).
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from uniaudio.tokenize.reasoning_codec.checkpoint import (
    CheckpointSet,
    codec_fingerprint,
    load_codec_config,
    load_released_state_dict,
    read_codec_checkpoint,
)
from uniaudio.tokenize.reasoning_codec.codec import ReasoningCodec
from uniaudio.tokenize.reasoning_codec.config import CodecConfig, WindowMode
from uniaudio.tokenize.reasoning_codec.decode_windows import DEFAULT_WINDOW_SECONDS, decode_windows
from uniaudio.tokenize.reasoning_codec.encoder_copies import apply_encoder_copies
from uniaudio.tokenize.reasoning_codec.flow_decoder import FlowDecoderConfig
from uniaudio.tokenize.reasoning_codec.frozen_encoders import EncoderPaths, FrozenEncoders, load_frozen_encoders
from uniaudio.tokenize.reasoning_codec.sq_codec import load_sq_codec
from uniaudio.tokenize.reasoning_codec.tiny_set import tiny_set_dir
from uniaudio.tokenize.reasoning_codec.transformer_block import fold_weight_norms
from uniaudio.tokenize.reasoning_codec.windowing import RECON_SAMPLES, cut_windows

log = logging.getLogger(__name__)
CODEC_NAME = "ReasoningCodec"
Precision = Literal["auto", "fp32", "bf16"]
DEFAULT_BATCH_WINDOWS_CUDA = 8


@dataclass
class EncodedAudio:
    reason: np.ndarray
    recon: np.ndarray
    distill: dict[str, np.ndarray] = field(default_factory=dict)


def resolve_checkpoint_set(config_name: str, codec_dir: str | Path | None = None,
                           **overrides: str | Path | None) -> CheckpointSet:
    """``--codec tiny`` with no directory → the cached tiny set; otherwise ``codec_dir`` + overrides
    (``codec``, ``whisper``, ``wavlm``, ``music_ssl``, ... as in :class:`CheckpointSet`)."""
    if codec_dir is None and config_name == "tiny" and overrides.get("codec") is None:
        codec_dir = tiny_set_dir()
    if codec_dir is None and overrides.get("codec") is None:
        raise ValueError(f"--codec {config_name} needs --codec-dir (a directory laid out like uniaudio2_ckpt/) "
                         "or --codec-ckpt and the encoder paths")
    root = Path(codec_dir) if codec_dir is not None else Path(overrides["codec"]).parent
    return CheckpointSet.from_dir(root, **overrides)


class CodecTokenizer:
    """A loaded codec on one device; build with :meth:`load`."""

    def __init__(self, config: CodecConfig, paths: CheckpointSet, codec: ReasoningCodec,
                 encoders: FrozenEncoders | None, device: torch.device, window_mode: WindowMode,
                 batch_windows: int, precision: Precision = "auto") -> None:
        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
        self.config = config
        self.paths = paths
        self.codec = codec
        self.encoders = encoders
        self.device = device
        self.window_mode = window_mode
        self.batch_windows = batch_windows
        self.bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
        self.sq_codec = None

    @classmethod
    def load(cls, paths: CheckpointSet, *, config_name: str | None = None, device: str = "cpu",
             encode: bool = True, decode: bool = False, window_mode: WindowMode | None = None,
             batch_windows: int | None = None, precision: Precision = "auto") -> CodecTokenizer:
        """Load what the requested use needs (encode-only builds no decoder; decode-only no encoders).

        ``precision``: ``auto`` = bf16 autocast on CUDA, fp32 on CPU; ``bf16`` / ``fp32`` force it.
        ``batch_windows``: windows per encoder call (default 8 on CUDA, 1 on CPU, where batching buys
        little and every padded slot would be wasted work).
        """
        if batch_windows is None:
            batch_windows = DEFAULT_BATCH_WINDOWS_CUDA if torch.device(device).type == "cuda" else 1
        if batch_windows < 1:
            raise ValueError(f"batch_windows must be >= 1, got {batch_windows}")
        paths.check(encode=encode, decode=decode)
        config = load_codec_config(paths, config_name)
        flow = FlowDecoderConfig.from_json(paths.flow_config) if decode else None
        codec = ReasoningCodec(config, encode=encode, flow_config=flow)
        state = read_codec_checkpoint(paths.codec)
        load_released_state_dict(codec, state, str(paths.codec))
        fold_weight_norms(codec)
        encoders = None
        if encode:
            encoders = load_frozen_encoders(EncoderPaths(paths.whisper, paths.wavlm, paths.music_ssl), config)
            apply_encoder_copies(encoders, state, str(paths.codec))
        del state
        dev = torch.device(device)
        tok = cls(config, paths, codec.eval().to(dev), encoders.to(dev) if encoders else None, dev,
                  window_mode or config.window_mode, batch_windows, precision)
        if decode:
            tok.sq_codec = load_sq_codec(paths.sq_config, paths.sq_weights).to(dev)
        return tok

    def codec_meta(self) -> dict:
        """``{name, config, fingerprint}`` for the token store's per-sample metadata."""
        return codec_meta(self.config, self.paths, self.window_mode)

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when the precision is bf16 (default on CUDA), else nothing (fp32)."""
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def encode(self, waves: Sequence[np.ndarray], distill: bool = False) -> list[EncodedAudio]:
        """Tokenize clips (mono float32, 24 kHz); see the module docstring for the output contract."""
        if self.encoders is None:
            raise RuntimeError("this tokenizer was loaded without encoders (encode=False)")
        arrays = [np.asarray(w, dtype=np.float32) for w in waves]
        for i, wave in enumerate(arrays):
            if not np.isfinite(wave).all():
                raise ValueError(f"clip {i}: waveform has NaN or infinite samples")
        clips = [cut_windows(wave, self.window_mode) for wave in arrays]
        by_length: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for ci, clip in enumerate(clips):
            for wi, window in enumerate(clip.windows):
                by_length[window.shape[0]].append((ci, wi))
        results: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}
        for length in sorted(by_length):
            jobs = by_length[length]
            for start in range(0, len(jobs), self.batch_windows):
                chunk = jobs[start:start + self.batch_windows]
                windows = [clips[ci].windows[wi] for ci, wi in chunk]
                windows += [np.zeros(length, np.float32)] * (self.batch_windows - len(chunk))  # fixed shape
                batch = torch.from_numpy(np.stack(windows)).to(self.device)
                for job, out in zip(chunk, self._encode_windows(batch, distill), strict=False):
                    results[job] = out
        encoded = []
        for ci, clip in enumerate(clips):
            parts = [results[(ci, wi)] for wi in range(len(clip.windows))]
            reason = np.concatenate([p[0] for p in parts], axis=1)[:, :clip.reason_frames]
            recon = np.concatenate([p[1] for p in parts], axis=1)[:, :clip.recon_frames]
            extra = {}
            if distill:
                extra = {"wavlm": np.concatenate([p[2] for p in parts], axis=1)[:, :clip.recon_frames],
                         "music": np.concatenate([p[3] for p in parts], axis=1)[:, :clip.recon_frames]}
            encoded.append(EncodedAudio(reason=reason, recon=recon, distill=extra))
        return encoded

    def _encode_windows(self, batch: torch.Tensor, distill: bool) -> list[tuple[np.ndarray, ...]]:
        with self.autocast():
            feats = self.encoders(batch)
            reason, recon = self.codec.encode(feats)
        self._check_ids(reason, self.config.reason_card, "reasoning")
        self._check_ids(recon, self.config.recon_card, "reconstruction")
        reason_np = reason.transpose(1, 2).to(torch.int32).cpu().numpy().astype(np.uint16)
        recon_np = recon.transpose(1, 2).to(torch.int32).cpu().numpy().astype(np.uint16)
        if not distill:
            return [(reason_np[i], recon_np[i]) for i in range(batch.shape[0])]
        t12 = recon.shape[1]
        wavlm = feats["wavlm"].float().reshape(batch.shape[0], t12, 4, -1).mean(2)
        music = feats["music_semantic"].float().reshape(batch.shape[0], t12, 2, -1).mean(2)
        wavlm_np = wavlm.transpose(1, 2).half().cpu().numpy()
        music_np = music.transpose(1, 2).half().cpu().numpy()
        return [(reason_np[i], recon_np[i], wavlm_np[i], music_np[i]) for i in range(batch.shape[0])]

    @staticmethod
    def _check_ids(codes: torch.Tensor, card: int, name: str) -> None:
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= card):
            raise RuntimeError(f"{name} codes outside [0, {card}): [{int(codes.min())}, {int(codes.max())}]")

    @torch.inference_mode()
    def decode(self, recon: np.ndarray, steps: int = 10, cfg: float = 1.5, seed: int = 0,
               window_seconds: float = DEFAULT_WINDOW_SECONDS) -> np.ndarray:
        """Reconstruction tokens (8, T_s) → float32 waveform of ``T_s·1920`` samples at 24 kHz, decoded in
        overlapping ``window_seconds`` windows (:mod:`.decode_windows`, released default 20 s)."""
        if self.sq_codec is None:
            raise RuntimeError("this tokenizer was loaded without the decoder (decode=False)")
        recon = np.asarray(recon)
        if recon.ndim != 2 or recon.shape[0] != 8:
            raise ValueError(f"reconstruction tokens must be (8, T), got {recon.shape}")
        codes = torch.from_numpy(recon.astype(np.int64)).t()[None].to(self.device)
        with self.autocast():
            wave = decode_windows(self.codec, self.sq_codec, codes, steps, cfg, seed, window_seconds)
        out = wave[0].float().cpu().numpy()
        if out.shape[0] != recon.shape[1] * RECON_SAMPLES:
            raise RuntimeError(f"decoder gave {out.shape[0]} samples for {recon.shape[1]} frames")
        return out


def codec_meta(config: CodecConfig, paths: CheckpointSet, window_mode: WindowMode | None = None) -> dict:
    """``{"name": "ReasoningCodec", "config": "<name>[/<mode>]", "fingerprint": ...}`` without loading
    any model; ``/<mode>`` only when the window mode is not the config's default."""
    mode = window_mode or config.window_mode
    label = config.name if mode == config.window_mode else f"{config.name}/{mode}"
    return {"name": CODEC_NAME, "config": label,
            "fingerprint": codec_fingerprint(replace(config, window_mode=mode), paths)}
