"""`uniaudio codec init-tiny | encode | decode` through the real CLI."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import torch
from typer.testing import CliRunner

from tests.tokenize.signals import tone
from uniaudio.cli.main import app
from uniaudio.pipelines.token_store import TokenSample, TokenStoreWriter, sample_metadata

runner = CliRunner()


def test_init_tiny_writes_a_loadable_set(tmp_path):
    result = runner.invoke(app, ["codec", "init-tiny", str(tmp_path / "set"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "set" / "ReasoningCodec.checkpoint").is_file()
    assert (tmp_path / "set" / "wavlm" / "config.json").is_file()
    assert "model" in torch.load(tmp_path / "set" / "ReasoningCodec.checkpoint", weights_only=True)


def test_encode_then_decode_a_store(tiny_set, tmp_path):
    wav = tmp_path / "clip.wav"
    sf.write(wav, np.stack([tone(1.0), tone(1.0, seed=1)], axis=1), 16_000)  # 1.5 s stereo 16 kHz: downmix, resample
    out = tmp_path / "tokens"
    result = runner.invoke(app, ["codec", "encode", str(wav), str(out), "--codec", "tiny", "--device", "cpu",
                                 "--window-mode", "segment", "--distill-features"])
    assert result.exit_code == 0, result.output
    reason = np.load(out / "clip.reason.npy", allow_pickle=False)
    recon = np.load(out / "clip.recon.npy", allow_pickle=False)
    assert reason.shape == (8, 8) and recon.shape == (8, 19) and recon.dtype == np.uint16
    assert np.load(out / "clip.distill_wavlm.npy").dtype == np.float16
    codec = json.loads((out / "codec.json").read_text())
    assert codec["config"] == "tiny/segment"

    store = tmp_path / "store"
    with TokenStoreWriter(str(store), codec) as writer:
        for key in ("src/a", "src/b"):
            meta = sample_metadata(key=key, source="src", duration_s=1.5, codec=codec, audio_uri=str(wav))
            writer.write(TokenSample(key=key, reason=reason, recon=recon, meta=meta))
    wavs = tmp_path / "wavs"
    result = runner.invoke(app, ["codec", "decode", str(store), str(wavs), "--keys", "src/b", "--steps", "2",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    audio, rate = sf.read(wavs / "src__b.wav")
    assert rate == 24_000 and audio.shape == (19 * 1920,)
    assert not (wavs / "src__a.wav").exists()
    result = runner.invoke(app, ["codec", "decode", str(store), str(wavs), "--keys", "src/zzz", "--device", "cpu"])
    assert result.exit_code != 0 and "src/zzz" in result.output
    result = runner.invoke(app, ["codec", "decode", str(store), str(wavs), "--keys", "src/a", "--device", "cpu",
                                 "--window-seconds", "20.1"])
    assert result.exit_code == 2 and "whole number" in result.output


def test_convert_names_the_missing_released_files(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "sqcodec.pth").write_bytes(b"")
    result = runner.invoke(app, ["codec", "convert", str(tmp_path / "src"), str(tmp_path / "out")])
    assert result.exit_code == 2 and "ReasoningCodec.checkpoint" in result.output and "music_ssl.pt" in result.output


def test_official_without_files_is_a_usage_error(tmp_path):
    wav = tmp_path / "clip.wav"
    sf.write(wav, tone(0.5), 24_000)
    result = runner.invoke(app, ["codec", "encode", str(wav), str(tmp_path / "out"), "--codec", "official"])
    assert result.exit_code == 2 and "--codec-dir" in result.output
    result = runner.invoke(app, ["codec", "encode", str(wav), str(tmp_path / "out"), "--codec", "official",
                                 "--codec-dir", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "incomplete" in result.output
