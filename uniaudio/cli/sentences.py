"""`uniaudio sentences`: build training sentences (sentence stores, docs/formats.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from uniaudio.cli.common import RayAddress

app = typer.Typer(no_args_is_help=True)
build_app = typer.Typer(no_args_is_help=True)
app.add_typer(build_app, name="build", help="Build a sentence store for one task.")
console = Console(soft_wrap=True)


@build_app.command("text-only")
def text_only(
    input_uri: Annotated[str, typer.Argument(
        metavar="INPUT",
        help="Text corpus: .jsonl[.gz] file or folder, .parquet/.arrow file or folder, save_to_disk folder, "
        "or a dataset name in the local Hugging Face cache (org/name).")],
    output: Annotated[str, typer.Argument(
        metavar="OUTPUT", help="Sentence store to write: local directory or s3://bucket/prefix.")],
    tokenizer: Annotated[str, typer.Option(
        help="Tokenizer folder (local or s3://) holding tokenizer.json (LLaMA-3.2).", show_default=False)],
    text_column: Annotated[str, typer.Option(help="Column / JSON field holding the document text.")] = "text",
    id_column: Annotated[str | None, typer.Option(
        help="Column holding a unique document id (default: <file>_<row>).", show_default=False)] = None,
    config: Annotated[str | None, typer.Option(help="Dataset config (HF inputs).", show_default=False)] = None,
    split: Annotated[str | None, typer.Option(help="Split to read (HF inputs).", show_default=False)] = None,
    revision: Annotated[str | None, typer.Option(
        help="Hub snapshot revision (dataset names).", show_default=False)] = None,
    name: Annotated[str | None, typer.Option(
        help="Corpus name in sentence keys (default: dataset name or input stem).", show_default=False)] = None,
    context_length: Annotated[int, typer.Option(
        help="Longest sentence in tokens, begin/end of text included.")] = 1024,
    limit: Annotated[int | None, typer.Option(help="Read at most N documents.", show_default=False)] = None,
    shard_samples: Annotated[int, typer.Option(help="Sentences per shard.")] = 4096,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing sentence store.")] = False,
    ray_address: RayAddress = None,
) -> None:
    """Tokenize a text corpus and cut it into text-only sentences of at most --context-length tokens.

    Each document's token ids are cut into consecutive pieces; decoding a document's pieces in order gives
    its text back exactly. Sentences are written as WebDataset shards (<key>.text.npy int32 ids +
    <key>.json) with index.json last.

    Example: uniaudio sentences build text-only ./olmo-sample ./sentences/text --tokenizer ./llama-3.2-tok
    """
    from uniaudio.core.ray_runtime import RayConfig
    from uniaudio.sentences.documents import TextInput
    from uniaudio.sentences.text_only import TextOnlyOptions, TextOnlySummary, build_text_only

    text_input = TextInput(input_uri, text_column=text_column, id_column=id_column, config=config,
                           split=split, revision=revision, name=name)
    options = TextOnlyOptions(tokenizer=tokenizer, context_length=context_length, limit=limit,
                              shard_samples=shard_samples, overwrite=overwrite)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting")

        def update(s: TextOnlySummary) -> None:
            progress.update(task, description=f"{s.documents:,} documents, {s.sentences:,} sentences, "
                                              f"{s.tokens:,} tokens")

        try:
            summary = build_text_only(text_input, output, options, RayConfig(address=ray_address), update)
        except (ValueError, FileNotFoundError, FileExistsError) as e:
            console.print(f"[red]error:[/red] {e}", highlight=False)
            raise typer.Exit(2) from None
    console.print(
        f"[green]wrote[/green] {output}: {summary.documents:,} documents → {summary.sentences:,} sentences, "
        f"{summary.tokens:,} tokens in {summary.shards} shard(s)"
        + (f"; skipped {summary.skipped_documents:,} empty document(s)" if summary.skipped_documents else "")
    )
