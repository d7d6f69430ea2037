"""Options shared by CLI commands (typer annotations), so every Ray command spells them the same."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer
from rich.console import Console

from uniaudio.core import ray_logs
from uniaudio.core.lease import LeaseConfig, LeaseHeldError, LeaseLostError
from uniaudio.core.retry import TransientIOError
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
RecordsPerPass = Annotated[int, typer.Option(
    help="Records per Ray Data execution (a pass). Ray keeps a few KB of driver-side state per task until an "
         "execution ends, so passes keep the driver's memory independent of the corpus. A pass takes as many "
         "partitions as hold about this many records, judged from the partitions finished so far (the first "
         "pass takes 16). Each pass restarts its actors (for `shards build`, one codec load each): on a GPU "
         "cluster a pass should be many minutes of codec work.",
    min=1)]
PartitionsPerPass = Annotated[int | None, typer.Option(
    help="Partitions per pass, fixed, instead of sizing passes by --records-per-pass.", min=1)]
MinDuration = Annotated[float | None, typer.Option(help="Drop audio shorter than this (s).")]
MaxDuration = Annotated[float, typer.Option(
    help="Longest single sample (s); 0: no limit. Without --window a longer file or segment is rejected as "
    "too_long before it is decoded: cut long recordings into windows with --window (each window is then "
    "checked, and the file is read one window at a time).")]
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
        max_duration_s=max_duration or None,  # 0: no limit
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


# --- the writer lease and the errors a run reports as messages --------------------------------------------

BreakLock = Annotated[
    bool,
    typer.Option("--break-lock", help="Take over the output's writer lease even if its holder looks alive (only "
                 "when you know that run is dead: two writers on one store lose data)."),
]
LockTimeout = Annotated[
    float,
    typer.Option(help="A writer lease without heartbeat for this many seconds is stale and taken over.", min=60),
]


def lease_config(break_lock: bool, lock_timeout: float) -> LeaseConfig:
    return LeaseConfig(stale_after_s=lock_timeout, break_lock=break_lock)


def check_audio_options(
    window: float | None, min_window: float | None, min_duration: float | None, max_duration: float | None
) -> None:
    """Reject inconsistent audio-stage options up front, naming the option (typer.BadParameter)."""
    if window is not None and window <= 0:
        raise typer.BadParameter(f"must be positive, got {window}", param_hint="--window")
    if min_window is not None and window is None:
        raise typer.BadParameter("needs --window (it drops short windows)", param_hint="--min-window")
    if min_window is not None and min_window <= 0:
        raise typer.BadParameter(f"must be positive, got {min_window}", param_hint="--min-window")
    for value, hint in ((min_duration, "--min-duration"), (max_duration, "--max-duration")):
        if value is not None and value < 0:
            raise typer.BadParameter(f"must not be negative, got {value}", param_hint=hint)
    if min_duration is not None and max_duration and min_duration > max_duration:
        raise typer.BadParameter(f"--min-duration {min_duration} exceeds --max-duration {max_duration}",
                                 param_hint="--min-duration/--max-duration")


@contextlib.contextmanager
def reported_errors(console: Console, user_errors: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn the project's own run errors into messages and exit codes; anything else keeps its traceback.

    ``user_errors`` (bad input, refused options): exit 2. A store held by another writer, a lease lost
    to another writer, or storage that stayed unavailable through the retries: exit 1.
    """
    try:
        yield
    except user_errors as err:
        console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(2) from err
    except (LeaseHeldError, LeaseLostError) as err:
        console.print(f"[red]refused:[/red] {err}", highlight=False)
        raise typer.Exit(1) from err
    except TransientIOError as err:
        console.print(f"[red]storage error:[/red] {err}\nNothing is lost: re-run the same command to resume.",
                      highlight=False)
        raise typer.Exit(1) from err


def report_problems(console: Console, uri: str, problems: list[Any], summary: Callable[[], str]) -> None:
    """The end of a ``validate`` command: ``OK <uri>: <summary()>``, or every problem and exit status 1."""
    if not problems:
        console.print(f"[green]OK[/green] {uri}: {summary()}")
        return
    console.print(f"[red]{len(problems)} problem(s)[/red] in {uri}:")
    for p in problems:
        console.print(f"  - {p}", markup=False, highlight=False)
    raise typer.Exit(1)
