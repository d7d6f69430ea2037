"""The audio stage: mono 24 kHz of the right length, segments, windows, a reason code for every drop."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pyarrow as pa
import pytest
import soxr

from uniaudio.pipelines.audio_stage import (
    AudioFilterConfig,
    AudioStage,
    AudioStageConfig,
    apply_audio_stage,
    estimate_bandwidth_hz,
    split_outputs,
)
from uniaudio.pipelines.records import RECORD_SCHEMA, AudioRecord
from uniaudio.testing.audio import encode_audio, synth, write_audio


def _row(uri, key="t/x", **kw) -> dict:
    return AudioRecord(key=key, source="t", audio_uri=str(uri), **kw).to_row()


def _one(stage: AudioStage, row: dict) -> dict:
    (out,) = stage.process_batch([row])
    return out


@pytest.mark.parametrize(
    "name,seconds,sr,channels",
    [("a.wav", 2.0, 16000, 1), ("b.flac", 1.5, 44100, 2), ("c.mp3", 1.0, 24000, 1), ("d.opus", 1.0, 48000, 1),
     ("e.ogg", 0.7, 22050, 2)],
)
def test_output_is_mono_24k_of_the_right_length(tmp_path, name, seconds, sr, channels):
    write_audio(tmp_path / name, seconds, sr, channels)
    out = _one(AudioStage(), _row(tmp_path / name))
    assert out["reason"] is None and out["fanout"] == 1
    assert out["audio"].dtype == np.float32 and out["audio"].ndim == 1
    assert out["audio"].shape[0] == round(seconds * 24000)
    assert out["audio_sample_rate"] == 24000 and out["sample_rate"] == sr
    assert out["duration_s"] == pytest.approx(seconds, abs=1e-6)
    assert 0.2 < np.abs(out["audio"]).max() < 1.0  # the signal survived decode + resample


def test_downmix_is_the_channel_mean(tmp_path):
    stereo = np.stack([synth(1.0, 24000, seed=1), np.zeros(24000, np.float32)], axis=1)
    (tmp_path / "s.wav").write_bytes(encode_audio(stereo, 24000, "wav"))
    out = _one(AudioStage(AudioStageConfig(filters=AudioFilterConfig(min_bandwidth_hz=None))), _row(tmp_path / "s.wav"))
    np.testing.assert_allclose(out["audio"], stereo[:, 0] / 2, atol=1e-4)


def test_segment_cut(tmp_path):
    write_audio(tmp_path / "a.flac", 3.0, 16000, seed=3)
    stage = AudioStage()
    full = _one(stage, _row(tmp_path / "a.flac"))["audio"]
    cut = _one(stage, _row(tmp_path / "a.flac", offset_s=1.0, duration_s=1.25))
    assert cut["offset_s"] == 1.0 and cut["duration_s"] == 1.25
    assert cut["audio"].shape == (30000,)
    # away from the resampler's edges the cut equals the same span of the whole file
    np.testing.assert_allclose(cut["audio"][1000:-1000], full[24000 + 1000 : 24000 + 30000 - 1000], atol=2e-3)


def test_windows(tmp_path):
    write_audio(tmp_path / "long.wav", 2.0, 16000)
    cfg = AudioStageConfig(window_s=0.75, filters=AudioFilterConfig(min_duration_s=0.1))
    outs = AudioStage(cfg).process_batch([_row(tmp_path / "long.wav", key="t/long", offset_s=0.0)])
    assert [o["key"] for o in outs] == ["t/long/w000", "t/long/w001", "t/long/w002"]
    assert [o["offset_s"] for o in outs] == [0.0, 0.75, 1.5]
    assert [o["audio"].shape[0] for o in outs] == [18000, 18000, 12000]
    assert all(o["fanout"] == 3 and "." not in o["key"] for o in outs)

    cfg = AudioStageConfig(window_s=0.75, min_window_s=0.6, filters=AudioFilterConfig(min_duration_s=0.1))
    outs = AudioStage(cfg).process_batch([_row(tmp_path / "long.wav", key="t/long", offset_s=0.5, duration_s=1.5)])
    assert [(o["key"], o["offset_s"], o["reason"]) for o in outs] == [
        ("t/long/w000", 0.5, None),
        ("t/long/w001", 1.25, None),
    ]
    outs = AudioStage(cfg).process_batch([_row(tmp_path / "long.wav", key="t/long")])
    assert outs[-1]["reason"] == "too_short" and "min_window_s" in outs[-1]["detail"]


def _write(path, data, sr, suffix="wav"):
    path.write_bytes(encode_audio(data, sr, suffix))
    return path


@pytest.mark.parametrize("case", ["too_short", "too_long", "silent", "clipped", "low_bandwidth"])
def test_each_filter_has_its_reason(tmp_path, case):
    filters = AudioFilterConfig(min_duration_s=0.5, max_duration_s=2.0)
    if case == "too_short":
        path = _write(tmp_path / "x.wav", synth(0.3, 16000), 16000)
    elif case == "too_long":
        path = _write(tmp_path / "x.wav", synth(2.5, 16000), 16000)
    elif case == "silent":
        path = _write(tmp_path / "x.wav", 1e-5 * synth(1.0, 16000), 16000)
    elif case == "clipped":
        path = _write(tmp_path / "x.wav", np.clip(4 * synth(1.0, 16000), -1, 1), 16000)
    else:  # 4 kHz audio upsampled to 44.1 kHz: nothing above 2 kHz
        path = _write(tmp_path / "x.flac", soxr.resample(synth(1.0, 4000), 4000, 44100), 44100, "flac")
    out = _one(AudioStage(AudioStageConfig(filters=filters)), _row(path))
    assert out["reason"] == case and str(path) in out["detail"]
    assert out.get("audio") is None
    # the same audio passes once the rule is off
    off = {"too_short": "min_duration_s", "too_long": "max_duration_s", "silent": "silence_dbfs",
           "clipped": "max_clipped_fraction", "low_bandwidth": "min_bandwidth_hz"}[case]
    relaxed = AudioFilterConfig(**{"min_duration_s": 0.1, "max_duration_s": 3.0, off: None})
    assert _one(AudioStage(AudioStageConfig(filters=relaxed)), _row(path))["reason"] is None


def test_bandwidth_estimate_tracks_the_source():
    full = synth(2.0, 16000)
    assert estimate_bandwidth_hz(full, 16000) > 7000  # broadband noise floor reaches Nyquist
    narrow = soxr.resample(synth(2.0, 8000), 8000, 16000)
    assert 3500 < estimate_bandwidth_hz(narrow, 16000) <= 4100


def test_read_failures_become_rejects(tmp_path):
    (tmp_path / "z.wav").write_bytes(b"")
    (tmp_path / "bad.flac").write_bytes(b"fLaC" + b"\x00garbage" * 20)
    rows = [_row(tmp_path / "z.wav", key="t/z"), _row(tmp_path / "bad.flac", key="t/bad"),
            _row(tmp_path / "gone.wav", key="t/gone")]
    outs = AudioStage().process_batch(rows)
    assert [(o["key"], o["reason"]) for o in outs] == [
        ("t/z", "zero_byte"), ("t/bad", "undecodable"), ("t/gone", "missing_file")
    ]
    kept, rejects = split_outputs(outs)
    assert kept == [] and all(r["detail"] and str(tmp_path) in r["detail"] for r in rejects)


def test_upstream_rejects_pass_through(tmp_path):
    row = {**_row(tmp_path / "whatever.wav"), "reason": "malformed_metadata", "detail": "line 3"}
    (out,) = AudioStage().process_batch([row])
    assert (out["reason"], out["detail"], out["fanout"]) == ("malformed_metadata", "line 3", 1)


def _write_tar(path, members: int, seconds: float = 1.0) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(members):
            data = encode_audio(synth(seconds, 16000, seed=i), 16000, "flac")
            info = tarfile.TarInfo(f"s{i}.flac")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


def test_a_large_metadata_batch_reads_container_members_a_group_at_a_time(tmp_path, monkeypatch):
    """Ingest's large batches (keep_audio off) hold one group's encoded members at a time, same outputs."""
    from uniaudio.pipelines import audio_io

    _write_tar(tmp_path / "shard.tar", 6, seconds=0.6)
    rows = [_row(tmp_path / "shard.tar", key=f"t/s{i}", member=f"s{i}.flac") for i in range(7)]  # s6 absent
    real, calls = audio_io.read_members, []

    def read_members(uri, names):
        calls.append(list(names))
        return real(uri, names)

    monkeypatch.setattr(audio_io, "read_members", read_members)
    config = AudioStageConfig(keep_audio=False)
    grouped = AudioStage(config, batch_size=7, read_group=3).process_batch(rows)
    assert calls == [["s0.flac", "s1.flac", "s2.flac"], ["s3.flac", "s4.flac", "s5.flac"], ["s6.flac"]]
    assert grouped == AudioStage(config, batch_size=7, read_group=16).process_batch(rows)
    assert [out["reason"] for out in grouped] == [None] * 6 + ["missing_file"]
    assert not any("audio" in out for out in grouped)
    with pytest.raises(ValueError, match="read_group"):
        AudioStage(config, read_group=0)


def test_ray_map_batches_over_tar_members(tmp_path, ray_session):
    import ray.data

    _write_tar(tmp_path / "shard.tar", 6)
    rows = [_row(tmp_path / "shard.tar", key=f"t/s{i}", member=f"s{i}.flac") for i in range(7)]  # s6 absent
    table = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
    stage = AudioStage(batch_size=4)
    out = apply_audio_stage(ray.data.from_arrow(table), stage).to_pandas().sort_values("key")
    assert list(out["key"]) == [f"t/s{i}" for i in range(7)]
    assert list(out["reason"].fillna("ok")) == ["ok"] * 6 + ["missing_file"]
    assert [len(a) for a in out["audio"][:6]] == [24000] * 6
    assert set(stage.outputs()) == set(out.columns)
