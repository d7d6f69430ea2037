"""The codec options shared by `shards build` and `sentences build` (audio-level kinds), and their config.

Both commands tokenize audio with the same codec stage (:mod:`uniaudio.pipelines.tokenize_stage`), so they take
the same options, defined once here; :func:`codec_stage_config` turns them into a validated
:class:`~uniaudio.pipelines.tokenize_stage.TokenizeStageConfig` (``typer.BadParameter`` naming the option on a
mistake).
"""

from __future__ import annotations

from typing import Annotated

import typer

from uniaudio.pipelines.tokenize_stage import TokenizeStageConfig

__all__ = ["CodecBatchSize", "CodecCkpt", "CodecDir", "CodecName", "DistillFeatures", "GpusPerWorker", "MusicSSL",
           "WavLM", "Whisper", "WindowMode", "codec_stage_config"]

CodecName = Annotated[str, typer.Option("--codec", help="Codec config: 'tiny' (random weights, CPU, no set-up) or "
                                        "'official' (the released ReasoningCodec; give --codec-ckpt etc.).")]
CodecCkpt = Annotated[str | None, typer.Option(help="The released ReasoningCodec.checkpoint file.",
                                               show_default=False)]
CodecDir = Annotated[str | None, typer.Option(help="A checkpoint-set directory (e.g. from `uniaudio codec init-tiny`, "
                                              "or uniaudio2_ckpt/).", show_default=False)]
Whisper = Annotated[str | None, typer.Option(help="Local whisper-medium directory.", show_default=False)]
WavLM = Annotated[str | None, typer.Option(help="Local WavLM directory.", show_default=False)]
MusicSSL = Annotated[str | None, typer.Option(help="Music SSL (MusicFM) weights file.", show_default=False)]
WindowMode = Annotated[str | None, typer.Option(help="Codec windowing: 'tile' (released: repeat short clips to 30 s) "
                                                "or 'segment' (cheaper); default per codec.", show_default=False)]
DistillFeatures = Annotated[bool, typer.Option(help="Also store WavLM/MusicFM features pooled to 12.5 Hz (float16) "
                                               "for the stage-1 distillation objective.")]
GpusPerWorker = Annotated[float, typer.Option(help="GPUs per codec actor (0 = CPU actors; default: 1 each when the "
                                              "cluster has GPUs).", min=0)]
CodecBatchSize = Annotated[int, typer.Option(
    "--batch-size", help="Clips per codec batch (in `shards build`, per codec-actor task: Ray's per-task cost, "
    "driver memory included, is paid once per batch). The encoder runs fixed-size groups of windows whatever "
    "this is, so it sets host memory (the batch's waveforms), not GPU memory.", min=1)]


def codec_stage_config(codec: str, codec_ckpt: str | None = None, codec_dir: str | None = None,
                       whisper: str | None = None, wavlm: str | None = None, music_ssl: str | None = None,
                       window_mode: str | None = None, distill_features: bool = False, batch_size: int = 8,
                       gpus_per_worker: float = 0.0) -> TokenizeStageConfig:
    """The codec stage config of the options; ``typer.BadParameter`` for a combination that cannot work."""
    if codec == "official" and not (codec_dir or codec_ckpt):
        raise typer.BadParameter("--codec official needs --codec-dir (or --codec-ckpt and the encoder paths)",
                                 param_hint="--codec")
    paths = {k: v for k, v in {"codec": codec_ckpt, "whisper": whisper, "wavlm": wavlm, "music_ssl": music_ssl}.items()
             if v}
    try:
        return TokenizeStageConfig(codec=codec, codec_dir=codec_dir, paths=paths, window_mode=window_mode,
                                   distill_features=distill_features, batch_size=batch_size,
                                   gpus_per_actor=gpus_per_worker)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
