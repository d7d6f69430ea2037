"""audio_io: container members and plain files (local and S3) decode from memory, failures carry reasons."""

from __future__ import annotations

import io
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uniaudio.core import storage
from uniaudio.pipelines import audio_io
from uniaudio.pipelines.audio_io import AudioReadError
from uniaudio.pipelines.records import RejectReason
from uniaudio.testing.archives import write_tar
from uniaudio.testing.audio import encode_audio, synth


@pytest.fixture
def no_temp_files(monkeypatch):
    """Any attempt to create a temporary file fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError("audio_io created a temporary file")

    for name in ("mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile"):
        monkeypatch.setattr(tempfile, name, forbidden)


def _clip(suffix: str, seconds: float, sr: int, seed: int = 0) -> bytes:
    return encode_audio(synth(seconds, sr, seed=seed), sr, suffix)


def _tar(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    if mode == "w":
        return write_tar(path, members.items())
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


MEMBERS = {"a.json": b"{}", "a.mp3": _clip("mp3", 1.0, 24000), "b.flac": _clip("flac", 0.5, 16000, 1), "z.wav": b""}


@pytest.mark.parametrize("suffix,mode", [(".tar", "w"), (".tar.gz", "w:gz")])
def test_tar_members_decode_in_one_pass(tmp_path, no_temp_files, suffix, mode):
    tar = _tar(tmp_path / f"shard{suffix}", MEMBERS, mode)
    out = audio_io.read_members(str(tar), ["a.mp3", "b.flac", "gone.wav", "z.wav"])
    assert out["a.mp3"] == MEMBERS["a.mp3"] and out["b.flac"] == MEMBERS["b.flac"]
    assert out["gone.wav"].reason is RejectReason.MISSING_FILE and "gone.wav" in out["gone.wav"].detail
    assert out["z.wav"].reason is RejectReason.ZERO_BYTE
    decoded = audio_io.decode(out["a.mp3"])
    assert decoded.sample_rate == 24000 and decoded.samples.shape == (24000, 1)


def test_zip_member_and_parquet_cell(tmp_path, no_temp_files):
    data = _clip("flac", 0.5, 16000)
    with zipfile.ZipFile(tmp_path / "w.zip", "w") as zf:
        zf.writestr("mnt/data/waveforms/x.flac", data)
    assert audio_io.read_audio_bytes(str(tmp_path / "w.zip"), "mnt/data/waveforms/x.flac") == data
    with pytest.raises(AudioReadError) as err:
        audio_io.read_audio_bytes(str(tmp_path / "w.zip"), "nope.flac")
    assert err.value.reason is RejectReason.MISSING_FILE

    table = pa.table({"id": ["r0", "r1"], "audio": [{"bytes": b"", "path": "0.flac"}, {"bytes": data, "path": "x"}]})
    pq.write_table(table, tmp_path / "t.parquet")
    assert audio_io.read_audio_bytes(str(tmp_path / "t.parquet"), "1:audio") == data
    bad = audio_io.read_members(str(tmp_path / "t.parquet"), ["0:audio", "oops"])
    assert bad["0:audio"].reason is RejectReason.MALFORMED_METADATA  # empty cell
    assert bad["oops"].reason is RejectReason.MALFORMED_METADATA


def test_missing_container_and_corrupt_tar(tmp_path):
    out = audio_io.read_members(str(tmp_path / "absent.tar"), ["a.wav"])
    assert out["a.wav"].reason is RejectReason.MISSING_FILE
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar at all" * 10)
    assert audio_io.read_members(str(tmp_path / "junk.tar.gz"), ["a"])["a"].reason is RejectReason.UNDECODABLE


@pytest.mark.parametrize("suffix,sr", [("mp3", 24000), ("opus", 48000), ("flac", 16000), ("ogg", 44100)])
def test_segment_decode_seeks(suffix, sr):
    data = _clip(suffix, 4.0, sr)
    full = audio_io.decode(data)
    part = audio_io.decode(data, offset_s=1.5, duration_s=1.0)
    assert part.sample_rate == sr and part.samples.shape == (sr, 1)
    if suffix in ("flac", "wav"):  # lossless: the segment is exactly the same samples
        start = int(1.5 * sr)
        np.testing.assert_array_equal(part.samples, full.samples[start : start + sr])
    past_end = audio_io.decode(data, offset_s=10.0, duration_s=1.0)
    assert past_end.samples.shape[0] == 0


def test_decode_failures():
    with pytest.raises(AudioReadError) as err:
        audio_io.decode(b"")
    assert err.value.reason is RejectReason.ZERO_BYTE
    with pytest.raises(AudioReadError) as err:
        audio_io.decode(b"RIFF1234WAVEjunk" * 8, name="bad.wav")
    assert err.value.reason is RejectReason.UNDECODABLE and "bad.wav" in err.value.detail


def test_s3_plain_file_and_tar(s3_bucket):
    data = _clip("flac", 2.0, 16000)
    storage.atomic_write_bytes(f"{s3_bucket}/a/x.flac", data)
    with audio_io.open_audio(f"{s3_bucket}/a/x.flac") as f:
        part = audio_io.decode(f, offset_s=0.5, duration_s=0.25)
    assert part.samples.shape == (4000, 1)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("k.flac")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    storage.atomic_write_bytes(f"{s3_bucket}/a/s.tar", buf.getvalue())
    assert audio_io.read_audio_bytes(f"{s3_bucket}/a/s.tar", "k.flac") == data
    with pytest.raises(AudioReadError) as err:
        audio_io.read_audio_bytes(f"{s3_bucket}/a/missing.flac")
    assert err.value.reason is RejectReason.MISSING_FILE
