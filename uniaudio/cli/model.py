"""`uniaudio model` commands: create, convert and inspect UniAudio 2.0 model checkpoints.

Every checkpoint these commands write is ``OUT/model.safetensors`` + ``OUT/config.json`` (the format a
finished training stage writes, see :mod:`uniaudio.model.checkpoint`); OUT may be a local path or s3:// URI.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table

from uniaudio.model.checkpoint import load_checkpoint, read_config, save_checkpoint
from uniaudio.model.config import PRESETS, AuxDecoderConfig, UniAudioConfig, preset
from uniaudio.model.network import UniAudioModel
from uniaudio.model.official import export_official, import_official

app = typer.Typer(no_args_is_help=True)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

ConfigName = Annotated[str, typer.Option("--config", "-c", help=f"Model preset: {', '.join(PRESETS)}.")]
DType = Annotated[str, typer.Option(help=f"Dtype of the written weights: {', '.join(_DTYPES)}.")]


def _dtype(name: str) -> torch.dtype:
    if name not in _DTYPES:
        raise typer.BadParameter(f"unknown dtype {name!r}; choose one of {sorted(_DTYPES)}", param_hint="--dtype")
    return _DTYPES[name]


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _preset(name: str) -> UniAudioConfig:
    try:
        return preset(name)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--config") from e


@app.command("init")
def init(
    out: Annotated[str, typer.Argument(help="Output checkpoint directory (local path or s3:// URI).")],
    config: ConfigName = "3b",
    llama: Annotated[str | None, typer.Option(help="Local Hugging Face LLaMA directory (config.json + "
                                              "safetensors) for text embeddings, cross-modal layers and LM "
                                              "head; without it every weight is random.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fresh initialisation.")] = 0,
    aux_decoder: Annotated[bool, typer.Option("--aux-decoder/--no-aux-decoder",
                                              help="Add the stage-1 semantic-distillation decoder "
                                                   "(WavLM 768-d x4, MusicFM 1024-d x2 per frame).")] = False,
    dtype: DType = "float32",
) -> None:
    """Write an initial checkpoint: LLaMA parts from --llama, the rest fresh from --seed.

    Examples:

    \b
      uniaudio model init --config 3b --llama ./Llama-3.2-3B ckpt/init
      uniaudio model init --config tiny --seed 1 --aux-decoder /tmp/tiny-init
    """
    cfg = _preset(config)
    if aux_decoder:
        cfg = cfg.with_(aux_decoder=AuxDecoderConfig())
    torch.manual_seed(seed)
    with _default_dtype(_dtype(dtype)):  # build in the output dtype: no fp32 copy of a 3b model in memory
        model = UniAudioModel.from_llama(llama, cfg) if llama else UniAudioModel(cfg)
    save_checkpoint(model, out)
    typer.echo(f"wrote {out} ({cfg.name}, {_count(model) / 1e6:.1f} M parameters)")


@app.command("import-official")
def import_official_cmd(
    ckpt: Annotated[str, typer.Argument(help="Released checkpoint: torch.save file ({'model': state_dict}, "
                                        "read with weights_only=True) or .safetensors.")],
    out: Annotated[str, typer.Argument(help="Output checkpoint directory (local path or s3:// URI).")],
    config: ConfigName = "3b",
    reason_card: Annotated[int | None, typer.Option(help="Reasoning card of the checkpoint (default: the "
                                                    "preset's); the reconstruction card is V minus it.")] = None,
    dtype: DType = "float32",
) -> None:
    """Convert a released UniAudio 2.0 LLM checkpoint (litgpt names) into a uniaudio checkpoint.

    Examples:

    \b
      uniaudio model import-official UniAudio2_ckpt/llm.checkpoint ckpt/official --config 3b
    """
    cfg = _preset(config)
    if reason_card is not None:
        audio = replace(cfg.tokens.audio, reason_card=reason_card)
        cfg = cfg.with_(tokens=replace(cfg.tokens, audio=audio))
    model = import_official(ckpt, cfg)
    save_checkpoint(model, out, dtype=_dtype(dtype))
    a = model.config.tokens.audio
    typer.echo(f"wrote {out} (cards: reasoning {a.reason_card}, reconstruction {a.recon_card})")


@app.command("export-official")
def export_official_cmd(
    ckpt: Annotated[str, typer.Argument(help="uniaudio checkpoint directory (model.safetensors + config.json).")],
    out: Annotated[str, typer.Argument(help="Output file: .safetensors, or any other suffix for a torch.save "
                                       "{'model': state_dict} file as the released loader reads.")],
) -> None:
    """Write a uniaudio checkpoint under the released names (the auxiliary decoder is dropped).

    Examples:

    \b
      uniaudio model export-official ckpt/stage4 out/uniaudio2.checkpoint
    """
    model = load_checkpoint(ckpt)
    if model.aux_decoder is not None:
        model.drop_aux_decoder()
    export_official(model, out)
    typer.echo(f"wrote {out}")


@app.command("info")
def info(
    ckpt: Annotated[str | None, typer.Argument(help="Checkpoint directory; omit to describe --config.")] = None,
    config: ConfigName = "3b",
) -> None:
    """Parameter counts per group (the units a training stage freezes or trains).

    Examples:

    \b
      uniaudio model info ckpt/init
      uniaudio model info --config 1b
    """
    cfg = read_config(ckpt) if ckpt else _preset(config)
    with torch.device("meta"):  # shapes only: nothing is allocated or read
        model = UniAudioModel(cfg)
    table = Table(title=f"UniAudio model {model.config.name!r}")
    table.add_column("group")
    table.add_column("parameters", justify="right")
    for group, params in model.param_groups().items():
        table.add_row(group, f"{sum(p.numel() for _, p in params):,}")
    table.add_row("total", f"{_count(model):,}")
    Console().print(table)


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
