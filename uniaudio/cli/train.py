"""`uniaudio train`: run a training stage over sentence stores, export checkpoints, plot loss curves.

``uniaudio train --stage N --data URI ... --output URI`` trains (the group's callback runs when no
subcommand is given); ``uniaudio train export CHECKPOINT OUT`` and ``uniaudio train plot OUTPUT`` are its
subcommands.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from uniaudio.cli.common import RayAddress, print_ray_log_note
from uniaudio.model.config import PRESETS
from uniaudio.train.engine import ModelSource
from uniaudio.train.recipe import RecipeError, load_recipe
from uniaudio.train.run import RunStateError, StagePlan, TrainJob, plan_stage, run_stage
from uniaudio.train.stores import StoreMismatch

console = Console(soft_wrap=True)
app = typer.Typer(invoke_without_command=True, no_args_is_help=False)


@app.callback(invoke_without_command=True)
def train(
    ctx: typer.Context,
    stage: Annotated[int | None, typer.Option(help="Training stage: 1 understanding warm-up, 2 generation "
                                              "warm-up, 3 pre-training, 4 mid-training.", min=1, max=4,
                                              show_default=False)] = None,
    data: Annotated[list[str] | None, typer.Option("--data", help="Sentence store URI (repeatable). Without a "
                                                   "recipe mixture each store weighs its tokens.",
                                                   show_default=False)] = None,
    output: Annotated[str | None, typer.Option(help="Run directory (local or s3://): checkpoints, metrics.jsonl, "
                                               "and at the end model.safetensors + config.json.",
                                               show_default=False)] = None,
    model: Annotated[str, typer.Option(help=f"Model preset when starting without --init: {', '.join(PRESETS)}.")
                     ] = "tiny",
    init: Annotated[str | None, typer.Option(help="Starting weights: a `model init` directory or the previous "
                                             "stage's --output (weights only; fresh optimizer and data).",
                                             show_default=False)] = None,
    llama: Annotated[str | None, typer.Option(help="Local Hugging Face LLaMA directory for the text parts of a "
                                              "fresh --model.", show_default=False)] = None,
    workers: Annotated[int, typer.Option(help="Training workers (one per GPU).", min=1)] = 1,
    gpus_per_worker: Annotated[float, typer.Option(help="GPUs per worker; 0 trains on CPU with gloo.", min=0)] = 0,
    zero: Annotated[int | None, typer.Option(help="DeepSpeed ZeRO stage (2 or 3; default: the recipe's).",
                                             show_default=False)] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps (the schedule still spans "
                                                  "the recipe's steps).", min=1, show_default=False)] = None,
    checkpoint_every: Annotated[int | None, typer.Option(help="Checkpoint every N steps (default: the recipe's).",
                                                         min=1, show_default=False)] = None,
    recipe: Annotated[str | None, typer.Option(help="User recipe YAML: the keys it changes.",
                                               show_default=False)] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe key: KEY=VALUE, dotted for "
                                                   "nested keys (optimizer.lr=1e-4). Repeatable.",
                                                   show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --output from its last "
                                         "checkpoint.")] = False,
    ray_address: RayAddress = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved recipe, mixture, trainable "
                                          "parameters per group and tokens per step; train nothing.")] = False,
) -> None:
    """Train one stage of UniAudio 2.0 on sentence stores (Ray Train + DeepSpeed).

    Examples:

    \b
      uniaudio train --stage 1 --data s3://work/sent/asr --data s3://work/sent/caption \\
          --output s3://work/runs/stage1 --model 3b --init ckpt/init --workers 64 --gpus-per-worker 1
      uniaudio train --stage 2 --data sent/tts --output runs/stage2 --init runs/stage1 --set optimizer.lr=1e-4
      uniaudio train --stage 1 --data sent/asr --output runs/stage1 --resume
      uniaudio train --stage 3 --data sent/text --output runs/s3 --dry-run
    """
    if ctx.invoked_subcommand is not None:
        return
    if stage is None or not data or output is None:
        console.print(ctx.get_help())
        raise typer.BadParameter("--stage, --data and --output are required to train")
    overrides = list(set_ or [])
    if zero is not None:
        overrides.append(f"zero_stage={zero}")
    if checkpoint_every is not None:
        overrides.append(f"checkpoint_every={checkpoint_every}")
    try:
        stage_recipe = load_recipe(stage, recipe, overrides)
        job = TrainJob(stage=stage, data=tuple(data), output=output,
                       model=ModelSource(preset=model, init=init, llama=llama), workers=workers,
                       gpus_per_worker=gpus_per_worker, max_steps=max_steps, resume=resume, ray_address=ray_address)
        plan = plan_stage(job, stage_recipe)
    except (RecipeError, StoreMismatch, ValueError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    _print_plan(plan, job)
    if dry_run:
        return
    for note in plan.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    try:
        summary = run_stage(job, plan, on_progress=_progress_line)
    except RunStateError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    last = (summary.get("metrics") or [{}])[0]
    console.print(f"stage {stage} done: step {summary['step']}, loss {last.get('loss', float('nan')):.4f}; "
                  f"wrote {output}/model.safetensors + config.json in {summary['elapsed_s']:.0f} s")
    print_ray_log_note(console)


def _progress_line(rec: dict[str, Any]) -> None:
    mfu = f", MFU {rec['mfu']:.1%}" if rec.get("mfu") is not None else ""
    console.print(f"step {rec['step']}: loss {rec['loss']:.4f} (text {rec['loss_text']:.4f}, audio "
                  f"{rec['loss_audio']:.4f}), lr {rec['lr']:.2e}, {rec['tokens_per_s']:,.0f} tokens/s{mfu}, "
                  f"packing {rec['packing_efficiency']:.1%}")


def _print_plan(plan: StagePlan, job: TrainJob) -> None:
    r = plan.recipe
    console.print(f"[bold]stage {r.stage}[/bold]: {plan.steps} steps of {plan.tokens_per_step:,} tokens "
                  f"({job.workers} worker(s) x {r.batch.rows} rows x {r.context} x {plan.accumulation} "
                  f"accumulation), lr {r.optimizer.lr:g} ({r.schedule.kind}, warm-up {r.schedule.warmup_steps}), "
                  f"ZeRO-{r.zero_stage}")
    console.print("recipe: " + json.dumps(r.to_dict(), sort_keys=True))
    mix = Table(title="mixture")
    for col in ("store", "tasks", "samples", "tokens", "weight"):
        mix.add_column(col)
    total = sum(plan.weights)
    for s, w in zip(plan.stores, plan.weights, strict=True):
        mix.add_row(s.uri, ", ".join(sorted(s.tasks)), f"{s.samples:,}", f"{s.tokens:,}", f"{w / total:.3f}")
    console.print(mix)
    groups = Table(title="parameter groups")
    for col in ("group", "parameters", "trainable"):
        groups.add_column(col)
    for g, info in plan.groups.items():
        groups.add_row(g, f"{info['parameters']:,}", "yes" if info["trainable"] else "frozen")
    trainable = sum(i["parameters"] for i in plan.groups.values() if i["trainable"])
    groups.add_row("trainable total", f"{trainable:,}", "")
    console.print(groups)


@app.command("export")
def export(
    checkpoint: Annotated[str, typer.Argument(help="A training checkpoint directory, or a run's --output (its "
                                              "latest checkpoint is taken).")],
    out: Annotated[str, typer.Argument(help="Output directory for model.safetensors + config.json.")],
    keep_aux_decoder: Annotated[bool, typer.Option(help="Keep the stage-1 auxiliary decoder.")] = False,
) -> None:
    """Consolidate a training checkpoint (every rank's ZeRO shards) into a model checkpoint.

    Examples:

    \b
      uniaudio train export runs/stage1 ckpt/stage1-latest
      uniaudio train export runs/stage1/ray/checkpoint_2026-01-01_00-00-00.000000 ckpt/step1000
    """
    from uniaudio.train.checkpoints import export_checkpoint

    try:
        state = export_checkpoint(checkpoint, out, keep_aux_decoder=keep_aux_decoder)
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    console.print(f"wrote {out} (stage {state['stage']}, step {state['step']}, from {state['checkpoint']})")


@app.command("plot")
def plot(
    output: Annotated[str, typer.Argument(help="A training --output holding metrics.jsonl.")],
    out: Annotated[str | None, typer.Option(help="PNG file (default: OUTPUT/loss.png).", show_default=False)] = None,
) -> None:
    """Draw the loss curves (total, text, audio, aux) of a run's metrics.jsonl.

    Examples:

    \b
      uniaudio train plot runs/stage1 --out stage1.png
    """
    from uniaudio.train.plot import plot_losses

    try:
        path = plot_losses(output, out)
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    console.print(f"wrote {path}")
