"""Issue 14 item 7: long files. A single sample has a default maximum duration (``too_long`` before
decoding, with a hint to use ``--window``); ``--window`` reads the file one window at a time."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from uniaudio.cli.main import app
from uniaudio.pipelines import audio_io
from uniaudio.pipelines.audio_stage import DEFAULT_MAX_DURATION_S, AudioFilterConfig, AudioStage, AudioStageConfig

WINDOW_S = 10.0


def _long_wav(path: Path, seconds: float, sample_rate: int, channels: int) -> Path:
    """A noise recording written block by block (the test itself never holds it whole)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=channels, subtype="PCM_16") as f:
        left = int(seconds * sample_rate)
        while left:
            n = min(left, sample_rate * 5)
            f.write((0.3 * rng.standard_normal((n, channels))).clip(-0.9, 0.9).astype(np.float32))
            left -= n
    return path


@pytest.fixture(scope="module")
def three_minutes_48k_stereo(tmp_path_factory) -> Path:
    return _long_wav(tmp_path_factory.mktemp("long") / "talk.wav", 180.0, 48_000, 2)


def _row(path: Path, key: str = "long/talk") -> dict:
    return {"key": key, "source": "long", "audio_uri": str(path), "member": None, "offset_s": None,
            "duration_s": None}


def _peak_bytes(fn):
    """(result, peak bytes Python/numpy allocated while ``fn`` ran)."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_window_mode_reads_the_file_one_window_at_a_time(three_minutes_48k_stereo):
    filters = AudioFilterConfig(min_bandwidth_hz=None, max_duration_s=60.0)
    stage = AudioStage(AudioStageConfig(window_s=WINDOW_S, keep_audio=False, filters=filters))
    rows, peak = _peak_bytes(lambda: stage.process(_row(three_minutes_48k_stereo)))

    assert [r["key"] for r in rows] == [f"long/talk/w{i:03d}" for i in range(18)]
    assert all(r["reason"] is None for r in rows), rows[0]["detail"]
    assert [r["offset_s"] for r in rows] == [WINDOW_S * i for i in range(18)]
    whole = 180 * 48_000 * 2 * 4  # the file decoded whole as float32: ~69 MB
    window = int(WINDOW_S * 48_000 * 2 * 4)  # one window: ~3.8 MB
    assert peak < 3 * window < whole / 5, f"peak {peak / 2**20:.1f} MiB"


def test_decode_blocks_reads_at_most_a_block_per_call(three_minutes_48k_stereo, monkeypatch):
    asked: list[int] = []
    real_read = sf.SoundFile.read

    def counting_read(self, frames=-1, *args, **kwargs):
        asked.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", counting_read)
    blocks = audio_io.decode_blocks(str(three_minutes_48k_stereo), 7.0, offset_s=2.0, duration_s=30.0)
    sizes = [b.samples.shape[0] for b in blocks]
    assert sizes == [7 * 48_000] * 4 + [2 * 48_000]  # 30 s from 2 s on: 4 whole blocks and the tail
    assert asked and max(asked) == 7 * 48_000 and -1 not in asked  # never "read everything"


def test_without_window_a_long_file_is_too_long_and_not_decoded(three_minutes_48k_stereo):
    filters = AudioFilterConfig(min_bandwidth_hz=None, max_duration_s=60.0)
    stage = AudioStage(AudioStageConfig(keep_audio=False, filters=filters))
    rows, peak = _peak_bytes(lambda: stage.process(_row(three_minutes_48k_stereo)))
    assert [r["reason"] for r in rows] == ["too_long"]
    assert "180.000 s > max_duration_s 60.0" in rows[0]["detail"] and "--window" in rows[0]["detail"]
    assert peak < 2**20  # the header was read, the audio was not


def test_the_default_maximum_rejects_an_eleven_minute_file(tmp_path):
    assert AudioFilterConfig().max_duration_s == DEFAULT_MAX_DURATION_S == 600.0
    path = _long_wav(tmp_path / "lecture.wav", 660.0, 8_000, 1)  # 11 min (8 kHz mono keeps the test small)
    rows = AudioStage(AudioStageConfig(keep_audio=False)).process(_row(path, "long/lecture"))
    assert [r["reason"] for r in rows] == ["too_long"] and "--window" in rows[0]["detail"]

    windowed = AudioStage(AudioStageConfig(keep_audio=False, window_s=300.0)).process(_row(path, "long/lecture"))
    assert [(r["key"], r["duration_s"], r["reason"]) for r in windowed] == [
        ("long/lecture/w000", 300.0, None), ("long/lecture/w001", 300.0, None), ("long/lecture/w002", 60.0, None)]


def test_help_states_the_default_and_the_window_hint():
    result = CliRunner().invoke(app, ["ingest", "--help"], terminal_width=200)
    text = " ".join(result.output.replace("│", " ").split())
    assert "Longest single sample (s); 0: no limit" in text and "--window" in text and "600" in text
