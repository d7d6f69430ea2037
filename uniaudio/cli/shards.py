"""`uniaudio shards`: build, validate, summarise and inspect token stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from uniaudio.pipelines.token_store import iter_store, read_index, validate_store
from uniaudio.pipelines.token_store.stats import collect_stats, plot_durations

app = typer.Typer(no_args_is_help=True)
console = Console(soft_wrap=True)


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
    with console.status("validating") as status:
        problems = validate_store(uri, on_shard=lambda name: status.update(f"validating {name}"))
    if not problems:
        index = read_index(uri)
        t = index.totals
        console.print(f"[green]OK[/green] {uri}: {t['shards']} shards, {t['samples']} samples, "
                      f"{t['duration_s'] / 3600:.3f} h")
        return
    console.print(f"[red]{len(problems)} problem(s)[/red] in {uri}:")
    for p in problems:
        console.print(f"  - {p}", markup=False, highlight=False)
    raise typer.Exit(1)


@app.command()
def stats(
    uri: Annotated[str, typer.Argument(help="Token store: local directory or s3://bucket/prefix.")],
    plot: Annotated[Path | None, typer.Option(help="Write the clip-duration histogram to this PNG.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON instead of a table.")] = False,
) -> None:
    """Print hours, samples and tokens per source and per stream; optionally plot durations.

    Example: uniaudio shards stats ./tokens --plot durations.png
    """
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
    for sample in iter_store(uri, keys=[key]):
        console.print_json(json.dumps(sample.meta, ensure_ascii=False))
        opts = {"threshold": np.inf} if full else {"threshold": 200, "edgeitems": 6}
        with np.printoptions(linewidth=120, **opts):
            for name, arr in (("reason", sample.reason), ("recon", sample.recon), *sample.extras.items()):
                console.print(f"[bold]{name}[/bold] {arr.dtype} {tuple(arr.shape)}", highlight=False)
                console.print(str(arr), markup=False, highlight=False)
        return
    console.print(f"[red]key {key!r} not found in {uri}[/red]")
    raise typer.Exit(1)
