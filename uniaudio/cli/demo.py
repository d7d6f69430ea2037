"""`uniaudio demo`: the main job end to end on mini corpora, with a report (see :mod:`uniaudio.demo.run`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)


def demo(
    ctx: typer.Context,
    workdir: Annotated[Path, typer.Option(help="Where corpora, stores, checkpoints and the report go.")] = Path(
        "demo-out"),
    train_steps: Annotated[int, typer.Option(help="Training steps per stage.", min=1)] = 24,
    train_workers: Annotated[int, typer.Option(help="Ray Train workers (CPU, gloo).", min=1)] = 1,
) -> None:
    """Run every stage on mini corpora in their real layouts: ingest → shards build (tiny codec) → every
    task and auditory-sentence strategy → training stages 1–4 (tiny model) → evaluation, then write
    WORKDIR/report.md and report.html with plots. A second run reuses what is complete.

    Example: uniaudio demo --workdir demo-out && xdg-open demo-out/report.html
    """
    from uniaudio.demo.run import DemoConfig, DemoError, run_demo
    from uniaudio.demo.summary import write_report

    root = ctx.find_root().command

    def invoke(args: list[str]) -> object:
        return root.main(args, prog_name="uniaudio", standalone_mode=False)

    start = time.monotonic()
    try:
        config = DemoConfig(workdir=workdir, train_steps=train_steps, train_workers=train_workers)
        run = run_demo(config, invoke, console)
    except DemoError as err:
        console.print(f"[red]demo failed:[/red] {err}")
        raise typer.Exit(1) from err
    md, page = write_report(run)
    table = Table(title=f"demo: {len(run.steps)} steps in {time.monotonic() - start:.0f} s")
    for col in ("step", "status", "seconds"):
        table.add_column(col)
    for s in run.steps:
        table.add_row(s.name, s.status, f"{s.seconds:.1f}")
    console.print(table)
    reused = sum(s.status == "reused" for s in run.steps)
    if reused:
        console.print(f"{reused} step(s) reused from an earlier run (their outputs were complete).")
    console.print(f"report: {md}\n        {page}")
