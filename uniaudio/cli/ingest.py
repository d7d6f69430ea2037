"""`uniaudio ingest`: corpus → audio records (Parquet) + rejects, with progress and a summary."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from uniaudio.cli.common import (
    BreakLock,
    DryRun,
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
    reported_errors,
)
from uniaudio.core.ray_runtime import RayConfig
from uniaudio.pipelines.audio_stage import DEFAULT_MAX_DURATION_S, AudioStageConfig
from uniaudio.pipelines.ingest import IngestConfig, dry_run, run_ingest
from uniaudio.pipelines.passes import RECORDS_PER_PASS
from uniaudio.pipelines.progress import PartitionProgress, render_summary
from uniaudio.pipelines.sources import SourceError, source_names


def ingest(
    source: Annotated[str, typer.Argument(help="Source name (see `uniaudio sources list`).", show_default=False)],
    input_uri: Annotated[str, typer.Argument(help="Corpus root: local path or s3://bucket/prefix.")],
    output_uri: Annotated[str, typer.Argument(help="Output root: records/, rejects/, _progress/, summary.json.")],
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
    dry: DryRun = False,
    break_lock: BreakLock = False,
    lock_timeout: LockTimeout = 600.0,
    ray_address: RayAddress = None,
) -> None:
    """Read a corpus in its distributed layout into audio records (Parquet) and rejects.

    Decodes every record's audio (soundfile), downmixes to mono, resamples to 24 kHz, optionally cuts
    windows, and drops what fails a filter with a reason code. Records (no waveforms) go to
    OUTPUT_URI/records/, rejects to OUTPUT_URI/rejects/ (both Parquet datasets); re-running resumes.
    --dry-run reports counts and hours from the metadata alone, decoding no audio and writing nothing.
    """
    if source not in source_names():
        raise typer.BadParameter(f"unknown source {source!r}; known: {', '.join(source_names())}", param_hint="SOURCE")
    check_audio_options(window, min_window, min_duration, max_duration)
    filters = audio_filters(min_duration, max_duration, silence_dbfs, max_clipped, min_bandwidth)
    config = IngestConfig(
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
        stage=AudioStageConfig(filters=filters, window_s=window, min_window_s=min_window, keep_audio=False),
        ray=RayConfig(address=ray_address, log_to=output_uri),
        lease=lease_config(break_lock, lock_timeout),
    )
    console = Console(width=120)
    with reported_errors(console, user_errors=(SourceError,)):
        source = config.make_source()
        partitions = source.partitions()
        with PartitionProgress.show(len(partitions), console) as progress:
            callback = lambda _partition, tally: progress.advance(tally)  # noqa: E731
            summary = (dry_run if dry else run_ingest)(config, callback, source, partitions)
    render_summary(summary, console)
    if not dry:
        console.print(f"summary written to {output_uri.rstrip('/')}/summary.json")
    print_ray_log_note(console)
    exit_if_partitions_failed(summary, console)
