"""Run one evaluation over a sentence store: in this process, or split by shard over Ray workers.

:func:`run_eval` loads the checkpoint (``model.safetensors`` + ``config.json``, as ``model init`` and
``train`` write them), refuses a store whose text vocabulary does not fit the model, then evaluates every
shard. With ``workers > 1`` the shards are dealt round-robin to that many Ray tasks (each loads the model
once, with ``num_gpus`` per task on a GPU cluster) and their totals are added; results are sums, so the
split does not change them. ``limit`` evaluates the first N sentences in this process.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from uniaudio.core.ray_runtime import RayConfig, ensure_ray
from uniaudio.eval.asr import AsrResult, transcribe
from uniaudio.eval.external_asr import ExternalAsr, ExternalAsrError
from uniaudio.eval.token_metrics import TokenTotals, evaluate_tokens
from uniaudio.eval.tts import TtsResult, generate
from uniaudio.sentences.sentence import Sentence
from uniaudio.sentences.store import iter_shard, read_index, shard_uris

__all__ = ["EvalConfig", "EvalError", "run_eval"]

KINDS = ("tokens", "asr", "tts")


class EvalError(ValueError):
    """A store or checkpoint that cannot be evaluated (named in the message)."""


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and how (see ``uniaudio eval --help``)."""

    kind: str
    model_dir: str
    data: str
    tasks: tuple[str, ...] = ()
    limit: int | None = None
    batch_size: int = 8
    max_tokens: int | None = None
    max_new_tokens: int = 128
    tokenizer: str | None = None
    seed: int = 0
    cfg_scale: float = 1.0
    codec: str | None = None
    codec_dir: str | None = None
    wav_dir: str | None = None
    asr_model: str | None = None
    device: str = "cpu"
    workers: int = 1
    gpus_per_worker: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise EvalError(f"unknown evaluation {self.kind!r}; one of {', '.join(KINDS)}")
        if self.workers < 1 or self.batch_size < 1 or (self.limit is not None and self.limit < 1):
            raise EvalError("workers, batch size and limit must be >= 1")
        if self.asr_model is not None and (self.kind != "tts" or self.codec is None):
            raise EvalError("--asr-model scores decoded speech: it is an option of `eval tts` and needs --codec")


def _load_model(config: EvalConfig):
    from uniaudio.model.checkpoint import load_checkpoint

    return load_checkpoint(config.model_dir, device=config.device)


def _read_model_config(config: EvalConfig):
    from uniaudio.model.checkpoint import read_config

    if not (Path(config.model_dir) / "config.json").is_file() and "://" not in config.model_dir:
        raise EvalError(f"{config.model_dir}: no config.json (expected a checkpoint from `uniaudio model init`, "
                        "`uniaudio train` or `uniaudio train export`)")
    return read_config(config.model_dir)


def _check_fit(index: dict[str, Any], model_config, data: str) -> None:
    """Refuse, before any weights are loaded, a store whose text ids the model cannot embed."""
    vocab = int((index.get("tokenizer") or {}).get("vocab_size", 0))
    if vocab > model_config.text_vocab_size:
        raise EvalError(f"{data}: its text tokenizer has {vocab} ids, the model only {model_config.text_vocab_size}")


def _sentences(config: EvalConfig, shards: list[str]) -> Iterator[Sentence]:
    wanted = set(config.tasks)
    for uri in shards:
        for sentence in iter_shard(uri):
            if not wanted or sentence.task in wanted:
                yield sentence


def _codec_decoder(config: EvalConfig):
    if config.codec is None:
        return None
    import soundfile as sf

    from uniaudio.tokenize.reasoning_codec import CodecTokenizer, resolve_checkpoint_set

    paths = resolve_checkpoint_set(config.codec, Path(config.codec_dir) if config.codec_dir else None)
    codec = CodecTokenizer.load(paths, config_name=config.codec, device=config.device, encode=False, decode=True)
    out = Path(config.wav_dir) if config.wav_dir else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    def decode(key: str, recon):
        wave = codec.decode(recon, seed=config.seed)
        if out is not None:
            sf.write(out / (key.replace("/", "__") + ".wav"), wave, 24_000, subtype="FLOAT")
        return wave

    return decode


def _evaluate(config: EvalConfig, shards: list[str]) -> TokenTotals | AsrResult | TtsResult:
    """One worker's share: load the model once, evaluate the sentences of ``shards``."""
    import torch

    from uniaudio.tokenize.text_tokenizer import TextTokenizer

    torch.manual_seed(config.seed)
    model = _load_model(config)
    sentences: Any = _sentences(config, shards)
    if config.limit is not None:
        sentences = itertools.islice(sentences, config.limit)
    try:
        if config.kind == "tokens":
            return evaluate_tokens(model, sentences, config.batch_size, config.max_tokens)
        if config.kind == "asr":
            tokenizer = TextTokenizer.load(config.tokenizer, specials=model.config.tokens.text)
            return transcribe(model, sentences, tokenizer, config.max_new_tokens)
        asr = ExternalAsr.load(config.asr_model, config.device) if config.asr_model else None
        return generate(model, sentences, config.seed, config.cfg_scale, _codec_decoder(config), asr)
    except ExternalAsrError as exc:
        raise EvalError(str(exc)) from exc
    except ValueError as exc:  # a sentence whose ids do not fit the model's token space
        raise EvalError(f"{config.data}: {exc}") from exc


def run_eval(config: EvalConfig, ray: RayConfig | None = None) -> dict[str, Any]:
    """Evaluate ``config.data`` with ``config.model_dir``; returns the JSON-able result."""
    index = read_index(config.data)
    _check_fit(index, _read_model_config(config), config.data)
    shards = shard_uris(config.data, index)
    if config.workers == 1 or config.limit is not None or len(shards) < 2:
        result = _evaluate(config, shards)
    else:
        import ray as ray_lib

        ensure_ray(ray or RayConfig())
        task = ray_lib.remote(num_cpus=1, num_gpus=config.gpus_per_worker or None)(_evaluate)
        groups = [shards[i :: config.workers] for i in range(min(config.workers, len(shards)))]
        parts = ray_lib.get([task.remote(config, group) for group in groups])
        result = parts[0]
        for part in parts[1:]:
            result.add(part)
    return {"evaluation": config.kind, "model": config.model_dir, "data": config.data,
            "tasks": list(config.tasks), "options": asdict(config), **result.to_dict()}
