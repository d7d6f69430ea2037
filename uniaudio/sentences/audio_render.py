"""New audio for audio-level sentence kinds (``mixture``, ``variation``): read a sample's audio again, tokenize waves.

Two halves, both used on Ray workers inside :meth:`~.registry.SentenceBuilder.build_unit`:

* **Reading** — :func:`read_origin_audio` reads a token-store sample's audio again through its ``origin``
  provenance (``audio_uri``, ``member``, ``offset_s``, ``duration_s``; docs/formats.md, "Token store") with
  the pipelines' own reader (:mod:`uniaudio.pipelines.audio_io`: plain files, tar/zip members, parquet
  cells, local or ``s3://``), and converts it the way the audio stage of ``shards build`` does before the
  codec: channel mean, then soxr to exactly ``round(frames · 24000 / rate)`` samples. The result is float32
  mono at 24 kHz: the waveform the sample's tokens were made from. A sample whose audio cannot be read
  raises :class:`OriginAudioError` (a ``ValueError`` naming the key, the file and why); builders turn it
  into a :class:`~.registry.Skip`.
* **Tokenizing** — :class:`CodecHandle` wraps the codec stage ``shards build`` uses
  (:class:`~uniaudio.pipelines.tokenize_stage.TokenizeStage`: same loader, batching, retries and error
  budget) and turns waveforms into :class:`RenderedTokens` (``reason`` uint16 (8, T_r), ``recon`` uint16
  (8, T_s) and, with ``distill_features``, float16 (T_s, D) features named like the token store's fields).
  It refuses a codec whose fingerprint differs from the input stores' (:class:`CodecFingerprintMismatch`).

How the codec options travel: the CLI builds a :class:`~uniaudio.pipelines.tokenize_stage.TokenizeStageConfig`
from the ``shards build`` codec options and puts ``asdict(config)`` in ``BuildOptions.extra["codec"]``
(:func:`codec_extra`); on a worker :func:`codec_config` gives the config back and :func:`codec_handle` the
handle, loaded once per worker process (cached) and checked against ``ctx.codec_fingerprint``. On the driver,
:func:`check_codec` refuses a mismatching codec before any work starts, without loading the models;
:func:`codec_remote_args` is the Ray resources of one unit (``num_gpus`` when ``--gpus-per-worker`` > 0).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import soxr

from uniaudio.pipelines import audio_io
from uniaudio.pipelines.audio_io import AudioReadError
from uniaudio.pipelines.tokenize_stage import TokenizeStage, TokenizeStageConfig, stage_codec_meta, unpack_tokens

if TYPE_CHECKING:
    from uniaudio.sentences.registry import BuildContext, BuildOptions
    from uniaudio.sentences.sources import SourceSample
    from uniaudio.tokenize.reasoning_codec import CodecTokenizer

__all__ = ["CODEC_EXTRA", "CODEC_SAMPLE_RATE", "CodecFingerprintMismatch", "CodecHandle", "OriginAudioError",
           "RenderedTokens", "check_codec", "codec_config", "codec_extra", "codec_handle", "codec_remote_args",
           "read_origin_audio", "to_codec_rate"]

CODEC_SAMPLE_RATE = 24_000
CODEC_EXTRA = "codec"  # key of the codec config in BuildOptions.extra


class OriginAudioError(ValueError):
    """A sample's audio could not be read again through its ``origin``; ``reason`` is a short label."""

    def __init__(self, key: str, reason: str, detail: str) -> None:
        super().__init__(f"{key}: {detail}")
        self.key = key
        self.reason = reason


class CodecFingerprintMismatch(ValueError):
    """The codec given for new audio is not the codec that made the input token stores."""


@dataclass
class RenderedTokens:
    """One tokenized waveform: ``reason`` uint16 (8, T_r), ``recon`` uint16 (8, T_s), features (T_s, D) float16."""

    reason: np.ndarray
    recon: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)


# -- reading origin audio ---------------------------------------------------------------------------

def to_codec_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """(frames,) or (frames, channels) float audio → float32 mono at 24 kHz, as the audio stage makes it."""
    x = np.asarray(samples, dtype=np.float32)
    mono = x.mean(axis=1, dtype=np.float32) if x.ndim == 2 and x.shape[1] > 1 else x.reshape(x.shape[0], -1)[:, 0]
    length = int(mono.shape[0] * CODEC_SAMPLE_RATE / sample_rate + 0.5)
    out = mono if sample_rate == CODEC_SAMPLE_RATE else soxr.resample(mono, sample_rate, CODEC_SAMPLE_RATE,
                                                                      quality="HQ")
    if out.shape[0] != length:
        out = out[:length] if out.shape[0] > length else np.pad(out, (0, length - out.shape[0]))
    return np.ascontiguousarray(out, dtype=np.float32)


def read_origin_audio(sample: SourceSample | dict[str, Any], key: str | None = None) -> np.ndarray:
    """The audio of a token-store sample (a :class:`~.sources.SourceSample` or its metadata record), read
    again through ``origin``: float32 mono at 24 kHz. Raises :class:`OriginAudioError` when it cannot."""
    meta = sample if isinstance(sample, dict) else sample.meta
    key = key or str(meta.get("key") or getattr(sample, "key", "?"))
    origin = meta.get("origin")
    if not isinstance(origin, dict) or not origin.get("audio_uri"):
        raise OriginAudioError(key, "no origin", "the sample's metadata has no origin.audio_uri to read its audio from")
    uri, member = str(origin["audio_uri"]), origin.get("member")
    offset, duration = float(origin.get("offset_s") or 0.0), origin.get("duration_s")
    name = audio_io.describe(uri, member)
    try:
        with audio_io.open_audio(uri, member) as f:
            decoded = audio_io.decode(f, offset, None if duration is None else float(duration), name=name)
    except AudioReadError as err:
        raise OriginAudioError(key, f"origin audio {err.reason.value}", err.detail) from err
    if decoded.samples.shape[0] == 0:
        raise OriginAudioError(key, "origin audio empty", f"{name}: no samples at offset {offset} s")
    return to_codec_rate(decoded.samples, decoded.sample_rate)


# -- the codec ----------------------------------------------------------------------------------------

def codec_extra(config: TokenizeStageConfig) -> dict[str, Any]:
    """``{"codec": asdict(config)}``: what the CLI merges into ``BuildOptions.extra``."""
    return {CODEC_EXTRA: asdict(config)}


def codec_config(options: BuildOptions) -> TokenizeStageConfig:
    """The codec config carried in ``options.extra["codec"]``; ``ValueError`` when the build has none."""
    raw = options.extra.get(CODEC_EXTRA)
    if not raw:
        raise ValueError(f"{options.kind} tokenizes new audio: it needs the codec options (--codec, --codec-dir, ...)")
    return TokenizeStageConfig(**raw)


def check_codec(config: TokenizeStageConfig, input_fingerprint: str | None) -> dict[str, str]:
    """Driver side, no model loaded: the codec record of ``config``; :class:`CodecFingerprintMismatch` when its
    fingerprint is not ``input_fingerprint`` (the input token stores')."""
    meta = stage_codec_meta(config)
    _check_fingerprint(meta, input_fingerprint)
    return meta


def _check_fingerprint(meta: dict[str, Any], expected: str | None) -> None:
    if expected is None or meta.get("fingerprint") != expected:
        raise CodecFingerprintMismatch(
            f"the codec given ({meta.get('config')}, fingerprint {meta.get('fingerprint')}) is not the codec of the "
            f"input token stores (fingerprint {expected}); new audio must be tokenized by the same codec: give the "
            "--codec/--codec-dir/--window-mode the stores were built with")


def codec_remote_args(options: BuildOptions) -> dict[str, Any]:
    """Ray resources of one unit that runs the codec: ``num_gpus`` (GPU clusters) or ``num_cpus``."""
    config = codec_config(options)
    if config.gpus_per_actor > 0:
        return {"num_gpus": config.gpus_per_actor, "num_cpus": config.cpus_per_actor}
    return {"num_cpus": config.cpus_per_actor}


class CodecHandle:
    """The codec stage of ``shards build`` applied to in-memory waveforms (see the module docstring)."""

    def __init__(self, config: TokenizeStageConfig, expected_fingerprint: str | None,
                 tokenizer: CodecTokenizer | None = None) -> None:
        self.config = config
        self.stage = TokenizeStage(config, tokenizer=tokenizer)
        self.meta = json.loads(self.stage.codec_json)
        _check_fingerprint(self.meta, expected_fingerprint)
        self.fingerprint = str(self.meta["fingerprint"])

    def encode(self, waves: list[np.ndarray], keys: list[str] | None = None) -> list[RenderedTokens]:
        """Tokenize mono float32 24 kHz waveforms in batches of ``batch_size``; ``keys`` label errors.

        Raises ``RuntimeError`` naming the clip when the codec rejects one (non-finite samples, ...)."""
        keys = keys or [f"wave{i}" for i in range(len(waves))]
        out: list[RenderedTokens] = []
        step = self.config.batch_size
        for start in range(0, len(waves), step):
            rows = [{"key": k, "reason": None, "audio": np.asarray(w, dtype=np.float32),
                     "audio_sample_rate": CODEC_SAMPLE_RATE}
                    for k, w in zip(keys[start:start + step], waves[start:start + step], strict=True)]
            for row in self.stage.process_batch(rows):
                if row.get("reason") is not None:
                    raise RuntimeError(f"the codec could not tokenize {row['key']}: {row.get('detail')}")
                reason, recon, extras = unpack_tokens(row)
                out.append(RenderedTokens(reason, recon,
                                          {k: np.ascontiguousarray(v.T) for k, v in extras.items()}))
        return out


@lru_cache(maxsize=2)
def _cached_handle(config_json: str, expected: str | None) -> CodecHandle:
    return CodecHandle(TokenizeStageConfig(**json.loads(config_json)), expected)


def codec_handle(ctx: BuildContext) -> CodecHandle:
    """The unit's codec handle: loaded once per worker process for a config, checked against the input
    stores' fingerprint (``ctx.codec_fingerprint``)."""
    config = codec_config(ctx.options)
    return _cached_handle(json.dumps(asdict(config), sort_keys=True), ctx.codec_fingerprint)
