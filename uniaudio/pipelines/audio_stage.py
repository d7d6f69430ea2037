"""The audio stage: record rows → decoded, mono, 24 kHz, filtered audio rows (or reject rows).

Contract (one input row may give several output rows; every input row gives at least one):

* **inputs**: rows with the :data:`~uniaudio.pipelines.records.RECORD_SCHEMA` columns (at least
  ``key, source, audio_uri, member, offset_s, duration_s``); any other column is passed through. A
  row that arrives with a non-null ``reason`` (rejected upstream, e.g. from metadata) is passed
  through untouched with ``fanout`` 1.
* **outputs**: the input columns, with ``offset_s``/``duration_s``/``sample_rate`` measured (the
  segment or window actually decoded, and the source's sample rate), plus

  - ``reason``/``detail``: ``None`` for a kept row; else the :class:`RejectReason` value and a detail
    naming the file/member (reject rows carry no audio); ``io_failure`` when the audio could not be
    read because of an I/O error that persisted through the retries (not a reject: see
    :mod:`~uniaudio.pipelines.io_failures`);
  - ``fanout``: how many output rows the row's input produced (lets consumers know when all outputs of
    an input have arrived, however Ray Data splits blocks);
  - ``audio`` (``list<float32>``, mono at ``target_sr``; only when ``keep_audio``) and
    ``audio_sample_rate``.

Per kept row: decode with soundfile (only the record's segment: seek + read; a segment longer than
``max_duration_s``, default :data:`DEFAULT_MAX_DURATION_S`, is rejected as ``too_long`` from its header,
without decoding), or, when ``window_s`` is set, read the segment window by window (keys ``<key>/w000``,
``<key>/w001``..., offsets in the source's timeline; one window in memory at a time), then
filter each piece in this order, dropping it with the first reason that applies: ``too_short``,
``too_long``, ``silent``, ``clipped``, ``low_bandwidth``; then downmix to mono (channel mean) and
resample with soxr (chosen over torchaudio by measurement, see ``bench/ingest_bench.py``) to exactly
``round(frames * target_sr / source_sr)`` samples. With ``keep_audio`` off (ingest) the waveform is not
needed, so the resampling is skipped; every filter runs on the source-rate audio either way.

Bandwidth estimate (:func:`estimate_bandwidth_hz`): the mean power spectrum of up to 16 Hann-windowed
1024-sample frames spread over the mono signal at the *source* rate; the bandwidth is the highest
frequency whose level is within ``bandwidth_floor_db`` (60 dB) of the spectrum's peak. Audio
upsampled from a lower rate (8 kHz telephony stored at 16 kHz, a 16 kHz Opus decoded at 48 kHz)
has almost no energy above its original Nyquist frequency, so its estimate sits there; it is dropped
as ``low_bandwidth`` when the estimate is below ``min_bandwidth_hz``.

The stage is a plain callable object: :meth:`AudioStage.process_batch` works in a loop over dict rows;
:meth:`AudioStage.__call__` is the Ray Data ``map_batches`` entry (``batch_format="pyarrow"``); use
:func:`apply_audio_stage` to add it to a dataset with its declared resources. It keeps no state
between batches except a per-process cache of tar indexes, so it runs as Ray *tasks*.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import soxr

from uniaudio.core.retry import TransientIOError, is_transient
from uniaudio.pipelines import audio_io
from uniaudio.pipelines.audio_io import AudioReadError, Decoded
from uniaudio.pipelines.io_failures import IO_FAILURE, failure_detail
from uniaudio.pipelines.records import RECORD_SCHEMA, RejectReason

if TYPE_CHECKING:
    import ray.data

__all__ = [
    "CODEC_SAMPLE_RATE",
    "DEFAULT_MAX_DURATION_S",
    "METADATA_BATCH_ROWS",
    "STAGE_COLUMNS",
    "AudioFilterConfig",
    "AudioStage",
    "AudioStageConfig",
    "Resources",
    "apply_audio_stage",
    "estimate_bandwidth_hz",
    "split_outputs",
]

log = logging.getLogger(__name__)

CODEC_SAMPLE_RATE = 24_000
#: Columns the stage adds to its input columns (``audio`` only with ``keep_audio``).
STAGE_COLUMNS = ("reason", "detail", "fanout", "audio_sample_rate", "audio")
_INPUT_COLUMNS = ("key", "source", "audio_uri", "member", "offset_s", "duration_s")


@dataclass(frozen=True)
class Resources:
    """What one task of a stage needs (NeMo Curator style)."""

    cpus: float = 1.0
    gpus: float = 0.0


#: Rows per block for a pass that keeps no waveforms (``keep_audio`` off: ``ingest``). Its output rows are
#: metadata (~0.3 KB), each file is decoded and dropped before the next, and container members are read
#: :attr:`AudioStage.read_group` rows at a time, so a worker holds one decoded file however many rows a
#: batch has; larger blocks only mean fewer of them, and the driver keeps a few KB of Ray bookkeeping per
#: block until the run ends (``bench/RESULTS.md``, "Driver memory at corpus scale"). Passes that keep
#: waveforms (``shards build``) hold a batch's audio and keep small batches.
METADATA_BATCH_ROWS = 128

#: Default longest single sample (s). Longer audio is rejected (``too_long``) before it is decoded,
#: unless cut into windows (``window_s``); the limit then applies to each window. 10 minutes: a
#: whole song or long clip fits; beyond it one sample is already ~5x a 2048-token training sequence
#: at 17.5 tokens/s, and decoding it whole would cost 230 MB (48 kHz stereo float32) per worker.
DEFAULT_MAX_DURATION_S = 600.0


@dataclass
class AudioFilterConfig:
    """Drop rules; ``None`` disables a rule. Durations in seconds, levels in dBFS."""

    min_duration_s: float | None = 0.5
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S
    #: A piece whose loudest 20 ms frame (RMS) is below this level is ``silent``.
    silence_dbfs: float | None = -60.0
    #: Samples at or above this magnitude (any channel) count as clipped.
    clip_level: float = 0.999
    #: More than this fraction of clipped samples is ``clipped``.
    max_clipped_fraction: float | None = 0.001
    #: Estimated bandwidth below this is ``low_bandwidth`` (see :func:`estimate_bandwidth_hz`).
    min_bandwidth_hz: float | None = 3000.0
    bandwidth_floor_db: float = 60.0

    def __post_init__(self) -> None:
        low, high = self.min_duration_s, self.max_duration_s
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_duration_s={low} exceeds max_duration_s={high}")
        if not 0 < self.clip_level <= 1:
            raise ValueError(f"clip_level must be in (0, 1], got {self.clip_level}")
        if self.bandwidth_floor_db <= 0:
            raise ValueError(f"bandwidth_floor_db must be positive, got {self.bandwidth_floor_db}")


@dataclass
class AudioStageConfig:
    """What the stage produces: rate, filters, optional long-form windows, whether to keep waveforms."""

    target_sr: int = CODEC_SAMPLE_RATE
    filters: AudioFilterConfig = field(default_factory=AudioFilterConfig)
    #: Cut each record's segment into consecutive windows of this length (long-form audio).
    window_s: float | None = None
    #: Windows shorter than this (the tail) are dropped as ``too_short``; None keeps them.
    min_window_s: float | None = None
    #: Attach the 24 kHz waveform (``audio`` column); ingest turns it off, shard building keeps it.
    keep_audio: bool = True
    resample_quality: str = "HQ"

    def __post_init__(self) -> None:
        if self.target_sr <= 0:
            raise ValueError(f"target_sr must be positive, got {self.target_sr}")
        if self.window_s is not None and self.window_s <= 0:
            raise ValueError(f"window_s must be positive, got {self.window_s}")
        if self.min_window_s is not None and self.window_s is None:
            raise ValueError("min_window_s needs window_s")


@lru_cache(maxsize=8)
def _hann(nfft: int) -> np.ndarray:
    return np.hanning(nfft).astype(np.float32)


def estimate_bandwidth_hz(
    mono: np.ndarray, sample_rate: int, floor_db: float = 60.0, nfft: int = 1024, max_frames: int = 16
) -> float:
    """Highest frequency (Hz) whose mean power is within ``floor_db`` of the spectrum's peak."""
    if mono.shape[0] < nfft:
        mono = np.pad(mono, (0, nfft - mono.shape[0]))
    count = min(max_frames, 1 + (mono.shape[0] - nfft) // (nfft // 2))
    starts = np.linspace(0, mono.shape[0] - nfft, num=count).astype(np.int64)
    frames = np.stack([mono[start : start + nfft] for start in starts]) * _hann(nfft)
    spectrum = np.fft.rfft(frames, axis=1)
    power = np.mean(spectrum.real**2 + spectrum.imag**2, axis=0)
    level = 10 * np.log10(power[1:] + 1e-20)  # skip DC
    above = np.nonzero(level >= level.max() - floor_db)[0]
    return float((above.max() + 1) * sample_rate / nfft)


def _loudest_frame_dbfs(mono: np.ndarray, sample_rate: int) -> float:
    hop = max(1, sample_rate // 50)  # 20 ms
    n = mono.shape[0] // hop * hop
    frames = mono[:n].reshape(-1, hop) if n else mono[None, :]
    energy = np.einsum("ij,ij->i", frames, frames).max() / frames.shape[1]
    return float(10 * math.log10(max(float(energy), 1e-20)))


def _clipped_fraction(samples: np.ndarray, level: float) -> float:
    if max(float(samples.max()), -float(samples.min())) < level:  # fast path: nothing near full scale
        return 0.0
    return float(np.mean(np.abs(samples).max(axis=1) >= level))


@dataclass
class _Piece:
    """One segment or window of a decoded record, before filtering."""

    key: str
    offset_s: float
    samples: np.ndarray  # (frames, channels) at the source rate


@dataclass
class AudioStage:
    """Decode → cut → window → filter → mono → resample; see the module docstring for the contract."""

    config: AudioStageConfig = field(default_factory=AudioStageConfig)
    name: str = "audio"
    resources: Resources = field(default_factory=Resources)
    #: Rows per Ray Data block and task (see :func:`apply_audio_stage`).
    batch_size: int = 16
    #: Rows whose container members are read in one pass (their encoded bytes are held together).
    read_group: int = 16

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.read_group <= 0:
            raise ValueError(f"batch_size and read_group must be positive, got {self.batch_size}, {self.read_group}")

    def inputs(self) -> list[str]:
        return list(_INPUT_COLUMNS)

    def outputs(self) -> list[str]:
        added = STAGE_COLUMNS if self.config.keep_audio else STAGE_COLUMNS[:-1]
        return [*RECORD_SCHEMA.names, *added]

    # -- one record ---------------------------------------------------------------------------
    def _pieces(self, row: dict[str, Any], decoded: Decoded) -> list[_Piece]:
        offset = float(row.get("offset_s") or 0.0)
        window_s = self.config.window_s
        if window_s is None:
            return [_Piece(row["key"], offset, decoded.samples)]
        step = max(1, int(round(window_s * decoded.sample_rate)))
        samples, sr = decoded.samples, decoded.sample_rate
        return [
            _Piece(f"{row['key']}/w{i:03d}", offset + start / sr, samples[start : start + step])
            for i, start in enumerate(range(0, max(samples.shape[0], 1), step))
        ]

    def _drop_reason(self, piece: _Piece, mono: np.ndarray, sr: int) -> tuple[RejectReason, str] | None:
        cfg, dur = self.config.filters, piece.samples.shape[0] / sr
        if self.config.window_s is not None and self.config.min_window_s is not None and dur < self.config.min_window_s:
            return RejectReason.TOO_SHORT, f"window of {dur:.3f} s < min_window_s {self.config.min_window_s}"
        if dur == 0 or (cfg.min_duration_s is not None and dur < cfg.min_duration_s):
            return RejectReason.TOO_SHORT, f"{dur:.3f} s < min_duration_s {cfg.min_duration_s}"
        if cfg.max_duration_s is not None and dur > cfg.max_duration_s:
            hint = "" if self.config.window_s is not None else "; cut long recordings into windows with --window"
            return RejectReason.TOO_LONG, f"{dur:.3f} s > max_duration_s {cfg.max_duration_s}{hint}"
        if cfg.silence_dbfs is not None:
            loudest = _loudest_frame_dbfs(mono, sr)
            if loudest < cfg.silence_dbfs:
                return RejectReason.SILENT, f"loudest 20 ms frame {loudest:.1f} dBFS < {cfg.silence_dbfs}"
        if cfg.max_clipped_fraction is not None:
            clipped = _clipped_fraction(piece.samples, cfg.clip_level)
            if clipped > cfg.max_clipped_fraction:
                return RejectReason.CLIPPED, f"{clipped:.2%} of samples at |x| >= {cfg.clip_level}"
        if cfg.min_bandwidth_hz is not None:
            bandwidth = estimate_bandwidth_hz(mono, sr, cfg.bandwidth_floor_db)
            if bandwidth < cfg.min_bandwidth_hz:
                return RejectReason.LOW_BANDWIDTH, (
                    f"estimated bandwidth {bandwidth:.0f} Hz < {cfg.min_bandwidth_hz:.0f} Hz (source {sr} Hz)"
                )
        return None

    def _resample(self, mono: np.ndarray, sr: int) -> np.ndarray:
        target = self.config.target_sr
        length = int(mono.shape[0] * target / sr + 0.5)
        out = mono if sr == target else soxr.resample(mono, sr, target, quality=self.config.resample_quality)
        if out.shape[0] != length:
            out = out[:length] if out.shape[0] > length else np.pad(out, (0, length - out.shape[0]))
        return np.ascontiguousarray(out, dtype=np.float32)

    def process_decoded(self, row: dict[str, Any], decoded: Decoded) -> list[dict[str, Any]]:
        """Output rows for one input row whose segment is already decoded."""
        return [self._process_piece(row, piece, decoded.sample_rate) for piece in self._pieces(row, decoded)]

    def _process_piece(self, row: dict[str, Any], piece: _Piece, sr: int) -> dict[str, Any]:
        """The output row of one segment or window: filtered, and (``keep_audio``) mono at the target rate."""
        mono = piece.samples.mean(axis=1, dtype=np.float32) if piece.samples.shape[1] > 1 else piece.samples[:, 0]
        out = {
            **row,
            "key": piece.key,
            "offset_s": round(piece.offset_s, 6),
            "duration_s": round(piece.samples.shape[0] / sr, 6),
            "sample_rate": sr,
            "audio_sample_rate": self.config.target_sr,
        }
        drop = self._drop_reason(piece, mono, sr)
        if drop is None:
            out.update(reason=None, detail=None)
            if self.config.keep_audio:
                out["audio"] = self._resample(mono, sr)
        else:
            reason, why = drop
            name = audio_io.describe(row["audio_uri"], row.get("member"))
            out.update(reason=reason.value, detail=f"{name}: {why}")
        return out

    def _process_windows(self, row: dict[str, Any], data: bytes | str | IO[bytes], name: str) -> list[dict[str, Any]]:
        """Windowed mode: decode the segment one window at a time (never more than a window in memory)."""
        offset = float(row.get("offset_s") or 0.0)
        outputs, position = [], 0
        blocks = audio_io.decode_blocks(data, self.config.window_s, offset, row.get("duration_s"), name=name)
        for i, block in enumerate(blocks):
            piece = _Piece(f"{row['key']}/w{i:03d}", offset + position / block.sample_rate, block.samples)
            outputs.append(self._process_piece(row, piece, block.sample_rate))
            position += block.samples.shape[0]
        return outputs

    def _decode_and_process(
        self, row: dict[str, Any], data: bytes | str | IO[bytes], name: str
    ) -> list[dict[str, Any]]:
        if self.config.window_s is not None:
            return self._process_windows(row, data, name)
        offset, duration = float(row.get("offset_s") or 0.0), row.get("duration_s")
        limit = self.config.filters.max_duration_s  # a longer segment is rejected before it is decoded
        return self.process_decoded(row, audio_io.decode(data, offset, duration, name=name, max_duration_s=limit))

    def _reject(self, row: dict[str, Any], reason: RejectReason | str, detail: str) -> dict[str, Any]:
        value = reason.value if isinstance(reason, RejectReason) else reason
        return {**row, "reason": value, "detail": detail, "audio_sample_rate": self.config.target_sr}

    def process(self, row: dict[str, Any], data: bytes | None = None) -> list[dict[str, Any]]:
        """Output rows for one input row; ``data`` = the encoded bytes when already read (container members)."""
        uri, member = row["audio_uri"], row.get("member")
        name = audio_io.describe(uri, member)
        try:
            if data is not None:
                return self._decode_and_process(row, data, name)
            with audio_io.open_audio(uri, member) as f:
                return self._decode_and_process(row, f, name)
        except AudioReadError as err:
            return [self._reject(row, err.reason, err.detail)]
        except Exception as exc:  # noqa: BLE001 - a bad record becomes a reject, the run goes on
            if is_transient(exc):  # persisting I/O error: the partition fails (no reject), a re-run retries
                return [self._reject(row, IO_FAILURE, failure_detail(f"reading {name}", exc))]
            log.warning("unexpected error on %s", name, exc_info=True)
            return [self._reject(row, RejectReason.UNDECODABLE, f"{name}: {type(exc).__name__}: {exc}")]

    # -- batches ------------------------------------------------------------------------------
    @staticmethod
    def _read_members(uri: str, names: list[str]) -> dict[str, bytes | AudioReadError | TransientIOError]:
        """The container's members; a persisting I/O error stands in for every member (failure rows)."""
        try:
            return dict(audio_io.read_members(uri, names))
        except TransientIOError as exc:
            return dict.fromkeys(names, exc)

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Output rows for a batch of input rows, in input order.

        Rows are taken :attr:`read_group` at a time; each container is read once per group, and its
        members' encoded bytes are dropped before the next group. With ``keep_audio`` off the outputs
        hold no audio, so a worker holds one group's encoded members and one decoded file whatever
        the batch size (see :data:`METADATA_BATCH_ROWS`).
        """
        outputs: list[dict[str, Any]] = []
        for start in range(0, len(rows), self.read_group):
            outputs.extend(self._process_group(rows[start : start + self.read_group]))
        return outputs

    def _process_group(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Output rows for a few input rows; each container among them is read once."""
        by_container: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            if row.get("member") is not None and row.get("reason") is None:
                by_container[row["audio_uri"]].append(row["member"])
        members = {uri: self._read_members(uri, names) for uri, names in by_container.items()}
        outputs: list[dict[str, Any]] = []
        for row in rows:
            member = row.get("member")
            if row.get("reason") is not None:  # rejected upstream (metadata): passed through untouched
                produced = [dict(row)]
            elif member is None:
                produced = self.process(row)
            else:
                data = members[row["audio_uri"]][member]
                if isinstance(data, TransientIOError):
                    produced = [self._reject(row, IO_FAILURE, str(data))]
                elif isinstance(data, AudioReadError):
                    produced = [self._reject(row, data.reason, data.detail)]
                else:
                    produced = self.process(row, data)
            for out in produced:
                out["fanout"] = len(produced)
            outputs.extend(produced)
        return outputs

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Ray Data entry point (``batch_format="pyarrow"``): a table of input rows → a table of outputs."""
        outputs = self.process_batch(batch.to_pylist())
        return self.to_table(outputs, batch.schema)

    def to_table(self, outputs: list[dict[str, Any]], input_schema: pa.Schema) -> pa.Table:
        """Arrow table of output rows: input columns (record types), then the stage's columns."""
        fields = [RECORD_SCHEMA.field(n) if n in RECORD_SCHEMA.names else input_schema.field(n)
                  for n in input_schema.names if n not in STAGE_COLUMNS]
        fields += [pa.field("reason", pa.string()), pa.field("detail", pa.string()),
                   pa.field("fanout", pa.int32()), pa.field("audio_sample_rate", pa.int32())]
        table = pa.Table.from_pylist(
            [{k: v for k, v in row.items() if k != "audio"} for row in outputs], schema=pa.schema(fields)
        )
        if not self.config.keep_audio:
            return table
        waves = [row.get("audio") if row.get("audio") is not None else np.zeros(0, np.float32) for row in outputs]
        offsets = np.zeros(len(waves) + 1, dtype=np.int64)
        np.cumsum([w.shape[0] for w in waves], out=offsets[1:])
        values = pa.array(np.concatenate(waves) if waves else np.zeros(0, np.float32), type=pa.float32())
        audio = pa.LargeListArray.from_arrays(pa.array(offsets), values)
        return table.append_column(pa.field("audio", pa.large_list(pa.float32())), audio)


def split_outputs(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(kept rows, reject rows)`` of stage outputs; reject rows as ``REJECT_SCHEMA`` dicts."""
    kept = [row for row in rows if row.get("reason") is None]
    rejects = [
        {"key": row["key"], "source": row["source"], "reason": row["reason"], "detail": row["detail"]}
        for row in rows
        if row.get("reason") is not None
    ]
    return kept, rejects


def apply_audio_stage(ds: ray.data.Dataset, stage: AudioStage) -> ray.data.Dataset:
    """``ds.map_batches(stage)`` as CPU tasks with the stage's declared batch size and resources.

    The input is first cut into blocks of ``batch_size`` rows (a streaming repartition, no shuffle):
    Ray Data runs one task per input block, so one big block (a large partition, a ``from_arrow``
    table) would otherwise be processed by a single task.
    """
    ds = ds.repartition(target_num_rows_per_block=stage.batch_size)
    return ds.map_batches(
        stage,
        batch_size=stage.batch_size,
        batch_format="pyarrow",
        zero_copy_batch=True,
        num_cpus=stage.resources.cpus,
        num_gpus=stage.resources.gpus or None,
    )
