"""`uniaudio shards`: build, validate, summarise and inspect token stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from uniaudio.cli.codec_options import (
    CodecBatchSize,
    CodecCkpt,
    CodecDir,
    CodecName,
    DistillFeatures,
    GpusPerWorker,
    MusicSSL,
    WavLM,
    Whisper,
    WindowMode,
    codec_stage_config,
)
from uniaudio.cli.common import (
    BreakLock,
    HFAudioColumn,
    HFCaptionColumn,
    HFConfig,
    HFIdColumn,
    HFRevision,
    HFSpeakerColumn,
    HFStreaming,
    HFTextColumn,
    Limit,
    LockTimeout,
    MaxClipped,
    MaxDuration,
    MinBandwidth,
    MinDuration,
    MinWindow,
    PartitionsPerPass,
    RayAddress,
    RecordsPerPass,
    SilenceDbfs,
    SourceOptions,
    Split,
    Window,
    audio_filters,
    check_audio_options,
    exit_if_partitions_failed,
    lease_config,
    merge_hf_options,
    parse_source_options,
    print_ray_log_note,
    report_problems,
    reported_errors,
)
from uniaudio.core import storage
from uniaudio.pipelines.audio_stage import DEFAULT_MAX_DURATION_S
from uniaudio.pipelines.passes import RECORDS_PER_PASS
from uniaudio.pipelines.progress import PartitionProgress, render_rejects
from uniaudio.pipelines.token_store import read_index, validate_store
from uniaudio.pipelines.token_store.lookup import find_sample, is_store
from uniaudio.pipelines.token_store.stats import collect_stats, plot_durations
from uniaudio.pipelines.tokenize_stage import BUILD_BATCH_ROWS

app = typer.Typer(no_args_is_help=True)
console = Console(soft_wrap=True)



@app.command()
def build(
    source: Annotated[str, typer.Argument(help="Source name (see `uniaudio sources list`; 'records' = an ingest "
                                          "output).", show_default=False)],
    input_uri: Annotated[str, typer.Argument(help="Corpus root (or ingest output): local path or s3://...")],
    output_uri: Annotated[str, typer.Argument(help="Token store to write: local directory or s3://bucket/prefix.")],
    codec: CodecName = "tiny",
    codec_ckpt: CodecCkpt = None,
    codec_dir: CodecDir = None,
    whisper: Whisper = None,
    wavlm: WavLM = None,
    music_ssl: MusicSSL = None,
    window_mode: WindowMode = None,
    distill_features: DistillFeatures = False,
    workers: Annotated[int | None, typer.Option(help="Codec actors, one model each (default: one per GPU of the "
                                                "cluster, else one CPU actor).", min=1, show_default=False)] = None,
    gpus_per_worker: GpusPerWorker = 0.0,
    batch_size: CodecBatchSize = BUILD_BATCH_ROWS,
    max_shard_samples: Annotated[int, typer.Option(help="Close a shard at this many samples.", min=1)] = 10_000,
    max_shard_mb: Annotated[float, typer.Option(help="Close a shard at this size (MiB).", min=0.01)] = 512.0,
    shard_writers: Annotated[int, typer.Option(help="Ray actors that write and upload the shards themselves (0: "
                                               "the driver writes every shard). Use a few on GPU clusters: one "
                                               "driver writes ~20k token-only samples/s, far fewer with "
                                               "--distill-features.", min=0)] = 0,
    split: Split = None,
    limit: Limit = None,
    records_per_pass: RecordsPerPass = RECORDS_PER_PASS,
    partitions_per_pass: PartitionsPerPass = None,
    min_duration: MinDuration = 0.5,
    max_duration: MaxDuration = DEFAULT_MAX_DURATION_S,
    window: Window = None,
    min_window: MinWindow = None,
    silence_dbfs: SilenceDbfs = -60.0,
    max_clipped: MaxClipped = 0.001,
    min_bandwidth: MinBandwidth = 3000.0,
    option: SourceOptions = None,
    dataset_config: HFConfig = None,
    revision: HFRevision = None,
    audio_column: HFAudioColumn = None,
    text_column: HFTextColumn = None,
    caption_column: HFCaptionColumn = None,
    speaker_column: HFSpeakerColumn = None,
    id_column: HFIdColumn = None,
    streaming: HFStreaming = False,
    force: Annotated[bool, typer.Option(help="Delete OUTPUT_URI first and rebuild from scratch (refused for a bucket "
                                        "root, an output holding the input, or a directory that is not a "
                                        "uniaudio output).")] = False,
    break_lock: BreakLock = False,
    lock_timeout: LockTimeout = 600.0,
    ray_address: RayAddress = None,
) -> None:
    """Tokenize a corpus into a token store: ingest → audio stage → ReasoningCodec → shards.

    Streams on Ray: metadata tasks per input partition, CPU tasks decoding to 24 kHz mono, codec actors
    (GPUs on a cluster with --gpus-per-worker, CPU actors on the embedded default), and the driver
    writing shards (or, with --shard-writers N, N actors writing them while the driver only records
    what they committed). Rejects land in OUTPUT_URI/rejects/. Re-running resumes: finished partitions
    are skipped and keys already in shards are never written twice; --force rebuilds.

    Examples:

      uniaudio shards build librispeech ./LibriSpeech ./tokens/ls --codec tiny

      uniaudio shards build emilia s3://corpora/Emilia s3://tokens/emilia --codec official \
          --codec-dir /ckpt/uniaudio2_ckpt --workers 8 --gpus-per-worker 1 --shard-writers 2 --ray-address auto
    """
    from uniaudio.core.ray_runtime import RayConfig
    from uniaudio.core.shard_file import ShardLimits
    from uniaudio.pipelines.audio_stage import AudioStageConfig
    from uniaudio.pipelines.build import BuildConfig, BuildSettingsChanged, run_build
    from uniaudio.pipelines.output_guard import UnsafeForceError
    from uniaudio.pipelines.sources import SourceError, source_names
    from uniaudio.pipelines.token_store.writer import CodecMismatchError
    from uniaudio.tokenize.reasoning_codec.checkpoint import CheckpointMismatchError

    if source not in source_names():
        raise typer.BadParameter(f"unknown source {source!r}; known: {', '.join(source_names())}", param_hint="SOURCE")
    check_audio_options(window, min_window, min_duration, max_duration)
    tokenize = codec_stage_config(codec, codec_ckpt, codec_dir, whisper, wavlm, music_ssl, window_mode,
                                  distill_features, batch_size, gpus_per_worker)
    try:  # the options' own checks (codec name, window mode, ...): a message, not a traceback
        config = BuildConfig(
            source=source,
            input_uri=input_uri,
            output_uri=output_uri,
            split=split,
            limit=limit,
            records_per_pass=records_per_pass,
            partitions_per_pass=partitions_per_pass,
            source_options=merge_hf_options(
            source, parse_source_options(option), config=dataset_config, revision=revision,
            audio_column=audio_column, text_column=text_column, caption_column=caption_column,
            speaker_column=speaker_column, id_column=id_column, streaming=streaming),
            stage=AudioStageConfig(
                filters=audio_filters(min_duration, max_duration, silence_dbfs, max_clipped, min_bandwidth),
                window_s=window, min_window_s=min_window, keep_audio=True),
            tokenize=tokenize,
            workers=workers,
            limits=ShardLimits(max_samples=max_shard_samples, max_bytes=int(max_shard_mb * 1024 * 1024)),
            shard_writers=shard_writers,
            force=force,
            ray=RayConfig(address=ray_address, log_to=output_uri),
            lease=lease_config(break_lock, lock_timeout),
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    with reported_errors(console, user_errors=(SourceError, UnsafeForceError, CheckpointMismatchError,
                                                       BuildSettingsChanged, CodecMismatchError)):
        partitions = config.make_source().partitions()
        with PartitionProgress.show(len(partitions), console) as progress:
            summary = run_build(config, lambda _partition, tally: progress.advance(tally), partitions)
    _print_build_summary(summary)
    exit_if_partitions_failed(summary, console)


def _print_build_summary(summary: dict) -> None:

    store, run = summary["store"] or {}, summary["this_run"]
    parts = summary["partitions"]
    console.print(f"[bold]shards build[/bold] {summary['source']}: {summary['input_uri']} → {summary['output_uri']}")
    console.print(f"partitions {parts['done']}/{parts['total']} done ({parts['skipped']} skipped as already done)")
    console.print(f"store: {store.get('shards', 0)} shards, {store.get('samples', 0):,} samples, "
                  f"{store.get('duration_s', 0) / 3600:.4f} h, {store.get('reason_tokens', 0):,} reasoning + "
                  f"{store.get('recon_tokens', 0):,} reconstruction tokens")
    rate = run.get("audio_hours_per_second")
    console.print(f"this run: {run['records']:,} samples, {run['hours']:.4f} h of audio in {run['seconds_wall']:.1f} s"
                  + (f" ({rate * 3600:.2f} audio-hours per hour)" if rate else ""))
    render_rejects(summary["rejects_by_reason"], console)
    console.print(f"rejects: {summary['output_uri'].rstrip('/')}/rejects/   "
                  f"summary: {summary['output_uri'].rstrip('/')}/build-summary.json")
    print_ray_log_note(console)


@app.command()
def validate(
    uri: Annotated[str, typer.Argument(help="Token store: local directory or s3://bucket/prefix.")],
) -> None:
    """Check a token store's index against its tars, and every sample's tokens.

    Checks: every listed shard exists and no unlisted one does; sizes, sha256, sample, duration and
    token counts match index.json; tars are complete and member names safe; each sample's members are
    adjacent and complete; keys are unique; tokens are uint16 (8, T) with T within 1 of 5·duration_s
    (reasoning) and 1.5 of 12.5·duration_s (reconstruction) and ids below the codebook sizes.

    Exit status 0 when the store is sound, 1 with the list of every problem otherwise.

    Example: uniaudio shards validate s3://my-bucket/tokens/librispeech
    """
    _require_store(uri)
    with console.status("validating") as status:
        problems = validate_store(uri, on_shard=lambda name: status.update(f"validating {name}"))

    def summary() -> str:
        t = read_index(uri).totals
        return f"{t['shards']} shards, {t['samples']} samples, {t['duration_s'] / 3600:.3f} h"

    report_problems(console, uri, problems, summary)


@app.command()
def stats(
    uri: Annotated[str, typer.Argument(help="Token store: local directory or s3://bucket/prefix.")],
    plot: Annotated[Path | None, typer.Option(help="Write the clip-duration histogram to this PNG.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON instead of a table.")] = False,
) -> None:
    """Print hours, samples and tokens per source and per stream; optionally plot durations.

    Example: uniaudio shards stats ./tokens --plot durations.png
    """
    _require_store(uri)
    with console.status("reading") as status:
        st = collect_stats(uri, on_shard=lambda u: status.update(f"reading {u.rsplit('/', 1)[-1]}"))
    rows = {**st.per_source, "TOTAL": st.total}
    if as_json:
        out = {name: {"samples": s.samples, "hours": round(s.hours, 6), "reason_tokens": s.reason_tokens,
                      "recon_tokens": s.recon_tokens} for name, s in rows.items()}
        typer.echo(json.dumps(out, indent=1))
    else:
        table = Table(title=f"{uri}  (codec {st.codec.get('name')}, {st.codec.get('fingerprint')})")
        for col in ("source", "samples", "hours", "reasoning tokens", "reconstruction tokens", "tokens/s"):
            table.add_column(col, justify="left" if col == "source" else "right")
        for name, s in rows.items():
            rate = (s.reason_tokens + s.recon_tokens) / s.duration_s if s.duration_s else 0.0
            table.add_row(name, f"{s.samples:,}", f"{s.hours:.3f}", f"{s.reason_tokens:,}",
                          f"{s.recon_tokens:,}", f"{rate:.1f}", style="bold" if name == "TOTAL" else None)
        console.print(table)
    if plot:
        console.print(f"duration histogram → {plot_durations(st, plot, title=uri)}")


@app.command()
def inspect(
    uri: Annotated[str, typer.Argument(help="Token store: local directory or s3://bucket/prefix.")],
    key: Annotated[str, typer.Argument(help="Sample key, e.g. librispeech/1272-128104-0000.")],
    full: Annotated[bool, typer.Option(help="Print the whole token arrays, not a summary.")] = False,
) -> None:
    """Print one sample's metadata and token arrays.

    Example: uniaudio shards inspect ./tokens librispeech/1272-128104-0000
    """
    _require_store(uri, finished=False)
    sample = find_sample(uri, key)  # reads the journal and one shard, not the whole store
    if sample is None:
        console.print(f"[red]key {key!r} not found in {uri}[/red]")
        raise typer.Exit(1)
    console.print_json(json.dumps(sample.meta, ensure_ascii=False))
    opts = {"threshold": np.inf} if full else {"threshold": 200, "edgeitems": 6}
    with np.printoptions(linewidth=120, **opts):
        for name, arr in (("reason", sample.reason), ("recon", sample.recon), *sample.extras.items()):
            console.print(f"[bold]{name}[/bold] {arr.dtype} {tuple(arr.shape)}", highlight=False)
            console.print(str(arr), markup=False, highlight=False)


def _require_store(uri: str, finished: bool = True) -> None:
    """A message, not a traceback, for a URI that holds no token store (or, ``finished``, no index yet)."""
    if not is_store(uri):
        raise typer.BadParameter(f"no token store at {uri} (no index.json and no _journal/)", param_hint="URI")
    if finished and not storage.exists(storage.join(uri, "index.json")):
        raise typer.BadParameter(f"{uri} has no index.json yet: its build has not finished (re-run it to finish)",
                                 param_hint="URI")
