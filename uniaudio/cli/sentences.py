"""`uniaudio sentences`: build, inspect, validate and describe sentence stores (docs/formats.md)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
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
    DryRun,
    LockTimeout,
    RayAddress,
    lease_config,
    print_ray_log_note,
    report_problems,
    reported_errors,
)

app = typer.Typer(no_args_is_help=True)
console = Console(soft_wrap=True)

_USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError)


def _fail(err: Exception) -> None:
    console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False)
    raise typer.Exit(2) from None


@app.command()
def build(
    kind: Annotated[str, typer.Argument(
        help="A task (asr, tts, instruct-tts, speech-caption, tta, ttm, audio-caption, music-caption, "
        "lyric-recognition, lyric-to-song, text-only, audio-only) or a strategy (segment, speech-text, "
        "audio-caption-interleave, mixture, variation).", show_default=False)],
    output: Annotated[str, typer.Argument(
        metavar="OUTPUT_URI", help="Sentence store to write: local directory or s3://bucket/prefix.")],
    tokens: Annotated[list[str] | None, typer.Option(
        "--tokens", help="Input token store (repeatable; all of one codec).", show_default=False)] = None,
    text: Annotated[list[str] | None, typer.Option(
        "--text", help="Text corpus for text-only (repeatable): .jsonl[.gz] file or folder, .parquet/.arrow, "
        "save_to_disk folder, or a cached HF dataset name.", show_default=False)] = None,
    pool: Annotated[list[str] | None, typer.Option(
        "--pool", help="STORE_URI=POOL: put every sample of that --tokens store in pool speech, sound or music "
        "(split at the last '=', so s3:// URIs work).", show_default=False)] = None,
    tokenizer: Annotated[str | None, typer.Option(
        help="Hugging Face tokenizer folder (e.g. LLaMA-3.2's); default: the small byte-level BPE shipped "
        "with uniaudio.", show_default=False)] = None,
    max_tokens: Annotated[int, typer.Option(help="Longest sentence in the model's sequence format.", min=16)] = 2048,
    seed: Annotated[int, typer.Option(help="Seed of every random choice (same seed, same store).")] = 0,
    limit: Annotated[int | None, typer.Option(help="Write at most N sentences.", min=1, show_default=False)] = None,
    text_column: Annotated[str, typer.Option(help="text-only: column / JSON field holding the text.")] = "text",
    id_column: Annotated[str | None, typer.Option(
        help="text-only: column with a unique document id (default: <file>_<row>).", show_default=False)] = None,
    shard_samples: Annotated[int, typer.Option(help="Sentences per shard.", min=1)] = 4096,
    codec: CodecName = "tiny",
    codec_ckpt: CodecCkpt = None,
    codec_dir: CodecDir = None,
    whisper: Whisper = None,
    wavlm: WavLM = None,
    music_ssl: MusicSSL = None,
    window_mode: WindowMode = None,
    distill_features: DistillFeatures = False,
    gpus_per_worker: GpusPerWorker = 0.0,
    batch_size: CodecBatchSize = 8,
    demucs_model: Annotated[str | None, typer.Option(
        help="mixture: a local HTDemucs checkpoint (demucs .th or .safetensors) to separate music into vocals and "
        "accompaniment for extra triples.", show_default=False)] = None,
    variation_backend: Annotated[str | None, typer.Option(
        help="variation: renderer of the acoustic variants, 'dsp' (pitch/speed/gain of the real recording; "
        "default) or 'espeak' (the espeak-ng program, Debian package espeak-ng).", show_default=False)] = None,
    variants: Annotated[int | None, typer.Option(
        help="variation: renditions of each text per sentence, 2-8 (default 3).", show_default=False)] = None,
    ray_address: RayAddress = None,
    dry_run: DryRun = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing sentence store.")] = False,
    break_lock: BreakLock = False,
    lock_timeout: LockTimeout = 600.0,
) -> None:
    """Build a sentence store of one task or strategy from token stores (and text corpora).

    Ray Data runs the work, one task per input shard; a build that stops (crash, kill, --limit) resumes
    where it stopped when the same command is run again. The summary counts sentences and tokens per
    task/strategy and the records skipped, by reason. Audio-level kinds (mixture, variation) tokenize new audio on the
    workers with the codec options of `shards build`, which must give the input stores' codec.

    Examples:
      uniaudio sentences build asr ./sentences/asr --tokens ./tokens/librispeech
      uniaudio sentences build speech-text s3://b/sent/st --tokens s3://b/tok/mls --tokens s3://b/tok/emilia
      uniaudio sentences build text-only ./sentences/text --text ./olmo-sample --tokenizer ./llama-3.2
      uniaudio sentences build mixture ./sentences/mix --tokens ./tokens/ls --tokens ./tokens/audiocaps \
          --tokens ./tokens/musiccaps --codec official --codec-dir /ckpt/uniaudio2_ckpt --demucs-model htdemucs.th
    """
    from uniaudio.core.ray_runtime import RayConfig
    from uniaudio.sentences.audio_render import codec_extra
    from uniaudio.sentences.build import BuildRequest, BuildSummary, build_sentences
    from uniaudio.sentences.documents import TextInput
    from uniaudio.sentences.registry import get_builder, kinds
    from uniaudio.sentences.sources import parse_pool_option

    try:
        if kind not in kinds():
            raise ValueError(f"unknown KIND {kind!r}; choose one of {', '.join(kinds())}")
        pools = dict(parse_pool_option(p) for p in pool or [])
        texts = tuple(asdict(TextInput(t, text_column=text_column, id_column=id_column)) for t in text or [])
        extra: dict = {}
        if get_builder(kind).needs_codec:
            extra.update(codec_extra(codec_stage_config(codec, codec_ckpt, codec_dir, whisper, wavlm, music_ssl,
                                                        window_mode, distill_features, batch_size, gpus_per_worker)))
        if demucs_model:
            if kind != "mixture":
                raise ValueError(f"--demucs-model is an option of mixture, not of {kind}")
            extra["demucs_model"] = str(Path(demucs_model).resolve())
        if kind == "variation":
            from uniaudio.sentences.variation import variation_extra

            extra.update(variation_extra(variation_backend, variants))
        elif variation_backend or variants is not None:
            raise ValueError(f"--variation-backend and --variants are options of variation, not of {kind}")
        request = BuildRequest(kind=kind, output_uri=output, tokens=tuple(tokens or []), text=texts, pools=pools,
                               tokenizer=tokenizer, max_tokens=max_tokens, seed=seed, limit=limit,
                               shard_samples=shard_samples, overwrite=overwrite, extra=extra,
                               lease=lease_config(break_lock, lock_timeout))
    except _USER_ERRORS as e:
        _fail(e)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting")

        def update(s: BuildSummary) -> None:
            progress.update(task, description=f"units {s.units_done}/{s.units}, {s.sentences:,} sentences, "
                                              f"{s.tokens:,} tokens, {sum(s.skipped.values()):,} skipped")

        try:
            with reported_errors(console):  # another writer holds the store, or storage stayed down
                summary = build_sentences(request, RayConfig(address=ray_address, log_to=output), dry_run=dry_run,
                                          on_progress=update)
        except _USER_ERRORS as e:
            _fail(e)
    if summary.dry_run:
        console.print(f"[bold]dry run[/bold] {kind}: {summary.units} unit(s) of work; nothing written")
        return
    console.print(f"[green]wrote[/green] {output}: {summary.sentences:,} sentences, {summary.tokens:,} tokens in "
                  f"{summary.shards} shard(s); units {summary.units_done}/{summary.units}"
                  + (f" ({summary.units_resumed} done by an earlier run)" if summary.units_resumed else ""))
    table = Table("task / strategy", "sentences", "tokens")
    for name, row in {**summary.tasks, **{f"strategy {k}": v for k, v in summary.strategies.items()}}.items():
        table.add_row(name, f"{row['samples']:,}", f"{row['tokens']:,}")
    console.print(table)
    if summary.skipped:
        console.print("skipped records:")
        for reason, n in summary.skipped.most_common():
            console.print(f"  {n:>8,}  {reason}", markup=False, highlight=False)
    print_ray_log_note(console)


@app.command()
def inspect(
    uri: Annotated[str, typer.Argument(help="Sentence store: local directory or s3://bucket/prefix.")],
    key: Annotated[str, typer.Argument(help="Sentence key, e.g. asr/librispeech/1272-128104-0000.")],
    tokenizer: Annotated[str | None, typer.Option(
        help="Tokenizer folder to decode ids with (default: the one recorded in the index, else the shipped "
        "one).", show_default=False)] = None,
) -> None:
    """Render one sentence: its segments in order, decoded text, audio shapes and durations.

    Example: uniaudio sentences inspect ./sentences/asr asr/librispeech/1272-128104-0000
    """
    from uniaudio.sentences.store import iter_sentences, read_index
    from uniaudio.tokenize.text_tokenizer import TextTokenizer

    try:
        index = read_index(uri)
        recorded = (index.get("tokenizer") or {}).get("path")
        try:
            tok = TextTokenizer.load(tokenizer or recorded)
        except FileNotFoundError:
            if tokenizer:
                raise
            tok = TextTokenizer.load(None)  # recorded on another machine: the shipped one
        found = next(iter_sentences(uri, keys=[key]), None)
    except _USER_ERRORS as e:
        _fail(e)
    if found is None:
        console.print(f"[red]key {key!r} not found in {uri}[/red]")
        raise typer.Exit(1)
    console.print(f"[bold]{found.key}[/bold]  task {found.task}"
                  + (f", strategy {found.strategy}" if found.strategy else "")
                  + f"  {found.num_tokens} tokens  sources {', '.join(found.source_keys) or '-'}", highlight=False)
    for i, seg in enumerate(found.segments):
        flag = "loss" if seg.loss else "    "
        if seg.modality == "text":
            console.print(f"{i:>3} {flag} text  {seg.role:<13} {len(seg.ids):>4} ids  {tok.decode(seg.ids)!r}",
                          markup=False, highlight=False)
        else:
            secs = seg.reason.shape[1] / 5.0
            feats = ", ".join(f"{k} {tuple(v.shape)}" for k, v in seg.features.items())
            console.print(f"{i:>3} {flag} audio {seg.role:<13} reason {tuple(seg.reason.shape)} recon "
                          f"{tuple(seg.recon.shape)} ≈ {secs:.1f} s  from {seg.source_key or seg.provenance}"
                          + (f"  features {feats}" if feats else "")
                          + (f"  attrs {json.dumps(seg.attrs)}" if seg.attrs else ""), markup=False, highlight=False)


@app.command()
def validate(
    uri: Annotated[str, typer.Argument(help="Sentence store: local directory or s3://bucket/prefix.")],
) -> None:
    """Check a sentence store against its index: shards, sha256, adjacency, dtypes, id ranges, num_tokens.

    Exit status 0 when the store is sound, 1 with the list of every problem otherwise.

    Example: uniaudio sentences validate s3://my-bucket/sentences/asr
    """
    from uniaudio.sentences.store import read_index
    from uniaudio.sentences.validate import validate_sentence_store

    with console.status("validating") as status:
        problems = validate_sentence_store(uri, on_shard=lambda name: status.update(f"validating {name}"))

    def summary() -> str:
        t = read_index(uri)["totals"]
        return f"{t['shards']} shards, {t['samples']:,} sentences, {t['tokens']:,} tokens"

    report_problems(console, uri, problems, summary)


@app.command()
def stats(
    uri: Annotated[str, typer.Argument(help="Sentence store: local directory or s3://bucket/prefix.")],
    plot: Annotated[Path | None, typer.Option(help="Write the sentence-length histogram to this PNG.")] = None,
) -> None:
    """Print sentences and tokens per task, segment counts and skipped records; optionally plot lengths.

    Example: uniaudio sentences stats ./sentences/asr --plot lengths.png
    """
    from uniaudio.sentences.stats import collect_stats, plot_lengths

    try:
        with console.status("reading") as status:
            st = collect_stats(uri, on_shard=lambda u: status.update(f"reading {u.rsplit('/', 1)[-1]}"))
    except _USER_ERRORS as e:
        _fail(e)
    table = Table("task", "sentences", "tokens", "mean tokens", "max tokens",
                  title=f"{uri}  (tokenizer {st.tokenizer.get('fingerprint')}, vocab {st.tokenizer.get('vocab_size')}; "
                  f"codec {st.codec_fingerprint})")
    for task, row in st.rows().items():
        table.add_row(task, f"{row['sentences']:,}", f"{row['tokens']:,}", f"{row['mean_tokens']}",
                      f"{row['max_tokens']}")
    console.print(table)
    console.print(f"segments: {st.segments.get('text', 0):,} text, {st.segments.get('audio', 0):,} audio")
    for reason, n in sorted(st.skipped.items(), key=lambda kv: -kv[1]):
        console.print(f"skipped {n:>8,}  {reason}", markup=False, highlight=False)
    if plot:
        console.print(f"length histogram → {plot_lengths(st, plot, title=uri)}")
