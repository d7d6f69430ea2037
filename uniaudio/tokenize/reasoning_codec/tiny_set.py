"""The ``tiny`` checkpoint set: every file of the official set, at small sizes, from a fixed seed.

Weights are random (seeded); the codebooks are initialised from the codec's own features of seeded
synthetic signals (:func:`calibrate_codebooks`) so that tokens vary with the audio.

:func:`write_tiny_set` writes the same formats the official files use (see :mod:`.checkpoint`), so
everything that reads a tiny set goes through the real loading code. :func:`tiny_set_dir` keeps one
in ``$UNIAUDIO_CACHE/codec/tiny-v<version>-seed<seed>`` (default ``~/.cache/uniaudio``), built in a
temporary directory and renamed into place, so concurrent Ray actors never see a partial set.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import WavLMConfig, WavLMModel, WhisperConfig, WhisperModel

from uniaudio.tokenize.reasoning_codec.checkpoint import CODEC_FILE, CheckpointSet, released_state_dict
from uniaudio.tokenize.reasoning_codec.codec import ReasoningCodec
from uniaudio.tokenize.reasoning_codec.config import SAMPLE_RATE, TINY, CodecConfig
from uniaudio.tokenize.reasoning_codec.encoder_copies import released_encoder_copies
from uniaudio.tokenize.reasoning_codec.flow_decoder import FlowDecoderConfig
from uniaudio.tokenize.reasoning_codec.frozen_encoders import FrozenEncoders
from uniaudio.tokenize.reasoning_codec.music_encoder import MusicFM25Hz
from uniaudio.tokenize.reasoning_codec.quantizers import ResidualVQ
from uniaudio.tokenize.reasoning_codec.sq_codec import SQCodec, SQCodecConfig
from uniaudio.tokenize.reasoning_codec.windowing import cut_windows

TINY_SET_VERSION = 3
TINY_LATENT = 8
TINY_FLOW = FlowDecoderConfig(in_channels=2 * TINY_LATENT + TINY.dim, out_channels=TINY_LATENT,
                              num_layers=2, num_attention_heads=2, attention_head_dim=16)
TINY_SQ = SQCodecConfig(latent_hidden_dim=TINY_LATENT, init_channel=4, num_samples=2,
                        downsample_factors=(2, 4, 4, 3, 5), downsample_kernel_sizes=(4, 8, 8, 6, 10),
                        upsample_factors=(5, 3, 4, 4, 2), upsample_kernel_sizes=(10, 6, 8, 8, 4))


def tiny_whisper_config(config: CodecConfig) -> WhisperConfig:
    return WhisperConfig(
        vocab_size=128, num_mel_bins=80, d_model=config.whisper_dim, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=2 * config.whisper_dim,
        decoder_ffn_dim=2 * config.whisper_dim, max_source_positions=1500, max_target_positions=32,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
        begin_suppress_tokens=None, suppress_tokens=None,
    )


def tiny_wavlm_config(config: CodecConfig) -> WavLMConfig:
    return WavLMConfig(
        hidden_size=config.wavlm_dim, num_hidden_layers=config.wavlm_layers[1] - 1,
        num_attention_heads=2, intermediate_size=2 * config.wavlm_dim, conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, vocab_size=32,
    )


def calibration_clips(seed: int, count: int = 4, seconds: float = 2.0) -> list[np.ndarray]:
    """Seeded gliding tones with noise: the signals the tiny codebooks are initialised from."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    clips = []
    for _ in range(count):
        f0, glide, am = rng.uniform(80, 800), rng.uniform(-100, 300), rng.uniform(0.5, 4)
        wave = np.sin(2 * np.pi * (f0 * t + glide * t**2)) * (0.6 + 0.4 * np.sin(2 * np.pi * am * t))
        clips.append((0.3 * wave + 0.05 * rng.standard_normal(t.shape)).astype(np.float32))
    return clips


def _vq_inputs(codec: ReasoningCodec, encoders: FrozenEncoders, clips: list[np.ndarray],
               quantizers: dict[str, ResidualVQ]) -> dict[str, torch.Tensor]:
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in quantizers}
    hooks = [vq.register_forward_pre_hook(lambda _m, args, name=name: captured[name].append(args[0]))
             for name, vq in quantizers.items()]
    try:
        for clip in clips:
            for window in cut_windows(clip, "segment").windows:
                codec.encode(encoders(torch.from_numpy(window)[None]))
    finally:
        for hook in hooks:
            hook.remove()
    return {name: torch.cat([x.reshape(-1, x.shape[-1]) for x in xs]) for name, xs in captured.items()}


def _init_from_data(vq: ResidualVQ, inputs: torch.Tensor, generator: torch.Generator) -> None:
    """Each layer's codewords = random residuals of ``inputs`` (+ 5 % noise), layer after layer."""
    residual = vq.project_in(inputs.float())
    for layer in vq.layers:
        book = layer._codebook
        picks = torch.randint(0, residual.shape[0], (book.embed.shape[1],), generator=generator)
        noise = torch.randn(residual[picks].shape, generator=generator) * 0.05 * residual.std(0)
        book.embed.copy_((residual[picks] + noise)[None])
        book.embed_avg.copy_(book.embed)
        residual = residual - book.lookup(book.nearest(residual))


@torch.inference_mode()
def calibrate_codebooks(codec: ReasoningCodec, encoders: FrozenEncoders, seed: int) -> None:
    """Data-initialise a random codec's codebooks (as vector-quantize-pytorch's k-means init samples
    data), so a random tiny codec uses many ids in both streams. LayerScale is set to 1 (released
    init 1e-4) so the reasoning queries see the audio. Reasoning first: its output conditions the rest.
    """
    generator = torch.Generator().manual_seed(seed)
    for name, param in codec.named_parameters():
        if name.endswith("_scale.scale"):
            param.fill_(1.0)
    clips = calibration_clips(seed)
    groups = [{"reasoning": codec.reasoning.reasoning_vq},
              {name: mod for name, mod in codec.reconstruction.named_children() if isinstance(mod, ResidualVQ)}]
    for quantizers in groups:
        inputs = _vq_inputs(codec, encoders, clips, quantizers)
        for name, vq in quantizers.items():
            _init_from_data(vq, inputs[name], generator)


def write_tiny_set(directory: str | Path, seed: int = 0, config: CodecConfig = TINY) -> CheckpointSet:
    """Write a complete tiny checkpoint set (codec + frozen encoders + decoder) into ``directory``."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    paths = CheckpointSet.from_dir(root)
    torch.manual_seed(seed)
    whisper = WhisperModel(tiny_whisper_config(config))
    wavlm = WavLMModel(tiny_wavlm_config(config))
    music = MusicFM25Hz(config.music)
    whisper.save_pretrained(paths.whisper)
    wavlm.save_pretrained(paths.wavlm)
    torch.save({"model": music.state_dict()}, paths.music_ssl)
    codec = ReasoningCodec(config, flow_config=TINY_FLOW).eval()
    encoders = FrozenEncoders(config, whisper.encoder, wavlm, music)
    calibrate_codebooks(codec, encoders, seed)
    # like the release, the codec checkpoint also holds copies of the frozen encoders
    torch.save({"model": released_state_dict(codec) | released_encoder_copies(encoders)}, paths.codec)
    paths.config_file().write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True))
    paths.flow_config.write_text(json.dumps(TINY_FLOW.to_json_dict(), indent=2))
    paths.sq_config.write_text(TINY_SQ.to_yaml())
    torch.save({"codec_model": SQCodec(TINY_SQ).state_dict()}, paths.sq_weights)
    return paths


def cache_root() -> Path:
    return Path(os.environ.get("UNIAUDIO_CACHE", Path.home() / ".cache" / "uniaudio"))


def tiny_set_dir(seed: int = 0) -> Path:
    """The cached tiny set, created once (atomically: temp dir + rename) and reused afterwards."""
    final = cache_root() / "codec" / f"tiny-v{TINY_SET_VERSION}-seed{seed}"
    if (final / CODEC_FILE).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        write_tiny_set(tmp, seed=seed)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared by every process of the user
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / CODEC_FILE).is_file():  # lost the race to a complete set: fine; else re-raise
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
