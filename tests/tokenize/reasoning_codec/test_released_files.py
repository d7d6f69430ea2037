"""Loading the released files as they are: full-size strict loads, the encoder copies inside the codec
checkpoint, and ``uniaudio codec convert`` on fairseq-style pickles."""

from __future__ import annotations

import argparse
import logging
import shutil

import numpy as np
import torch
from typer.testing import CliRunner

from tests.tokenize.reasoning_codec.test_checkpoint import released_decode_layout, released_encode_layout
from tests.tokenize.signals import tone
from uniaudio.cli.main import app
from uniaudio.tokenize.reasoning_codec import OFFICIAL, CheckpointMismatchError, CheckpointSet, CodecTokenizer
from uniaudio.tokenize.reasoning_codec.checkpoint import load_released_state_dict
from uniaudio.tokenize.reasoning_codec.codec import ReasoningCodec
from uniaudio.tokenize.reasoning_codec.flow_decoder import FlowDecoderConfig

runner = CliRunner()


def test_full_size_synthetic_checkpoint_loads_strictly_with_the_decoder():
    """Every released name and shape of the encode path and the 32-layer decoder (``pos_embed.pe``
    included), as meta tensors: a strict load at full size without the memory."""
    state = {f"module.{k}": torch.empty(shape, device="meta")
             for k, shape in (released_encode_layout() | released_decode_layout()).items()}
    with torch.device("meta"):
        model = ReasoningCodec(OFFICIAL, encode=True, flow_config=FlowDecoderConfig())
    load_released_state_dict(model, state, "synthetic")
    del state["module.cfm_wrapper.estimator.pos_embed.pe"]
    try:
        load_released_state_dict(model, state, "synthetic")
    except CheckpointMismatchError as exc:
        assert "missing (1): cfm_wrapper.estimator.pos_embed.pe" in str(exc)
    else:
        raise AssertionError("a checkpoint without pos_embed.pe must be refused")


def _copy_set(tiny_set: CheckpointSet, dst):
    shutil.copytree(tiny_set.codec.parent, dst)
    return CheckpointSet.from_dir(dst)


def test_encoder_copies_in_the_codec_checkpoint_win(tiny_set, tmp_path, caplog):
    paths = _copy_set(tiny_set, tmp_path / "set")
    blob = torch.load(paths.codec, weights_only=True)
    key = "pretrained_model.model.model.conv.conv.0.bn1.running_mean"
    assert key in blob["model"] and "whisper_encoder.conv1.weight" in blob["model"]
    blob["model"][key] = blob["model"][key] + 1.0
    torch.save(blob, paths.codec)
    with caplog.at_level(logging.WARNING):
        tok = CodecTokenizer.load(paths, window_mode="segment")
    torch.testing.assert_close(tok.encoders.music.conv.conv[0].bn1.running_mean, blob["model"][key])
    assert "1 encoder tensors differ" in caplog.text and "music.conv.conv.0.bn1.running_mean" in caplog.text
    blob["model"]["wavlm_encoder.masked_spec_embed"] = torch.zeros(3)
    torch.save(blob, paths.codec)
    try:
        CodecTokenizer.load(paths)
    except CheckpointMismatchError as exc:
        assert "mis-shaped wavlm: masked_spec_embed" in str(exc)
    else:
        raise AssertionError("a mis-shaped encoder copy must be refused")


def _fairseq_style(path, extra=None) -> None:
    """What fairseq's checkpoint_utils writes: weights beside an argparse.Namespace and training state."""
    blob = torch.load(path, weights_only=True)
    blob = {"args": argparse.Namespace(arch="musicfm", lr=[1e-4], label_rate=25),
            "cfg": {"model": {"_name": "musicfm", "encoder_depth": 12}},
            "model": blob["model"], "optimizer_history": [{"num_updates": 400000, "lr": np.float64(1e-4)}],
            "extra_state": {"epoch": 3}} | (extra or {})
    torch.save(blob, path)


def test_convert_reads_fairseq_pickles_and_the_result_loads(tiny_set, tmp_path):
    src = _copy_set(tiny_set, tmp_path / "released")
    _fairseq_style(src.music_ssl)
    try:
        torch.load(src.music_ssl, weights_only=True)
    except Exception:
        pass
    else:
        raise AssertionError("the fairseq-style file must need the allow-list")
    out = tmp_path / "converted"
    result = runner.invoke(app, ["codec", "convert", str(src.codec.parent), str(out)])
    assert result.exit_code == 0, result.output
    for name in ("ReasoningCodec.safetensors", "music_ssl.safetensors", "music_ssl.json", "sqcodec.safetensors",
                 "model_config.json", "sqcodec_config.yaml", "whisper-medium/config.json", "wavlm/config.json"):
        assert (out / name).is_file(), name
    assert '"arch": "musicfm"' in (out / "music_ssl.json").read_text()
    converted = CheckpointSet.from_dir(out)
    assert converted.music_ssl.suffix == ".safetensors" and converted.codec.suffix == ".safetensors"
    clip = tone(1.0)
    a = CodecTokenizer.load(tiny_set, window_mode="segment").encode([clip])[0]
    b = CodecTokenizer.load(converted, window_mode="segment", decode=True)
    enc = b.encode([clip])[0]
    np.testing.assert_array_equal(a.reason, enc.reason)
    np.testing.assert_array_equal(a.recon, enc.recon)
    assert b.decode(enc.recon, steps=1).shape == (enc.recon.shape[1] * 1920,)


def test_convert_refuses_any_other_global_and_names_it(tiny_set, tmp_path):
    import pathlib

    src = _copy_set(tiny_set, tmp_path / "released")
    _fairseq_style(src.music_ssl, {"save_dir": pathlib.PurePosixPath("/ckpt")})
    result = runner.invoke(app, ["codec", "convert", str(src.codec.parent), str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "pathlib.PurePosixPath" in result.output and "not loaded" in result.output
    assert not (tmp_path / "out" / "music_ssl.safetensors").exists()
