"""The ``mixture`` strategy: triples of a, b and c = a + b tokenized by the codec, stems from a tiny demucs."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.sentences.conftest import AUDIO_CODEC, run_builder
from uniaudio.core.token_space import TokenLayout
from uniaudio.model.sequence import build_sequence
from uniaudio.pipelines.token_store import iter_store
from uniaudio.sentences import audio_render
from uniaudio.sentences.audio_render import CodecFingerprintMismatch, CodecHandle, codec_extra, read_origin_audio
from uniaudio.sentences.demucs_stems import load_demucs, save_demucs_safetensors, separate_vocals
from uniaudio.sentences.mixture import ORDERS, PEAK
from uniaudio.sentences.registry import BuildOptions, get_builder
from uniaudio.testing.demucs_model import save_tiny_htdemucs
from uniaudio.tokenize.text_tokenizer import TextTokenizer

MAX_TOKENS = 300


@pytest.fixture(scope="module")
def demucs_th(tmp_path_factory) -> str:
    """A tiny random HTDemucs saved in demucs' own package format (``demucs.states``: klass, args, kwargs, state)."""
    return str(save_tiny_htdemucs(tmp_path_factory.mktemp("demucs") / "htdemucs-tiny.th"))


class _Recorder:
    """Wraps ``CodecHandle.encode``: keeps every waveform the codec received, by label."""

    def __init__(self) -> None:
        self.waves: dict[str, np.ndarray] = {}
        self.real = CodecHandle.encode

    def __call__(self, handle, waves, keys=None):
        for key, wave in zip(keys, waves, strict=True):
            assert key not in self.waves
            self.waves[key] = np.array(wave, copy=True)
        return self.real(handle, waves, keys)


@pytest.fixture(scope="module")
def built(audio_token_stores, demucs_th):
    """One in-process mixture build over speech, sound and music with the tiny demucs: (sentences, skips, waves)."""
    recorder = _Recorder()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CodecHandle, "encode", lambda handle, waves, keys=None: recorder(handle, waves, keys))
        stores = [audio_token_stores[p] for p in ("speech", "sound", "music")]
        sentences, skips = run_builder("mixture", stores, max_tokens=MAX_TOKENS, seed=0,
                                       extra={**codec_extra(AUDIO_CODEC), "demucs_model": demucs_th})
    return sentences, skips, recorder.waves


def _samples(stores: dict) -> dict:
    return {s.key: s for p in ("speech", "sound", "music") for s in iter_store(stores[p])}


def test_triples_in_three_orders_and_c_is_exactly_a_plus_b(built, audio_token_stores):
    sentences, skips, waves = built
    samples = _samples(audio_token_stores)
    handle = CodecHandle(AUDIO_CODEC, _fingerprint(audio_token_stores))
    orders, mixes = set(), 0
    for s in sentences:
        assert s.strategy == "mixture" and len(s.segments) == 3 * len(s.meta["triples"])
        for t, triple in enumerate(s.meta["triples"]):
            segs = s.segments[3 * t: 3 * t + 3]
            orders.add(triple["order"])
            if triple["kind"] != "mix":
                continue
            mixes += 1
            by_name = dict(zip(triple["order"], segs, strict=True))
            c = by_name["c"]
            key_a, key_b = c.provenance["mix"]
            assert c.source_key is None and by_name["a"].source_key == key_a and by_name["b"].source_key == key_b
            n = round(c.provenance["duration_s"] * 24000)
            assert n % 9600 == 0 and c.reason.shape == (8, n // 4800) and c.recon.shape == (8, n // 1920)
            for name in "ab":  # a and b: their token-store tokens, cut to the same 0.4 s cells
                src = samples[by_name[name].source_key]
                assert (by_name[name].reason == src.reason[:, : n // 4800]).all()
                assert (by_name[name].recon == src.recon[:, : n // 1920]).all()
            # the codec received exactly gain_a·a + gain_b·b, a and b read again through their origins
            ga, gb = (10 ** (g / 20) for g in c.provenance["gain_db"])
            a, b = read_origin_audio(samples[key_a])[:n], read_origin_audio(samples[key_b])[:n]
            expected = (a.astype(np.float64) * ga + b.astype(np.float64) * gb).astype(np.float32)
            received = waves[f"{key_a}:mix:c"]
            assert np.array_equal(received, expected)
            assert np.abs(received).max() <= PEAK + 1e-6  # never clipped
            pa, pb = np.mean(a.astype(np.float64) ** 2) * ga**2, np.mean(b.astype(np.float64) ** 2) * gb**2
            assert 10 * np.log10(pa / pb) == pytest.approx(c.provenance["snr_db"], abs=1e-6)
            # and c's tokens are the codec's tokens of that waveform
            again = handle.encode([expected])[0]
            assert (again.reason[:, : c.reason.shape[1]] == c.reason).all()
            assert (again.recon[:, : c.recon.shape[1]] == c.recon).all()
    assert orders == set(ORDERS)
    assert mixes >= 4
    assert {"too short to mix (under 0.4 s in common)"} >= {k.reason for k in skips}


def _fingerprint(stores: dict) -> str:
    return json.loads(Path(stores["speech"], "index.json").read_text())["codec_fingerprint"]


def test_num_tokens_is_the_sequence_length_and_within_the_limit(built):
    sentences, _, _ = built
    layout = TokenLayout(text=TextTokenizer.load(None).specials)
    assert sentences
    for s in sentences:
        assert s.num_tokens == len(build_sequence(s.to_model_segments(), layout)) <= MAX_TOKENS
    assert any(len(s.meta["triples"]) > 1 for s in sentences)  # chains of triples


def test_music_stems_come_from_the_demucs_model(built, audio_token_stores, demucs_th):
    sentences, _, waves = built
    samples = _samples(audio_token_stores)
    demucs = load_demucs(demucs_th)
    stems = [(s, t) for s in sentences for t, triple in enumerate(s.meta["triples"]) if triple["kind"] == "stems"]
    assert len(stems) == 2  # one per music clip
    for s, t in stems:
        triple = s.meta["triples"][t]
        by_name = dict(zip(triple["order"], s.segments[3 * t: 3 * t + 3], strict=True))
        music = by_name["c"].source_key
        assert music.startswith("musiccaps/")
        n = round(by_name["a"].provenance["duration_s"] * 24000)
        vocals, accompaniment = separate_vocals(demucs, read_origin_audio(samples[music])[:n])
        for name, stem, wave in (("a", "vocals", vocals), ("b", "accompaniment", accompaniment)):
            seg = by_name[name]
            assert seg.source_key is None and seg.provenance["stem"] == stem
            assert seg.provenance["model"] == f"demucs:{demucs.fingerprint}" and seg.provenance["separated"] == music
            assert np.array_equal(waves[f"{music}:stems:{name}"], wave)
        assert not np.allclose(vocals, accompaniment)


def test_demucs_loader_refuses_foreign_globals_and_reads_safetensors(tmp_path, demucs_th):
    class Payload:
        def __reduce__(self):
            return (os.getpid, ())

    from demucs.htdemucs import HTDemucs

    evil = tmp_path / "evil.th"
    torch.save({"klass": HTDemucs, "args": (), "kwargs": {}, "state": {}, "x": Payload()}, evil)
    with pytest.raises(ValueError, match=r"needs (posix|os)\.getpid, which is not a demucs model class"):
        load_demucs(str(evil))
    with pytest.raises(FileNotFoundError):
        load_demucs(str(tmp_path / "missing.th"))

    model = load_demucs(demucs_th)
    st = load_demucs(str(save_demucs_safetensors(model.model, tmp_path / "tiny.safetensors")))
    wave = (0.3 * np.sin(np.arange(9600) / 7)).astype(np.float32)
    for got, want in zip(separate_vocals(st, wave), separate_vocals(model, wave), strict=True):
        assert np.allclose(got, want, atol=1e-5)


def test_a_codec_of_another_fingerprint_is_refused(audio_token_stores, token_stores):
    other = AUDIO_CODEC.__class__(**{**asdict(AUDIO_CODEC), "window_mode": "tile"})
    builder = get_builder("mixture")
    options = BuildOptions(kind="mixture", extra=codec_extra(other))
    with pytest.raises(CodecFingerprintMismatch, match="not the codec of the input token stores"):
        builder.check(options, {"fingerprint": _fingerprint(audio_token_stores)})
    with pytest.raises(CodecFingerprintMismatch):  # stores of random tokens: no codec made them
        run_builder("mixture", [token_stores["speech"], token_stores["sound"]], extra=codec_extra(AUDIO_CODEC))
    with pytest.raises(CodecFingerprintMismatch):  # the worker-side handle checks too
        CodecHandle(AUDIO_CODEC, "0123456789abcdef")


def test_same_seed_same_store_on_ray(audio_token_stores, tmp_path):
    from uniaudio.sentences.build import BuildRequest, build_sentences
    from uniaudio.sentences.store import iter_sentences, read_index

    stores = (audio_token_stores["speech"], audio_token_stores["sound"])
    extra = codec_extra(AUDIO_CODEC)
    out = str(tmp_path / "store")
    summary = build_sentences(BuildRequest(kind="mixture", output_uri=out, tokens=stores, max_tokens=MAX_TOKENS,
                                           seed=7, extra=extra))
    assert summary.sentences > 0 and read_index(out)["options"]["extra"] == extra
    # the Ray build (codec on the workers) holds exactly what an independent in-process run of that seed makes
    local, _ = run_builder("mixture", list(stores), max_tokens=MAX_TOKENS, seed=7, extra=extra)
    assert [s.members() for s in iter_sentences(out)] == [s.members() for s in local]
    other, _ = run_builder("mixture", list(stores), max_tokens=MAX_TOKENS, seed=8, extra=extra)
    assert [s.members() for s in other] != [s.members() for s in local]


def test_cli_refuses_a_wrong_codec_and_a_misplaced_demucs_option(audio_token_stores, tmp_path, demucs_th):
    from uniaudio.cli.main import app

    runner = CliRunner()
    base = ["sentences", "build", "mixture", str(tmp_path / "m"), "--tokens", audio_token_stores["speech"]]
    wrong = runner.invoke(app, [*base, "--window-mode", "tile"])
    assert wrong.exit_code == 2 and "not the codec of the input token stores" in wrong.output
    misplaced = runner.invoke(app, ["sentences", "build", "asr", str(tmp_path / "a"), "--tokens",
                                    audio_token_stores["speech"], "--demucs-model", demucs_th])
    assert misplaced.exit_code == 2 and "--demucs-model is an option of mixture" in misplaced.output
    assert not (tmp_path / "m").exists()


def test_unreadable_origin_is_skipped_with_its_reason(audio_token_stores, tmp_path):
    gone = dict(next(iter_store(audio_token_stores["sound"])).meta)
    gone["origin"] = {**gone["origin"], "audio_uri": str(tmp_path / "missing.flac")}
    with pytest.raises(audio_render.OriginAudioError) as err:
        read_origin_audio(gone)
    assert err.value.reason == "origin audio missing_file" and "missing.flac" in str(err.value)
