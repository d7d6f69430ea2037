"""Checkpoint sets on disk, the released codec key layout, strict loading and the codec fingerprint.

A checkpoint set is a directory laid out like the released ``uniaudio2_ckpt/``::

    ReasoningCodec.checkpoint   torch.save({'model': state_dict}) of the codec (released key names)
                                (each torch file may be replaced by its converted ``.safetensors``, which
                                is then preferred: see ``uniaudio codec convert``)
    whisper-medium/             transformers WhisperModel directory (config.json + weights)
    wavlm/                      transformers WavLM directory
    music_ssl.pt                {'model': MusicFM state dict}
    model_config.json           flow-decoder (DiT) config
    sqcodec_config.yaml         SQ-Codec generator.config
    sqcodec.pth                 {'codec_model': SQ-Codec state dict}
    codec_config.json           only in sets written by ``uniaudio codec init-tiny``: the CodecConfig

Released key → module mapping: ``audio_thinking.*`` → ``reasoning.*``; the reconstruction names
(``d_conv_*``, ``cond_fusion_layer_*``, ``time_film_*``, ``reason_adaptor``, ``vq_*``) →
``reconstruction.*``; ``cond_feature_emb``, ``zero_cond_embedding1``, ``cfm_wrapper.*`` → ``decoder.*``.
Entries for the frozen encoders (``whisper_encoder.*``, ``wavlm_encoder.*``, ``pretrained_model.*``) are
applied to the encoders by :mod:`.encoder_copies`; the training-only decoders are known and skipped. A
leading ``module.`` is stripped.

Loading is strict for the parts the model builds: every missing, unexpected or mis-shaped key is
listed in one :class:`CheckpointMismatchError`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import torch

from uniaudio.tokenize.reasoning_codec.codec import ReasoningCodec
from uniaudio.tokenize.reasoning_codec.config import CodecConfig
from uniaudio.tokenize.reasoning_codec.weights_file import SAFETENSORS, read_state_dict

CODEC_FILE = "ReasoningCodec.checkpoint"
RECON_NAMES = frozenset({
    "d_conv_whisper", "d_conv_wavlm", "d_conv_embedding_semantic", "d_conv_embedding_acoustic",
    "cond_fusion_layer_phone", "cond_fusion_layer_semantic", "cond_fusion_layer_acoustic",
    "time_film_phone", "time_film_semantic", "time_film_acoustic", "reason_adaptor",
    "vq_pronunciation_semantic", "vq_structure_semantic", "vq_acoustic",
})
DECODE_NAMES = frozenset({"cond_feature_emb", "zero_cond_embedding1", "cfm_wrapper"})
SKIPPED_PREFIXES = ("whisper_encoder.", "wavlm_encoder.", "pretrained_model.",
                    "structure_semantic_decoder.", "pronunciation_decoder.")


class CheckpointMismatchError(ValueError):
    """The checkpoint's keys or shapes do not match the model; the message lists all of them."""


def internal_key(released: str) -> str | None:
    """Module key for a released key; ``None`` for known entries this project loads elsewhere."""
    key = released.removeprefix("module.")
    if key.startswith(SKIPPED_PREFIXES):
        return None
    head = key.split(".", 1)[0]
    if head == "audio_thinking":
        return "reasoning." + key.split(".", 1)[1]
    if head in RECON_NAMES:
        return "reconstruction." + key
    if head in DECODE_NAMES:
        return "decoder." + key
    return key  # unknown: reported as unexpected


def released_key(internal: str) -> str:
    part, rest = internal.split(".", 1)
    return {"reasoning": "audio_thinking." + rest, "reconstruction": rest, "decoder": rest}[part]


def released_state_dict(model: ReasoningCodec) -> dict[str, torch.Tensor]:
    """The model's weights under the released key names (what ``ReasoningCodec.checkpoint`` holds)."""
    return {released_key(k): v.detach().clone() for k, v in model.state_dict().items()}


def load_released_state_dict(model: ReasoningCodec, state: dict[str, torch.Tensor], source: str) -> None:
    """Strictly load released-layout weights into ``model``; raise listing every problem."""
    expected = model.state_dict()
    built = {k.split(".", 1)[0] for k in expected}
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, value in state.items():
        name = internal_key(key)
        if name is None:
            continue
        part = name.split(".", 1)[0]
        if name in expected:
            mapped[name] = value
        elif part in ("reasoning", "decoder") and part not in built:
            continue  # a part this use of the codec does not build (e.g. the decoder when encoding)
        else:
            unexpected.append(key)
    missing = sorted(released_key(k) for k in expected if k not in mapped)
    shapes = []
    for name, value in mapped.items():
        want = expected[name]
        if value.shape != want.shape and not (name.endswith(".initted") and value.numel() == 1):
            shapes.append(f"{released_key(name)}: file {list(value.shape)}, model {list(want.shape)}")
    if missing or unexpected or shapes:
        lines = [f"{source} does not match ReasoningCodec config {model.config.name!r}:"]
        for label, items in (("missing", missing), ("unexpected", sorted(unexpected)), ("mis-shaped", shapes)):
            if items:
                lines.append(f"  {label} ({len(items)}): " + ", ".join(items))
        raise CheckpointMismatchError("\n".join(lines))
    model.load_state_dict(mapped, strict=True)


def read_codec_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The released codec checkpoint's state dict (``['model']`` of a torch file read with
    ``weights_only=True``, or a converted ``.safetensors``), never unpickled."""
    return read_state_dict(path, "model", "codec checkpoint")


def _preferred(released: Path) -> Path:
    """``X.safetensors`` (written by ``uniaudio codec convert``) when present beside ``released``."""
    converted = released.with_suffix(SAFETENSORS)
    return converted if converted.is_file() else released


@dataclass(frozen=True)
class CheckpointSet:
    """Paths of every file the codec needs; :meth:`from_dir` fills the released names."""

    codec: Path
    whisper: Path
    wavlm: Path
    music_ssl: Path
    flow_config: Path
    sq_config: Path
    sq_weights: Path

    @classmethod
    def from_dir(cls, root: str | Path, **overrides: str | Path | None) -> CheckpointSet:
        root = Path(root)
        paths = cls(
            codec=_preferred(root / CODEC_FILE), whisper=root / "whisper-medium", wavlm=root / "wavlm",
            music_ssl=_preferred(root / "music_ssl.pt"), flow_config=root / "model_config.json",
            sq_config=root / "sqcodec_config.yaml", sq_weights=_preferred(root / "sqcodec.pth"),
        )
        return replace(paths, **{k: Path(v) for k, v in overrides.items() if v is not None})

    def config_file(self) -> Path:
        """``codec_config.json`` beside the codec checkpoint (present in sets written by init-tiny)."""
        return self.codec.parent / "codec_config.json"

    def encode_files(self) -> list[Path]:
        return [self.codec, self.whisper, self.wavlm, self.music_ssl]

    def check(self, *, encode: bool, decode: bool) -> None:
        """Raise ``FileNotFoundError`` listing every file a use of the codec needs but cannot find."""
        needed = (self.encode_files() if encode else [self.codec])
        needed += [self.flow_config, self.sq_config, self.sq_weights] if decode else []
        absent = [str(p) for p in needed if not p.exists()]
        if absent:
            raise FileNotFoundError("codec checkpoint set incomplete, missing: " + ", ".join(absent)
                                    + " (pass --codec-dir or the per-file options)")


def load_codec_config(paths: CheckpointSet, name: str | None) -> CodecConfig:
    """The codec config: ``codec_config.json`` of the set if present, else the named built-in."""
    from uniaudio.tokenize.reasoning_codec.config import codec_config

    if paths.config_file().is_file():
        config = CodecConfig.from_dict(json.loads(paths.config_file().read_text()))
        if name is not None and name != config.name:
            raise ValueError(f"{paths.config_file()} holds config {config.name!r}, but {name!r} was requested")
        return config
    return codec_config(name or "official")


@lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tree_digests(path: Path) -> list[str]:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    out = []
    for p in files:
        st = p.stat()
        name = p.relative_to(path) if path.is_dir() else p.name
        out.append(f"{name}:{_file_digest(str(p), st.st_size, st.st_mtime_ns)}")
    return out


def codec_fingerprint(config: CodecConfig, paths: CheckpointSet) -> str:
    """16 hex digits of sha256 over the config (incl. window mode) and the contents of every file the
    encode path reads (codec checkpoint, both encoder directories, music SSL weights).

    Two stores with equal fingerprints were tokenized by the same weights in the same way.
    """
    digest = hashlib.sha256(config.to_json().encode())
    for path in paths.encode_files():
        for line in _tree_digests(path):
            digest.update(line.encode())
    return digest.hexdigest()[:16]
