"""`uniaudio eval`: score a checkpoint on a sentence store (token perplexity, ASR, TTS).

Examples::

    uniaudio eval tokens --model out/stage4 --data s3://work/sentences/asr-test --workers 8 --gpus-per-worker 1
    uniaudio eval asr --model out/stage4 --data sentences/asr-test --tokenizer /ckpt/llama3.2 --limit 200
    uniaudio eval tts --model out/stage4 --data sentences/tts-test --codec tiny --wav-dir wavs/
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from uniaudio.cli.common import RayAddress
from uniaudio.core import storage
from uniaudio.core.ray_runtime import RayConfig

app = typer.Typer(no_args_is_help=True, help="Score a checkpoint on a sentence store; JSON results + a table.")
console = Console(soft_wrap=True)

ModelDir = Annotated[str, typer.Option("--model", help="Checkpoint folder (model.safetensors + config.json).")]
Data = Annotated[str, typer.Option("--data", help="Sentence store (local path or s3://).")]
Tasks = Annotated[list[str] | None, typer.Option("--task", help="Only sentences of this task (repeatable).")]
Limit = Annotated[int | None, typer.Option(help="Evaluate the first N sentences (in this process).", min=1)]
Out = Annotated[str | None, typer.Option("--out", help="Write the JSON result here (local or s3://).",
                                         show_default=False)]
Workers = Annotated[int, typer.Option(help="Ray tasks to split the store's shards over (1: in this process).",
                                      min=1)]
Gpus = Annotated[float, typer.Option(help="GPUs per Ray task.", min=0)]
Device = Annotated[str, typer.Option(help="Torch device of the model in each process ('cpu', 'cuda').")]
Seed = Annotated[int, typer.Option(help="Seed of sampling and codec noise.")]


def _run(kind: str, ray_address: str | None, out: str | None, **options: Any) -> dict[str, Any]:
    from uniaudio.eval.runner import EvalConfig, EvalError, run_eval

    try:
        config = EvalConfig(kind=kind, tasks=tuple(options.pop("tasks") or ()), **options)
        logs = (out.rsplit("/", 1)[0] if "/" in out else ".") if out else None
        result = run_eval(config, RayConfig(address=ray_address, log_to=logs))
    except (EvalError, FileNotFoundError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
    if out:
        storage.atomic_write_bytes(out, json.dumps(result, indent=2).encode())
        console.print(f"results written to {out}")
    return result


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


@app.command("tokens")
def tokens(model: ModelDir, data: Data, task: Tasks = None, limit: Limit = None,
           batch_size: Annotated[int, typer.Option(help="Sentences per forward pass.", min=1)] = 8,
           workers: Workers = 1, gpus_per_worker: Gpus = 0.0, device: Device = "cpu", seed: Seed = 0,
           out: Out = None, ray_address: RayAddress = None) -> None:
    """Teacher-forced perplexity and accuracy: text, and each codebook of the reasoning and reconstruction
    streams (the paper's Table 2 style)."""
    r = _run("tokens", ray_address, out, model_dir=model, data=data, tasks=task, limit=limit,
             batch_size=batch_size, workers=workers, gpus_per_worker=gpus_per_worker, device=device, seed=seed)
    table = Table(title=f"token metrics: {r['sentences']} sentences of {data}")
    for col in ("stream", "scored", "perplexity", "accuracy"):
        table.add_column(col, justify="right" if col != "stream" else "left")
    rows = [("text", r["text"]), ("reasoning (all)", r["reason"]["all"])]
    rows += [(f"  reasoning cb{k}", s) for k, s in enumerate(r["reason"]["codebooks"])]
    rows += [("reconstruction (all)", r["recon"]["all"])]
    rows += [(f"  reconstruction cb{k}", s) for k, s in enumerate(r["recon"]["codebooks"])]
    for name, s in rows:
        table.add_row(name, f"{int(s['count'])}", _fmt(s["perplexity"], 2), _fmt(s["accuracy"]))
    console.print(table)


@app.command("asr")
def asr(model: ModelDir, data: Data, task: Tasks = None, limit: Limit = None,
        tokenizer: Annotated[str | None, typer.Option(help="Text tokenizer folder (default: the packaged one; "
                                                         "use the store's).", show_default=False)] = None,
        max_new_tokens: Annotated[int, typer.Option(help="Longest transcript in tokens.", min=1)] = 128,
        workers: Workers = 1, gpus_per_worker: Gpus = 0.0, device: Device = "cpu", seed: Seed = 0,
        out: Out = None, ray_address: RayAddress = None) -> None:
    """Greedy transcripts after each sentence's audio (ASR, lyric recognition, captioning), scored as WER
    and CER with jiwer against the store's text."""
    r = _run("asr", ray_address, out, model_dir=model, data=data, tasks=task, limit=limit, tokenizer=tokenizer,
             max_new_tokens=max_new_tokens, workers=workers, gpus_per_worker=gpus_per_worker, device=device,
             seed=seed)
    table = Table(title=f"ASR on {data}")
    for col in ("utterances", "WER", "CER", "skipped"):
        table.add_column(col, justify="right")
    table.add_row(str(r["utterances"]), _fmt(r["wer"]), _fmt(r["cer"]), str(r["skipped"]))
    console.print(table)
    for ex in r["examples"][:3]:
        console.print(f"[dim]{ex['key']}[/dim]\n  ref: {ex['reference']}\n  hyp: {ex['hypothesis']}")


@app.command("tts")
def tts(model: ModelDir, data: Data, task: Tasks = None, limit: Limit = None,
        codec: Annotated[str | None, typer.Option(help="Decode generated tokens with this codec config "
                                                     "('tiny', 'official').", show_default=False)] = None,
        codec_dir: Annotated[str | None, typer.Option(help="Released ReasoningCodec folder (official).",
                                                      show_default=False)] = None,
        wav_dir: Annotated[str | None, typer.Option(help="Write decoded audio here (needs --codec).",
                                                    show_default=False)] = None,
        asr_model: Annotated[str | None, typer.Option(
            help="Score the decoded speech with this local Hugging Face ASR model folder (wav2vec 2.0 CTC with its "
            "processor, or Whisper): WER/CER against the transcript or lyrics the audio should say (needs --codec).",
            show_default=False)] = None,
        cfg_scale: Annotated[float, typer.Option(help="Classifier-free guidance scale.")] = 1.0,
        workers: Workers = 1, gpus_per_worker: Gpus = 0.0, device: Device = "cpu", seed: Seed = 0,
        out: Out = None, ray_address: RayAddress = None) -> None:
    """Generate audio tokens from each sentence's text prompt and report what is scorable offline: stop
    rate, token validity, duration ratio (and decoded seconds with --codec; WER/CER of an external ASR on the
    decoded speech with --asr-model).

    Example: uniaudio eval tts --model ./ckpt/stage4 --data ./sentences/tts --codec official \
      --codec-dir ./uniaudio2_ckpt --asr-model ./whisper-large-v3 --limit 200
    """
    if wav_dir and not codec:
        raise typer.BadParameter("--wav-dir needs --codec", param_hint="--wav-dir")
    if asr_model and not codec:
        raise typer.BadParameter("--asr-model scores decoded audio: it needs --codec", param_hint="--asr-model")
    r = _run("tts", ray_address, out, model_dir=model, data=data, tasks=task, limit=limit, codec=codec,
             codec_dir=codec_dir, wav_dir=wav_dir, asr_model=asr_model, cfg_scale=cfg_scale, workers=workers,
             gpus_per_worker=gpus_per_worker, device=device, seed=seed)
    table = Table(title=f"TTS-style generation on {data}")
    for col in ("generations", "stop rate", "valid rate", "duration ratio", "decoded s", "skipped"):
        table.add_column(col, justify="right")
    table.add_row(str(r["generations"]), _fmt(r["stop_rate"]), _fmt(r["valid_rate"]), _fmt(r["duration_ratio"]),
                  _fmt(r["decoded_seconds"], 2), str(r["skipped"]))
    console.print(table)
    if "asr" in r:
        a = r["asr"]
        console.print(f"external ASR on the decoded speech ({asr_model}): {a['utterances']} utterances, "
                      f"WER {_fmt(a['wer'])}, CER {_fmt(a['cer'])}")
