"""`uniaudio codec` commands: make the tiny checkpoint set, encode audio files, decode a token store,
convert the released checkpoint files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)

CodecName = Annotated[str, typer.Option("--codec", help="Codec config: 'tiny' (cached random weights, no "
                                         "set-up) or 'official' (needs --codec-dir or the file options).")]
CodecDir = Annotated[Path | None, typer.Option("--codec-dir", help="Checkpoint set laid out like the "
                                                 "released uniaudio2_ckpt/ (see docs/codec.md).")]
CodecCkpt = Annotated[Path | None, typer.Option("--codec-ckpt", help="The codec checkpoint "
                                                  "(ReasoningCodec.checkpoint); overrides --codec-dir's.")]
WhisperDir = Annotated[Path | None, typer.Option("--whisper", help="whisper-medium directory (HF format).")]
WavlmDir = Annotated[Path | None, typer.Option("--wavlm", help="WavLM directory (HF format).")]
MusicSsl = Annotated[Path | None, typer.Option("--music-ssl", help="MusicFM weights file (music_ssl.pt).")]
Device = Annotated[str, typer.Option("--device", help="'auto', 'cpu', 'cuda' or 'cuda:N'.")]
Precision = Annotated[str, typer.Option("--precision", help="'auto' (bf16 on CUDA, fp32 on CPU), 'fp32' "
                                          "or 'bf16'.")]


def _paths(codec: str, codec_dir: Path | None, codec_ckpt: Path | None = None, whisper: Path | None = None,
           wavlm: Path | None = None, music_ssl: Path | None = None):
    from uniaudio.tokenize.reasoning_codec import resolve_checkpoint_set

    return resolve_checkpoint_set(codec, codec_dir, codec=codec_ckpt, whisper=whisper, wavlm=wavlm,
                                  music_ssl=music_ssl)


def _load_tokenizer(codec: str, paths_args: dict, device: str, **kwargs):
    """Load the codec; set-up problems (missing files, mismatched checkpoints) become usage errors."""
    from uniaudio.tokenize.reasoning_codec import CodecTokenizer

    try:
        return CodecTokenizer.load(_paths(codec, **paths_args), config_name=codec, device=_device(device), **kwargs)
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc


def _device(device: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


@app.command("init-tiny")
def init_tiny(
    directory: Annotated[Path, typer.Argument(help="Where to write the tiny checkpoint set.")],
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Write a complete tiny checkpoint set (codec + frozen encoders + decoder) in the official formats."""
    from uniaudio.tokenize.reasoning_codec import write_tiny_set

    paths = write_tiny_set(directory, seed=seed)
    typer.echo(f"wrote tiny checkpoint set to {paths.codec.parent}")


@app.command("encode")
def encode(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files, then the output directory last.")],
    codec: CodecName = "tiny",
    codec_dir: CodecDir = None,
    codec_ckpt: CodecCkpt = None,
    whisper: WhisperDir = None,
    wavlm: WavlmDir = None,
    music_ssl: MusicSsl = None,
    device: Device = "auto",
    precision: Precision = "auto",
    window_mode: Annotated[str | None, typer.Option(help="'tile' (released) or 'segment' (cheaper); "
                                                     "default: the config's.")] = None,
    distill_features: Annotated[bool, typer.Option("--distill-features", help="Also write WavLM/MusicFM "
                                                     "features pooled to 12.5 Hz (float16).")] = False,
) -> None:
    """Tokenize audio files: writes OUT/<name>.reason.npy (8,T_r) and .recon.npy (8,T_s), uint16."""
    import numpy as np

    from uniaudio.tokenize.audio_files import read_audio_24k

    if len(inputs) < 2:
        raise typer.BadParameter("give at least one audio file and the output directory")
    *files, out_dir = inputs
    tok = _load_tokenizer(codec, {"codec_dir": codec_dir, "codec_ckpt": codec_ckpt, "whisper": whisper,
                                  "wavlm": wavlm, "music_ssl": music_ssl}, device, window_mode=window_mode,
                          precision=precision)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, enc in zip(files, tok.encode([read_audio_24k(f) for f in files], distill=distill_features),
                         strict=True):
        np.save(out_dir / f"{path.stem}.reason.npy", enc.reason, allow_pickle=False)
        np.save(out_dir / f"{path.stem}.recon.npy", enc.recon, allow_pickle=False)
        for name, arr in enc.distill.items():
            np.save(out_dir / f"{path.stem}.distill_{name}.npy", arr, allow_pickle=False)
        typer.echo(f"{path}: reason {enc.reason.shape}, recon {enc.recon.shape}")
    (out_dir / "codec.json").write_text(json.dumps(tok.codec_meta(), indent=2))


@app.command("decode")
def decode(
    store_uri: Annotated[str, typer.Argument(help="Token store (local path or s3://).")],
    out_dir: Annotated[Path, typer.Argument(help="Directory for the wav files.")],
    keys: Annotated[str | None, typer.Option(help="Comma-separated keys to decode (default: all).")] = None,
    codec: CodecName = "tiny",
    codec_dir: CodecDir = None,
    codec_ckpt: CodecCkpt = None,
    device: Device = "auto",
    precision: Precision = "auto",
    steps: Annotated[int, typer.Option(help="Euler steps of the flow decoder (10 speech/music, "
                                            "25 sound).")] = 10,
    cfg: Annotated[float, typer.Option(help="Classifier-free guidance scale (released: 1.5).")] = 1.5,
    seed: Annotated[int, typer.Option(help="Seed of the flow decoder's noise.")] = 0,
    window_seconds: Annotated[float, typer.Option(help="Decode window in seconds (released: 20; hop 3/4 "
                                                       "of it).")] = 20.0,
) -> None:
    """Decode reconstruction tokens of a token store to 24 kHz wav files (<key with / → __>.wav)."""
    import soundfile as sf

    from uniaudio.pipelines.token_store.reader import iter_store

    tok = _load_tokenizer(codec, {"codec_dir": codec_dir, "codec_ckpt": codec_ckpt}, device,
                          encode=False, decode=True, precision=precision)
    wanted = [k.strip() for k in keys.split(",") if k.strip()] if keys else None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = set()
    for sample in iter_store(store_uri, keys=wanted):
        made_by = (sample.meta.get("codec") or {}).get("config", "")
        if made_by and made_by.split("/")[0] != tok.config.name:
            raise typer.BadParameter(f"{sample.key}: tokens were made by codec config {made_by!r}, "
                                     f"decoding with {tok.config.name!r}")
        try:
            wave = tok.decode(sample.recon, steps=steps, cfg=cfg, seed=seed, window_seconds=window_seconds)
        except ValueError as exc:
            raise typer.BadParameter(f"{sample.key}: {exc}") from exc
        target = out_dir / (sample.key.replace("/", "__") + ".wav")
        sf.write(target, wave, 24_000, subtype="FLOAT")
        written.add(sample.key)
        typer.echo(f"{sample.key}: {wave.shape[0] / 24_000:.2f} s → {target}")
    missing = sorted(set(wanted or []) - written)
    if missing:
        raise typer.BadParameter(f"keys not found in {store_uri}: {', '.join(missing)}")


@app.command("convert")
def convert(
    src_dir: Annotated[Path, typer.Argument(help="Released checkpoint set (uniaudio2_ckpt/ layout).")],
    out_dir: Annotated[Path, typer.Argument(help="Where to write the converted set.")],
) -> None:
    """Convert the released pickled files to safetensors + JSON without unpickling anything but an
    explicit allow-list (argparse.Namespace, numpy scalars); the output is a complete checkpoint set."""
    from uniaudio.tokenize.reasoning_codec.convert import convert_checkpoint_set

    try:
        done = convert_checkpoint_set(src_dir, out_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    for item in done:
        detail = f" ({item.tensors} tensors)" if item.tensors else ""
        typer.echo(f"{item.source} → {', '.join(item.written)}{detail}")
