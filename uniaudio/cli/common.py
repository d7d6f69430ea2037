"""Options shared by CLI commands (typer annotations), so every Ray command spells them the same."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from uniaudio.core import ray_logs
from uniaudio.pipelines.audio_stage import AudioFilterConfig

RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster to run on (e.g. 'auto', 'ray://head:10001'); default: $RAY_ADDRESS, "
        "else an embedded local Ray on 127.0.0.1.",
        envvar="RAY_ADDRESS",
        show_default=False,
    ),
]

DryRun = Annotated[
    bool,
    typer.Option("--dry-run", help="Report what would be done from metadata alone; write nothing."),
]

# --- corpus and audio-stage options shared by `ingest` and `shards build` ------------------------------

Split = Annotated[str | None, typer.Option(help="Only this split (source-specific names).")]
Limit = Annotated[
    int | None,
    typer.Option(help="Process at most N metadata rows this run, partitions in sorted order; a partition "
                 "cut short is redone by the next run.", min=1),
]
MinDuration = Annotated[float | None, typer.Option(help="Drop audio shorter than this (s).")]
MaxDuration = Annotated[float | None, typer.Option(help="Drop audio longer than this (s).")]
Window = Annotated[
    float | None, typer.Option(help="Cut long-form audio into windows of this length (s); keys <key>/w000...")
]
MinWindow = Annotated[float | None, typer.Option(help="Drop windows shorter than this (s).")]
SilenceDbfs = Annotated[float, typer.Option(help="Drop audio whose loudest 20 ms is below this (dBFS).")]
MaxClipped = Annotated[float, typer.Option(help="Drop audio with more than this fraction of clipped samples.")]
MinBandwidth = Annotated[
    float, typer.Option(help="Drop audio whose estimated bandwidth is below this (Hz); 0 disables.")
]
SourceOptions = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Source option KEY=VALUE (repeatable; see `uniaudio sources list`)."),
]


def parse_source_options(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a VALUE that parses as JSON (numbers, lists, objects) is taken as such."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--option")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def audio_filters(
    min_duration: float | None, max_duration: float | None, silence_dbfs: float, max_clipped: float,
    min_bandwidth: float,
) -> AudioFilterConfig:
    """The audio stage's drop rules from the shared CLI options."""
    return AudioFilterConfig(
        min_duration_s=min_duration,
        max_duration_s=max_duration,
        silence_dbfs=silence_dbfs,
        max_clipped_fraction=max_clipped,
        min_bandwidth_hz=min_bandwidth or None,
    )


# --- Hugging Face dataset options (source `hf`), shared by `ingest` and `shards build` --------------------

_HF = "Hugging Face datasets (source hf)"
HFConfig = Annotated[str | None, typer.Option("--config", help="Dataset config name.", rich_help_panel=_HF,
                                              show_default=False)]
HFRevision = Annotated[str | None, typer.Option(help="Dataset revision (hub cache snapshots).", rich_help_panel=_HF,
                                                show_default=False)]
HFAudioColumn = Annotated[str | None, typer.Option(help="Audio column (default: audio).", rich_help_panel=_HF,
                                                   show_default=False)]
HFTextColumn = Annotated[str | None, typer.Option(help="Transcript column.", rich_help_panel=_HF, show_default=False)]
HFCaptionColumn = Annotated[str | None, typer.Option(help="Caption column.", rich_help_panel=_HF, show_default=False)]
HFSpeakerColumn = Annotated[str | None, typer.Option(help="Speaker column.", rich_help_panel=_HF, show_default=False)]
HFIdColumn = Annotated[str | None, typer.Option(help="Column with stable ids for the keys (default: file stem and "
                                                "row).", rich_help_panel=_HF, show_default=False)]
HFStreaming = Annotated[bool, typer.Option("--streaming", help="Read record batches without materialising tables.",
                                           rich_help_panel=_HF)]


def merge_hf_options(source: str, options: dict[str, Any], **hf: Any) -> dict[str, Any]:
    """Add the ``--config/--revision/--*-column/--streaming`` flags that were given to the source options."""
    given = {k: v for k, v in hf.items() if v not in (None, False)}
    if given and source != "hf":
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise typer.BadParameter(f"{flags} only apply to source hf (other sources take -o KEY=VALUE options)")
    return {**options, **given}


def print_ray_log_note(console: Console) -> None:
    """One summary line saying where Ray's own lines went (nothing with ``--verbose``)."""
    path = ray_logs.ray_log_path()
    if path is not None:
        console.print(f"[dim]Ray's own log lines: {path} (uniaudio --verbose shows them)[/dim]")


def exit_if_partitions_failed(summary: dict[str, Any], console: Console) -> None:
    """Name the partitions that failed with persisting I/O errors and exit 1; a re-run retries them."""
    failed = summary.get("failed_partitions") or {}
    if not failed:
        return
    console.print(f"[red]{len(failed)} partition(s) failed[/red] with I/O errors that persisted through the retries "
                  "(no done-marker written; re-run the same command to retry them):")
    for partition, detail in failed.items():
        console.print(f"  - {partition}: {detail}", markup=False, highlight=False)
    raise typer.Exit(1)
