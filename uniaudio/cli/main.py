"""The ``uniaudio`` command: one typer app, one sub-app per stage of the data flow.

corpus → ``uniaudio ingest`` (audio records) → ``uniaudio shards build`` (token store)
→ ``uniaudio sentences`` (sentence store) → ``uniaudio train`` → ``uniaudio eval``.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from uniaudio.cli import codec, ingest, model, sentences, shards, sources
from uniaudio.cli import demo as demo_cli
from uniaudio.cli import eval as eval_cli
from uniaudio.cli import jobs as cluster_jobs
from uniaudio.cli import train as train_cli
from uniaudio.core import ray_logs, storage

app = typer.Typer(
    name="uniaudio",
    help="Prepare data for, and train, UniAudio 2.0-style audio language models.\n\n"
    "Data flows one way: corpus → audio records (ingest) → token store (shards build) → "
    "sentence store (sentences) → training → checkpoints. Every path is a URI: a local path or "
    "s3://bucket/prefix (credentials from the AWS_* variables or the --s3-* options).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(sources.app, name="sources", help="List the corpus sources and the layouts each reads.")
app.command("ingest")(ingest.ingest)
app.add_typer(shards.app, name="shards", help="Build, validate, inspect and summarise token stores.")
app.add_typer(codec.app, name="codec", help="ReasoningCodec: make tiny checkpoints, encode and decode audio.")
app.add_typer(model.app, name="model", help="UniAudio 2.0 model: initialise, import and export checkpoints.")
app.add_typer(sentences.app, name="sentences", help="Build training sentences from token stores and text.")
app.command("demo")(demo_cli.demo)
app.add_typer(eval_cli.app, name="eval", help="Score a checkpoint on a sentence store: token perplexity, ASR, TTS.")
app.add_typer(train_cli.app, name="train")  # help: the callback's docstring (train, export, plot)
app.command("submit")(cluster_jobs.submit)
app.add_typer(cluster_jobs.app, name="jobs", help="Ray Jobs on a cluster: list, status, logs, stop.")


@app.callback()
def main(
    s3_endpoint: Annotated[
        str | None, typer.Option(help="S3 endpoint URL (default: $AWS_ENDPOINT_URL).", show_default=False)
    ] = None,
    s3_region: Annotated[
        str | None, typer.Option(help="S3 region (default: $AWS_REGION).", show_default=False)
    ] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Log at INFO level, and show Ray's own lines on the console instead of in "
        "OUTPUT/_logs/ray.log.")] = False,
) -> None:
    ray_logs.set_verbose(verbose)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if s3_endpoint or s3_region:
        storage.configure_s3(endpoint_url=s3_endpoint, region=s3_region)


if __name__ == "__main__":
    app()
