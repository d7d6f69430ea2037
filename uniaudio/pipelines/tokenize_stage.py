"""The tokenize stage: 24 kHz audio rows → ReasoningCodec token rows (or reject rows).

Contract:

* **inputs**: the audio stage's output rows (``uniaudio.pipelines.audio_stage``): the record columns,
  ``reason``/``detail`` (non-null = rejected upstream, passed through untouched), ``fanout``,
  ``audio_sample_rate`` and ``audio`` (``large_list<float32>``, mono, 24 kHz);
* **outputs**: every input column except ``audio``, plus

  - ``reason_tokens`` / ``recon_tokens``: ``large_list<uint16>``, the (8, T_r) and (8, T_s) arrays
    flattened row-major (codebook-major); ``reason_frames`` / ``recon_frames``: T_r and T_s;
  - ``codec``: JSON ``{name, config, fingerprint}`` of the codec that made the tokens;
  - with ``distill_features``: ``distill_wavlm`` / ``distill_music`` (``large_list<float16>``, the
    (D, T_s) arrays flattened) and ``distill_wavlm_dim`` / ``distill_music_dim``;

  use :func:`unpack_tokens` to get the arrays back. A row whose encoding fails becomes a reject
  (``reason = "codec_error"``, ``detail`` naming the key and the error) with null token columns.

Execution: :class:`TokenizeStage` is a Ray Data ``map_batches`` callable class; each actor loads one
:class:`~uniaudio.tokenize.reasoning_codec.CodecTokenizer` once (``--codec tiny`` builds the cached
tiny set on first use). :func:`apply_tokenize_stage` runs it on an actor pool: ``gpus_per_actor`` GPUs
each on GPU clusters (bf16), CPU actors on the embedded default (``uniaudio.pipelines.build`` sizes the
pool from the cluster's resources). :func:`stage_codec_meta` gives the driver the actors' codec record.
Batches are formed by length: inside a batch the codec runs windows of identical length together, in
fixed-size encoder calls (``batch_windows``, default 8 on CUDA, 1 on CPU), so no window is padded and a
clip's tokens do not depend on its batch-mates (in ``tile`` mode every window is 30 s).

Failures: a batch that raises is retried ``max_retries`` times (not when an input is refused with a
``ValueError``, which a retry cannot fix), then every clip is encoded alone so one bad clip only rejects
itself. The error budget stops a run that is failing wholesale (a wrong
checkpoint, a broken device): once an actor has seen ``error_budget_min`` failed clips and more than
``error_budget`` of its clips failed, it raises :class:`TokenizeErrorBudgetExceeded`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from uniaudio.pipelines.records import RejectReason

if TYPE_CHECKING:
    import ray.data

    from uniaudio.tokenize.reasoning_codec import CodecTokenizer, EncodedAudio

__all__ = [
    "BUILD_BATCH_ROWS",
    "TOKEN_COLUMNS",
    "TokenizeErrorBudgetExceeded",
    "TokenizeStage",
    "TokenizeStageConfig",
    "apply_tokenize_stage",
    "list_arrays",
    "stage_codec_meta",
    "token_rows",
    "unpack_tokens",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 24_000
TOKEN_COLUMNS = ("reason_tokens", "recon_tokens", "reason_frames", "recon_frames", "codec")
DISTILL_COLUMNS = ("distill_wavlm", "distill_music", "distill_wavlm_dim", "distill_music_dim")


class TokenizeErrorBudgetExceeded(RuntimeError):
    """Too many clips failed to encode in one actor; the run is stopped rather than mostly rejected."""


#: Clips per codec-actor task of ``shards build`` (``TokenizeStageConfig.batch_size`` there). Ray pays its
#: per-task costs once per batch, scheduling and a few KB of driver-side state kept until the Ray Data
#: execution ends, so batches of 64 hold the build driver's growth to a fraction of what batches of 8 did
#: (bench/RESULTS.md). The encoder still runs ``batch_windows`` windows at a time, so GPU memory does not
#: depend on it; host memory holds the batch's waveforms (64 clips of 15 s: 92 MB at 24 kHz float32).
BUILD_BATCH_ROWS = 64


@dataclass(frozen=True, kw_only=True)
class TokenizeStageConfig:
    """Which codec to load and how to run it (``paths`` overrides files of the checkpoint set:
    ``codec``, ``whisper``, ``wavlm``, ``music_ssl``; ``precision`` ``auto`` = bf16 on CUDA, fp32 on CPU)."""

    codec: str = "tiny"
    codec_dir: str | None = None
    paths: dict[str, str] = field(default_factory=dict)
    device: str = "auto"
    precision: str = "auto"
    window_mode: str | None = None
    batch_windows: int | None = None
    distill_features: bool = False
    batch_size: int = 8
    max_retries: int = 1
    error_budget: float = 0.05
    error_budget_min: int = 20
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0

    def __post_init__(self) -> None:
        if self.codec not in ("tiny", "official"):
            raise ValueError(f"codec must be 'tiny' or 'official', got {self.codec!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if self.window_mode not in (None, "tile", "segment"):
            raise ValueError(f"window_mode must be 'tile' or 'segment', got {self.window_mode!r}")
        if self.batch_size < 1 or (self.batch_windows is not None and self.batch_windows < 1):
            raise ValueError("batch_size and batch_windows must be >= 1")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if not 0 <= self.error_budget <= 1:
            raise ValueError(f"error_budget is a fraction in [0, 1], got {self.error_budget}")
        unknown = set(self.paths) - {"codec", "whisper", "wavlm", "music_ssl"}
        if unknown:
            raise ValueError(f"unknown checkpoint path overrides {sorted(unknown)}")


def load_tokenizer(config: TokenizeStageConfig) -> CodecTokenizer:
    """The codec for ``config`` on its device (``auto``: CUDA when available, else CPU)."""
    import torch

    from uniaudio.tokenize.reasoning_codec import CodecTokenizer, resolve_checkpoint_set

    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    paths = resolve_checkpoint_set(config.codec, config.codec_dir, **config.paths)
    return CodecTokenizer.load(paths, config_name=config.codec, device=device, window_mode=config.window_mode,
                               batch_windows=config.batch_windows, precision=config.precision)


def stage_codec_meta(config: TokenizeStageConfig) -> dict[str, str]:
    """The ``codec`` record (``{name, config, fingerprint}``) the stage's actors will report, computed
    in the driver without loading models (for ``TokenStoreWriter(uri, codec=...)``)."""
    from uniaudio.tokenize.reasoning_codec.checkpoint import load_codec_config
    from uniaudio.tokenize.reasoning_codec.tokenizer import codec_meta, resolve_checkpoint_set

    paths = resolve_checkpoint_set(config.codec, config.codec_dir, **config.paths)
    return codec_meta(load_codec_config(paths, config.codec), paths, config.window_mode)


class TokenizeStage:
    """``map_batches`` callable: one codec per instance, loaded in ``__init__``."""

    def __init__(self, config: TokenizeStageConfig | dict[str, Any],
                 tokenizer: CodecTokenizer | None = None) -> None:
        self.config = config if isinstance(config, TokenizeStageConfig) else TokenizeStageConfig(**config)
        self.tokenizer = tokenizer or load_tokenizer(self.config)
        self.codec_json = json.dumps(self.tokenizer.codec_meta(), sort_keys=True)
        self.seen = 0
        self.failed = 0

    # -- encoding with retries -----------------------------------------------------------------
    def _encode_all(self, waves: list[np.ndarray]) -> list[EncodedAudio | Exception]:
        for attempt in range(self.config.max_retries + 1):
            try:
                return list(self.tokenizer.encode(waves, distill=self.config.distill_features))
            except ValueError as exc:  # a bad input: retrying the batch cannot help, isolate it below
                log.warning("tokenize batch of %d refused an input: %s", len(waves), exc)
                break
            except Exception as exc:  # noqa: BLE001 - transient (e.g. device memory): retry, then isolate
                log.warning("tokenize batch of %d failed (attempt %d): %s", len(waves), attempt + 1, exc)
        results: list[EncodedAudio | Exception] = []
        for wave in waves:
            try:
                results.append(self.tokenizer.encode([wave], distill=self.config.distill_features)[0])
            except Exception as exc:  # noqa: BLE001 - becomes a reject row
                results.append(exc)
        return results

    def _count(self, n_ok: int, n_failed: int) -> None:
        self.seen += n_ok + n_failed
        self.failed += n_failed
        if self.failed >= self.config.error_budget_min and self.failed > self.config.error_budget * self.seen:
            raise TokenizeErrorBudgetExceeded(
                f"{self.failed} of {self.seen} clips failed to encode in this actor (budget "
                f"{self.config.error_budget:.0%} after {self.config.error_budget_min} failures); "
                "see the rejects for the errors")

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Output rows, in input order (see the module docstring for the columns)."""
        if len(rows) == 0:
            return []
        todo: list[int] = []
        waves: list[np.ndarray] = []
        outputs: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            out = {k: v for k, v in row.items() if k != "audio"}
            outputs.append(out)
            if row.get("reason") is not None:
                continue
            problem = _input_problem(row)
            if problem:
                _reject(out, problem)
                continue
            todo.append(i)
            waves.append(np.asarray(row["audio"], dtype=np.float32))
        results = self._encode_all(waves) if waves else []
        n_failed = 0
        for i, result in zip(todo, results, strict=True):
            out = outputs[i]
            if isinstance(result, Exception):
                n_failed += 1
                _reject(out, f"{out['key']}: {type(result).__name__}: {result}")
                continue
            out.update(self._token_columns(result))
        self._count(len(todo) - n_failed, n_failed)
        return outputs

    def _token_columns(self, enc: EncodedAudio) -> dict[str, Any]:
        cols: dict[str, Any] = {
            "reason_tokens": enc.reason.reshape(-1), "recon_tokens": enc.recon.reshape(-1),
            "reason_frames": enc.reason.shape[1], "recon_frames": enc.recon.shape[1],
            "codec": self.codec_json,
        }
        if self.config.distill_features:
            cols.update(distill_wavlm=enc.distill["wavlm"].reshape(-1), distill_music=enc.distill["music"].reshape(-1),
                        distill_wavlm_dim=enc.distill["wavlm"].shape[0],
                        distill_music_dim=enc.distill["music"].shape[0])
        return cols

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Ray Data entry (``batch_format="pyarrow"``); waveforms are taken as zero-copy numpy views."""
        rows = batch.drop_columns(["audio"]).to_pylist() if "audio" in batch.column_names else batch.to_pylist()
        if "audio" in batch.column_names:
            for row, wave in zip(rows, list_arrays(batch.column("audio")), strict=True):
                row["audio"] = wave
        return self.to_table(self.process_batch(rows), batch.schema)

    def to_table(self, outputs: list[dict[str, Any]], input_schema: pa.Schema) -> pa.Table:
        fields = [input_schema.field(n) for n in input_schema.names if n != "audio"
                  and n not in TOKEN_COLUMNS + DISTILL_COLUMNS]
        names = [f.name for f in fields]
        columns = [pa.array([row.get(n) for row in outputs], type=f.type) for n, f in zip(names, fields, strict=True)]
        extra = [("reason_tokens", np.uint16), ("recon_tokens", np.uint16)]
        if self.config.distill_features:
            extra += [("distill_wavlm", np.float16), ("distill_music", np.float16)]
        for name, dtype in extra:
            fields.append(pa.field(name, pa.large_list(pa.from_numpy_dtype(dtype))))
            columns.append(_list_column([row.get(name) for row in outputs], dtype))
        ints = ["reason_frames", "recon_frames"]
        ints += ["distill_wavlm_dim", "distill_music_dim"] if self.config.distill_features else []
        for name in ints:
            fields.append(pa.field(name, pa.int32()))
            columns.append(pa.array([row.get(name) for row in outputs], type=pa.int32()))
        fields.append(pa.field("codec", pa.string()))
        columns.append(pa.array([row.get("codec") for row in outputs], type=pa.string()))
        return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def list_arrays(column: pa.ChunkedArray, dtype: type = np.float32) -> list[np.ndarray | None]:
    """A ``(large_)list<dtype>`` column as numpy views per row (None for null rows), without Python lists."""
    out: list[np.ndarray | None] = []
    for chunk in column.chunks:
        values = chunk.values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
        offsets = chunk.offsets.to_numpy()  # absolute positions in ``values``, also for sliced chunks
        nulls = chunk.is_null().to_numpy(zero_copy_only=False)
        out += [None if nulls[i] else values[offsets[i]:offsets[i + 1]] for i in range(len(chunk))]
    return out


def _input_problem(row: dict[str, Any]) -> str | None:
    audio = row.get("audio")
    rate = row.get("audio_sample_rate") or SAMPLE_RATE
    if audio is None or len(audio) == 0:
        return f"{row.get('key')}: no audio samples to tokenize"
    if int(rate) != SAMPLE_RATE:
        return f"{row.get('key')}: audio is at {rate} Hz, the codec needs {SAMPLE_RATE} Hz"
    return None


def _reject(out: dict[str, Any], detail: str) -> None:
    out["reason"] = RejectReason.CODEC_ERROR.value
    out["detail"] = detail
    log.warning("codec reject: %s", detail)


def _list_column(values: list[np.ndarray | None], dtype: type) -> pa.Array:
    """A ``large_list`` column from 1-D arrays (None → null), built without Python-level copies."""
    arrays = [np.asarray(v, dtype=dtype) if v is not None else np.zeros(0, dtype) for v in values]
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([a.shape[0] for a in arrays], out=offsets[1:])
    flat = pa.array(np.concatenate(arrays) if arrays else np.zeros(0, dtype))
    mask = pa.array([v is None for v in values], type=pa.bool_())
    return pa.LargeListArray.from_arrays(pa.array(offsets), flat, mask=mask)


def token_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of a stage output table, token and feature columns as numpy views (uint16 / float16)
    rather than Python lists (converting ~10⁵ feature values per clip to Python floats is the slow part)."""
    arrays = {name: np.float16 if name.startswith("distill_") else np.uint16
              for name in ("reason_tokens", "recon_tokens", "distill_wavlm", "distill_music")
              if name in table.schema.names}
    rows = table.drop_columns(list(arrays)).to_pylist()
    for name, dtype in arrays.items():
        for row, values in zip(rows, list_arrays(table.column(name), dtype), strict=True):
            row[name] = values
    return rows


def unpack_tokens(row: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(reason (8, T_r) uint16, recon (8, T_s) uint16, extras)`` from an output row of the stage.

    ``extras`` holds the distillation features as ``{"distill_wavlm": (D, T_s), "distill_music": (D, T_s)}``
    float16 arrays when the stage ran with ``distill_features`` (the token store writes them as
    ``<key>.distill_wavlm.npy`` / ``<key>.distill_music.npy``).
    """
    reason = np.asarray(row["reason_tokens"], dtype=np.uint16).reshape(-1, int(row["reason_frames"]))
    recon = np.asarray(row["recon_tokens"], dtype=np.uint16).reshape(-1, int(row["recon_frames"]))
    extras = {}
    for name in ("distill_wavlm", "distill_music"):
        if row.get(name) is not None:
            extras[name] = np.asarray(row[name], dtype=np.float16).reshape(int(row[f"{name}_dim"]), -1)
    return reason, recon, extras


def apply_tokenize_stage(ds: ray.data.Dataset, config: TokenizeStageConfig, num_actors: int = 1) -> ray.data.Dataset:
    """``ds.map_batches(TokenizeStage)`` on a pool of ``num_actors`` actors with the config's resources."""
    from ray.data import ActorPoolStrategy

    return ds.map_batches(
        TokenizeStage,
        fn_constructor_kwargs={"config": asdict(config)},
        compute=ActorPoolStrategy(size=num_actors),
        batch_size=config.batch_size,
        batch_format="pyarrow",
        num_cpus=config.cpus_per_actor,
        num_gpus=config.gpus_per_actor or None,
    )
