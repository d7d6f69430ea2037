"""The ``variation`` strategy and its backends: measured pitch/speed/volume, espeak-ng, sentences, builds."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.sentences.conftest import AUDIO_CODEC, run_builder
from uniaudio.cli.main import app
from uniaudio.core.token_space import TokenLayout
from uniaudio.model.sequence import build_sequence
from uniaudio.pipelines.token_store import iter_store
from uniaudio.sentences.audio_render import CodecHandle, codec_extra, read_origin_audio
from uniaudio.sentences.store import iter_sentences, read_index
from uniaudio.sentences.validate import validate_sentence_store
from uniaudio.sentences.variation import (
    BACKEND_OPTION,
    VARIANTS_OPTION,
    VariationRanges,
    draw_variations,
    variation_extra,
)
from uniaudio.sentences.variation_backends import (
    PEAK_LIMIT,
    SAMPLE_RATE,
    DspBackend,
    EspeakBackend,
    Variation,
    get_backend,
    time_stretch,
)
from uniaudio.tokenize.reasoning_codec.windowing import token_counts
from uniaudio.tokenize.text_tokenizer import TextTokenizer


def _tone(seconds: float = 1.0, f0: float = 200.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(2 * np.pi * 2 * f0 * t)).astype(np.float32)


def _f0(wave: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Median autocorrelation pitch of the voiced 40 ms frames (60–400 Hz)."""
    n = int(0.04 * sr)
    found = []
    for start in range(0, len(wave) - n, n // 2):
        frame = wave[start:start + n] - wave[start:start + n].mean()
        if np.sqrt(np.mean(frame ** 2)) < 0.01:
            continue
        ac = np.correlate(frame, frame, "full")[n - 1:]
        lo, hi = sr // 400, sr // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            found.append(sr / lag)
    assert found, "no voiced frames"
    return float(np.median(found))


def _rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))


# -- dsp ------------------------------------------------------------------------------------------------

def test_dsp_pitch_shift_moves_f0_and_keeps_duration():
    tone = _tone()
    out = DspBackend().render("a tone", Variation(pitch_semitones=5.0), audio=tone)
    assert _f0(out.wave) == pytest.approx(200 * 2 ** (5 / 12), rel=0.02)
    assert len(out.wave) == pytest.approx(len(tone), abs=2)
    assert out.attrs["pitch_semitones"] == 5.0 and out.attrs["speed"] == 1.0 and out.attrs["backend"] == "dsp"
    down = DspBackend().render("a tone", Variation(pitch_semitones=-3.0), audio=tone)
    assert _f0(down.wave) == pytest.approx(200 * 2 ** (-3 / 12), rel=0.02)


def test_dsp_speed_changes_duration_not_pitch():
    tone = _tone()
    fast = DspBackend().render("a tone", Variation(speed=1.25), audio=tone)
    slow = DspBackend().render("a tone", Variation(speed=0.8, pitch_semitones=2.0), audio=tone)
    assert len(fast.wave) == pytest.approx(len(tone) / 1.25, rel=0.005)
    assert len(slow.wave) == pytest.approx(len(tone) / 0.8, rel=0.005)
    assert fast.attrs["duration_s"] == pytest.approx(len(fast.wave) / SAMPLE_RATE)
    assert _f0(fast.wave) == pytest.approx(200, rel=0.02)
    assert _f0(slow.wave) == pytest.approx(200 * 2 ** (2 / 12), rel=0.02)
    assert len(time_stretch(tone, 1.0)) == len(tone)


def test_dsp_gain_scales_rms_and_never_clips():
    tone = _tone()
    plain = DspBackend().render("a tone", Variation(), audio=tone)
    quiet = DspBackend().render("a tone", Variation(gain_db=-6.0), audio=tone)
    assert _rms(quiet.wave) / _rms(plain.wave) == pytest.approx(10 ** (-6 / 20), rel=1e-3)
    assert quiet.attrs["gain_db"] == -6.0
    loud = DspBackend().render("a tone", Variation(gain_db=20.0), audio=tone)
    assert np.abs(loud.wave).max() == pytest.approx(PEAK_LIMIT, rel=1e-4)
    applied = loud.attrs["gain_db"]
    assert applied < 20.0  # the gain actually applied is recorded, not the one asked for
    assert _rms(loud.wave) / _rms(plain.wave) == pytest.approx(10 ** (applied / 20), rel=1e-3)


def test_dsp_needs_a_recording():
    with pytest.raises(ValueError, match="recording"):
        DspBackend().render("no audio", Variation())


def test_variations_are_drawn_from_the_ranges_deterministically():
    ranges = VariationRanges()
    a = draw_variations(np.random.default_rng(3), 6, ("en+f1", "en+m2"), ranges)
    assert a == draw_variations(np.random.default_rng(3), 6, ("en+f1", "en+m2"), ranges)
    assert a != draw_variations(np.random.default_rng(4), 6, ("en+f1", "en+m2"), ranges)
    for v in a:
        assert ranges.pitch_semitones[0] <= v.pitch_semitones <= ranges.pitch_semitones[1]
        assert ranges.speed[0] <= v.speed <= ranges.speed[1] and v.voice in ("en+f1", "en+m2")
    assert len({v.speed for v in a}) == 6
    assert all(v.voice is None for v in draw_variations(np.random.default_rng(3), 2))
    with pytest.raises(ValueError, match="unknown variation backend 'festival'"):
        get_backend("festival")


# -- espeak ---------------------------------------------------------------------------------------------

def test_espeak_renders_real_speech_with_the_asked_attributes():
    backend = EspeakBackend()
    backend.check()  # espeak-ng is installed by set-up; a missing program fails here with the package name
    voices = backend.voices("en")
    assert "en+f3" in voices and backend.voices("xx-nonexistent") == ()
    text = "The quick brown fox jumps over the lazy dog."
    base = backend.render(text, Variation(voice="en+m3"))
    assert base.wave.dtype == np.float32 and len(base.wave) > SAMPLE_RATE and _rms(base.wave) > 0.01
    assert base.attrs["espeak"] == {"pitch": 50, "speed_wpm": 175, "amplitude": 100} and base.attrs["voice"] == "en+m3"
    fast = backend.render(text, Variation(voice="en+m3", speed=1.5))
    assert fast.attrs["espeak"]["speed_wpm"] == 262 and fast.attrs["speed"] == pytest.approx(1.497, abs=1e-3)
    assert len(fast.wave) < 0.8 * len(base.wave)
    quiet = backend.render(text, Variation(voice="en+m3", gain_db=-6.0))
    assert quiet.attrs["espeak"]["amplitude"] == 50
    assert 20 * np.log10(_rms(quiet.wave) / _rms(base.wave)) == pytest.approx(-6.0, abs=1.0)
    high = backend.render(text, Variation(voice="en+m3", pitch_semitones=4.0))
    assert high.attrs["espeak"]["pitch"] == 74 and high.attrs["pitch_semitones"] == 4.0
    assert _f0(high.wave) > 1.15 * _f0(base.wave)
    assert backend.render(text, Variation(voice="en+m3")).wave.tobytes() == base.wave.tobytes()


def test_missing_espeak_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without espeak-ng
    with pytest.raises(FileNotFoundError, match=r"Debian package espeak-ng \(apt-get install espeak-ng\)"):
        EspeakBackend().check()
    with pytest.raises(FileNotFoundError, match="espeak-ng"):
        EspeakBackend().render("hello", Variation())


# -- the strategy: sentences from token stores of real audio, tokenized by the tiny codec ----------------

def _extra(backend: str, variants: int) -> dict:
    return {**codec_extra(AUDIO_CODEC), **variation_extra(backend, variants)}


@pytest.fixture(scope="module")
def dsp_built(audio_token_stores):
    """One in-process dsp build (2 renditions per text) over speech and sound, with every waveform the codec
    received: ``(sentences, skips, waves by label)``."""
    waves: dict[str, np.ndarray] = {}
    real = CodecHandle.encode

    def record(handle, batch, keys=None):
        for key, wave in zip(keys, batch, strict=True):
            waves[key] = np.array(wave, copy=True)
        return real(handle, batch, keys)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CodecHandle, "encode", record)
        sentences, skips = run_builder("variation", [audio_token_stores["speech"], audio_token_stores["sound"]],
                                       seed=0, extra=_extra("dsp", 2))
    return sentences, skips, waves


def test_dsp_sentences_keep_the_text_and_record_what_was_applied(dsp_built, audio_token_stores):
    sentences, skips, waves = dsp_built
    samples = {s.key: s for s in iter_store(audio_token_stores["speech"])}
    assert sorted(s.key for s in sentences) == sorted(f"variation/{k}" for k in samples)
    assert [k.reason for k in skips] == ["pool sound is not speech"] * 2
    layout = TokenLayout(text=TextTokenizer.load(None).specials)
    for s in sentences:
        sample = samples[s.key.removeprefix("variation/")]
        text, *renditions = s.segments
        assert s.task == s.strategy == "variation" and len(renditions) == 2
        assert (text.modality, text.role, text.text, text.source_key) == ("text", "transcription",
                                                                          sample.meta["text"], sample.key)
        assert s.num_tokens == len(build_sequence(s.to_model_segments(), layout)) <= 2048
        original = read_origin_audio(sample)
        f0 = _f0(original)
        assert renditions[0].attrs != renditions[1].attrs
        for i, seg in enumerate(renditions):
            a = seg.attrs
            assert seg.source_key is None and seg.provenance == {"rendered_by": "dsp", "of": sample.key} and seg.loss
            # the codec received exactly the dsp rendering of the recording with the recorded attributes
            received = waves[f"{sample.key} rendition {i}"]
            again = DspBackend().render(sample.meta["text"], Variation(a["pitch_semitones"], a["speed"], a["gain_db"]),
                                        audio=original)
            assert np.array_equal(received, again.wave) and again.attrs == a
            # and the recorded attributes are measurable in it: duration, pitch, level
            assert len(received) == pytest.approx(len(original) / a["speed"], rel=0.005)
            assert a["duration_s"] == pytest.approx(len(received) / SAMPLE_RATE, abs=1e-4)
            assert _f0(received) == pytest.approx(f0 * 2 ** (a["pitch_semitones"] / 12), rel=0.025)
            plain = DspBackend().render("", Variation(a["pitch_semitones"], a["speed"]), audio=original)
            assert 20 * np.log10(_rms(received) / _rms(plain.wave)) == pytest.approx(a["gain_db"], abs=1e-3)
            assert (seg.reason.shape[1], seg.recon.shape[1]) == token_counts(len(received))


def test_espeak_sentences_vary_the_voice_and_stay_within_max_tokens(audio_token_stores):
    stores = [audio_token_stores["speech"]]
    sentences, skips = run_builder("variation", stores, max_tokens=100, seed=1, extra=_extra("espeak", 3))
    samples = {s.key: s for s in iter_store(stores[0])}
    assert sentences and not skips
    assert {len(s.segments) for s in sentences} == {3, 4}  # renditions over --max-tokens are dropped
    for s in sentences:
        text, *renditions = s.segments
        assert text.text == samples[s.key.removeprefix("variation/")].meta["text"]
        assert s.num_tokens == s.header()["num_tokens"] <= 100
        for seg in renditions:
            a = seg.attrs
            assert a["backend"] == "espeak" and a["voice"].startswith("en+")
            assert seg.provenance == {"rendered_by": "espeak", "of": text.source_key}
            assert a["espeak"]["speed_wpm"] == round(175 * a["speed"])
            assert abs(seg.recon.shape[1] - token_counts(round(a["duration_s"] * SAMPLE_RATE))[1]) <= 1
    none, too_long = run_builder("variation", stores, max_tokens=30, extra=_extra("espeak", 3))
    assert not none and {k.reason for k in too_long} == {"longer than --max-tokens"}


def test_cli_build_on_ray_is_the_in_process_build(dsp_built, audio_token_stores, tmp_path):
    sentences, _, _ = dsp_built
    out = str(tmp_path / "variation")
    args = ["sentences", "build", "variation", out, "--tokens", audio_token_stores["speech"], "--tokens",
            audio_token_stores["sound"], "--codec", "tiny", "--window-mode", "segment", "--variants", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "pool sound is not speech" in result.output
    index = read_index(out)
    assert index["options"]["extra"][BACKEND_OPTION] == "dsp" and index["options"]["extra"][VARIANTS_OPTION] == 2
    assert index["strategies"]["variation"]["samples"] == len(sentences)
    assert [s.members() for s in iter_sentences(out)] == [s.members() for s in sentences]  # same seed, same store
    assert validate_sentence_store(out) == []


def test_cli_refuses_a_missing_espeak_and_bad_options(audio_token_stores, tmp_path, monkeypatch):
    base = ["sentences", "build", "variation", str(tmp_path / "v"), "--tokens", audio_token_stores["speech"],
            "--codec", "tiny", "--window-mode", "segment"]
    runner = CliRunner()
    too_many = runner.invoke(app, [*base, "--variants", "9"])
    assert too_many.exit_code == 2 and "--variants must be between 2 and 8" in too_many.output
    misplaced = runner.invoke(app, ["sentences", "build", "asr", str(tmp_path / "a"), "--tokens",
                                    audio_token_stores["speech"], "--variation-backend", "espeak"])
    assert misplaced.exit_code == 2 and "options of variation, not of asr" in misplaced.output
    monkeypatch.setenv("PATH", str(tmp_path))  # espeak-ng not on PATH
    missing = runner.invoke(app, [*base, "--variation-backend", "espeak"])
    assert missing.exit_code == 2 and "install the Debian package espeak-ng" in " ".join(missing.output.split())
    assert not (tmp_path / "v").exists()
