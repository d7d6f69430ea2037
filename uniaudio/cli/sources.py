"""`uniaudio sources`: the corpus sources and the on-disk layouts each one reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from uniaudio.pipelines.sources import get_source, source_names

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_sources() -> None:
    """Print every source name with the layouts it accepts (pass the name to `uniaudio ingest`)."""
    table = Table(title="sources", show_lines=True)
    table.add_column("source", style="bold")
    table.add_column("layouts accepted (INPUT_URI points at the corpus root)")
    for name in source_names():
        table.add_row(name, Text("\n".join(f"• {layout}" for layout in get_source(name).layouts)))
    Console(width=160).print(table)


@app.command("fixtures")
def fixtures(
    out: Annotated[Path, typer.Argument(help="Directory to write the tiny corpora into.")],
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Only these sources (repeatable); default: all.")
    ] = None,
) -> None:
    """Write tiny copies of the corpora, in their real layouts and with their traps, to try the pipeline on.

    The same generators feed the tests and `make demo`. Prints each source's INPUT_URI.

    Example:

      uniaudio sources fixtures ./corpora -s librispeech

      uniaudio ingest librispeech ./corpora/librispeech/LibriSpeech ./records/librispeech
    """
    from uniaudio.testing.corpora import CORPORA, build_corpus

    names = source or list(CORPORA)
    unknown = sorted(set(names) - set(CORPORA))
    if unknown:
        raise typer.BadParameter(f"no fixture corpus for {unknown}; known: {', '.join(CORPORA)}", param_hint="--source")
    table = Table(title=f"fixture corpora in {out}")
    table.add_column("source", style="bold")
    table.add_column("INPUT_URI")
    for name in names:
        table.add_row(name, str(build_corpus(name, out / CORPORA[name])))
    Console(width=160).print(table)
