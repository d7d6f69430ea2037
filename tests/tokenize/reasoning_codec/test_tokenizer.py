"""Encoding with the tiny codec through the real loaders: shapes, ranges, determinism, windowing."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tokenize.signals import tone
from uniaudio.tokenize.reasoning_codec import TINY, CodecTokenizer


def test_token_shapes_rates_and_ranges(tiny_tokenizer):
    clips = [tone(2.0), tone(3.3, freq=330.0, seed=1), tone(0.25, seed=2)]
    out = tiny_tokenizer.encode(clips)
    for wave, enc in zip(clips, out, strict=True):
        seconds = wave.shape[0] / 24_000
        assert enc.reason.dtype == np.uint16 and enc.recon.dtype == np.uint16
        assert enc.reason.shape == (8, int(seconds * 5) + 1)
        assert enc.recon.shape == (8, int(seconds * 12.5) + 1)
        assert enc.reason.max() < TINY.reason_card and enc.recon.max() < TINY.recon_card
    assert all(len(np.unique(row)) > 1 for row in out[1].recon)  # tokens follow the audio
    assert any(len(np.unique(row)) > 1 for row in out[1].reason)


def test_tile_mode_matches_release_counts_and_differs_from_segment(tiny_set):
    tile = CodecTokenizer.load(tiny_set, window_mode="tile")
    wave = tone(1.5)
    (enc,) = tile.encode([wave])
    assert enc.reason.shape == (8, 8) and enc.recon.shape == (8, 19)
    assert tile.codec_meta()["config"] == "tiny"
    seg = CodecTokenizer.load(tiny_set, window_mode="segment")
    assert seg.codec_meta()["config"] == "tiny/segment"
    assert seg.codec_meta()["fingerprint"] != tile.codec_meta()["fingerprint"]


@pytest.mark.parametrize("batch_windows", [1, 3])
def test_deterministic_across_runs_and_batch_compositions(tiny_set, batch_windows):
    a, b, c = tone(2.0), tone(2.0, freq=500.0, seed=3), tone(4.1, freq=150.0, seed=4)
    tok = CodecTokenizer.load(tiny_set, window_mode="segment", batch_windows=batch_windows)
    alone = tok.encode([a], distill=True)[0]
    again = CodecTokenizer.load(tiny_set, window_mode="segment", batch_windows=batch_windows).encode(
        [a], distill=True)[0]  # a fresh load of the same files
    mixed = tok.encode([c, b, a, b], distill=True)[2]  # a shares its encoder call with two copies of b
    for other in (again, mixed):
        np.testing.assert_array_equal(alone.reason, other.reason)
        np.testing.assert_array_equal(alone.recon, other.recon)
        np.testing.assert_array_equal(alone.distill["wavlm"], other.distill["wavlm"])  # bit-identical


def test_long_input_windows_do_not_drift(tiny_tokenizer):
    long = tone(31.0, freq=180.0, seed=5)
    (whole,) = tiny_tokenizer.encode([long])
    assert whole.recon.shape == (8, 388) and whole.reason.shape == (8, 156)
    (tail,) = tiny_tokenizer.encode([long[30 * 24_000:]])
    # the second window starts exactly at 30 s: its tokens are those of the last second alone
    np.testing.assert_array_equal(whole.recon[:, 375:], tail.recon[:, : 388 - 375])
    np.testing.assert_array_equal(whole.reason[:, 150:], tail.reason[:, : 156 - 150])


def test_distillation_features_are_float16_at_12_5_hz(tiny_tokenizer):
    (enc,) = tiny_tokenizer.encode([tone(2.0)], distill=True)
    assert enc.distill["wavlm"].dtype == np.float16 and enc.distill["wavlm"].shape == (TINY.wavlm_dim, 26)
    assert enc.distill["music"].dtype == np.float16 and enc.distill["music"].shape == (TINY.music.dim, 26)
    assert np.isfinite(enc.distill["wavlm"]).all() and enc.distill["music"].std() > 0


def test_non_finite_audio_is_refused(tiny_tokenizer):
    bad = tone(1.0)
    bad[100] = np.nan
    with pytest.raises(ValueError, match="clip 0: waveform has NaN"):
        tiny_tokenizer.encode([bad])


def test_encoder_width_mismatch_is_reported(tiny_set, tmp_path):
    import shutil

    from transformers import WhisperModel

    from uniaudio.tokenize.reasoning_codec import CheckpointSet
    from uniaudio.tokenize.reasoning_codec.tiny_set import tiny_whisper_config

    copy = tmp_path / "set"
    shutil.copytree(tiny_set.codec.parent, copy)
    shutil.rmtree(copy / "whisper-medium")
    wider = tiny_whisper_config(TINY)
    wider.d_model = 48
    WhisperModel(wider).save_pretrained(copy / "whisper-medium")
    with pytest.raises(ValueError, match="whisper: encoder has 48, codec config 'tiny' expects 32"):
        CodecTokenizer.load(CheckpointSet.from_dir(copy))


def test_weights_that_do_not_fit_their_config_are_refused(tiny_set, tmp_path):
    import json
    import shutil

    from uniaudio.tokenize.reasoning_codec.frozen_encoders import load_wavlm

    copy = tmp_path / "wavlm"
    shutil.copytree(tiny_set.wavlm, copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["intermediate_size"] = 80
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="WavLM weights in .* do not fit its config.json"):
        load_wavlm(copy)


def test_bf16_autocast_path_runs(tiny_set):
    """The precision used on GPUs, exercised on CPU: valid, deterministic tokens and audio."""
    tok = CodecTokenizer.load(tiny_set, window_mode="segment", decode=True, precision="bf16")
    first, again = tok.encode([tone(2.0)], distill=True)[0], tok.encode([tone(2.0)])[0]
    assert first.recon.shape == (8, 26) and first.recon.max() < TINY.recon_card
    np.testing.assert_array_equal(first.recon, again.recon)
    assert first.distill["music"].dtype == np.float16
    assert tok.decode(first.recon, steps=1).shape == (26 * 1920,)
    with pytest.raises(ValueError, match="precision"):
        CodecTokenizer.load(tiny_set, precision="fp16")  # type: ignore[arg-type]


@pytest.mark.parametrize("samples", [1, 161, 9_600, 16_000, 479_601, 480_000])
def test_whisper_log_mel_of_a_short_window_is_that_of_its_30_s_padding(samples):
    """The STFT runs on the samples and the zeros right after them only; frames that see nothing but the
    padding must come out exactly as from the zero-padded 30 s input, and as the extractor computes them."""
    import torch
    from transformers import WhisperFeatureExtractor

    from uniaudio.tokenize.reasoning_codec.frozen_encoders import WHISPER_SAMPLES, WhisperLogMel

    mel = WhisperLogMel(80)
    wave = torch.from_numpy(np.random.default_rng(samples).standard_normal((2, samples)).astype(np.float32))
    short = mel(wave)
    padded = mel(torch.nn.functional.pad(wave, (0, WHISPER_SAMPLES - samples)))
    assert short.shape == (2, 80, 3000) and torch.equal(short, padded)
    extractor = WhisperFeatureExtractor(feature_size=80)
    expected = extractor(wave[0].numpy(), sampling_rate=16_000, return_tensors="np").input_features[0]
    np.testing.assert_allclose(short[0].numpy(), expected, atol=2e-4)
