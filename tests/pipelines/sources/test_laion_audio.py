"""LAION-Audio-300M source on the fixture tar: pairing by key, caption-key probing, orphans, S3 input."""

from __future__ import annotations

import io
import logging
import tarfile
from pathlib import Path

import pytest
import soundfile as sf

from uniaudio.core import storage
from uniaudio.pipelines.records import AudioRecord, Reject
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.testing.corpora import laion_audio

TAR = "flash_20_voice_snippets_0.tar"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return laion_audio.build(tmp_path_factory.mktemp("laion"))


def _check(items: list, tar_uri: str) -> None:
    records = [r for r in items if isinstance(r, AudioRecord)]
    rejects = [r for r in items if isinstance(r, Reject)]
    assert [(r.key, r.member, r.caption, r.meta["caption_key"]) for r in records] == [
        ("laion-audio/flash_20_voice_snippets_0/seg0001", "seg0001.audio.mp3",
         "A man speaks calmly in a quiet room.", "caption"),
        ("laion-audio/flash_20_voice_snippets_0/seg0002", "seg0002.audio.mp3",
         "Two people talk over traffic noise.", "audio_caption"),
    ]
    assert all(r.audio_uri == tar_uri and r.offset_s == 0.0 and r.split is None for r in records)
    assert [r.duration_s for r in records] == [pytest.approx(2.0, abs=0.02), pytest.approx(1.5, abs=0.02)]
    assert records[0].meta["start_s"] == 15.0 and records[1].meta["start_s"] == 60.0
    assert records[0].meta["title"] == "Morning podcast, episode 12"
    assert [(r.key, r.reason.value) for r in rejects] == [
        ("laion-audio/flash_20_voice_snippets_0/seg0003", "orphan_member")
    ]
    assert TAR in rejects[0].detail and "seg0003.audio.mp3" in rejects[0].detail


def test_tar_records(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = get_source("laion-audio")(str(corpus))
    assert source.partitions() == [TAR]
    with caplog.at_level(logging.INFO, logger="uniaudio.pipelines.sources.laion_audio"):
        items = list(source.iter_all())
    _check(items, str(corpus / TAR))
    assert "caption found under key 'audio_caption'" in caplog.text
    # the member really holds the audio the metadata describes
    with tarfile.open(corpus / TAR) as tar:
        data = tar.extractfile("seg0002.audio.mp3").read()
    assert sf.info(io.BytesIO(data)).duration == pytest.approx(1.5, abs=0.02)


def test_single_tar_input(corpus: Path) -> None:
    source = get_source("laion-audio")(str(corpus / TAR))
    assert source.partitions() == [TAR]
    _check(list(source.iter_all()), str(corpus / TAR))


def test_tar_on_s3(corpus: Path, s3_bucket: str) -> None:
    fs = storage.filesystem(s3_bucket)
    fs.put_file(str(corpus / TAR), storage.strip_scheme(f"{s3_bucket}/laion/{TAR}"))
    source = get_source("laion-audio")(f"{s3_bucket}/laion")
    assert source.partitions() == [TAR]
    _check(list(source.iter_all()), f"{s3_bucket}/laion/{TAR}")


def test_malformed_and_empty_members(tmp_path: Path) -> None:
    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(tmp_path / "flash_20_random_snippets_7.tar", "w") as tar:
        add(tar, "a1.audio.mp3", b"\xff\xfb")
        add(tar, "a1.metadata.json", b"{not json")
        add(tar, "a2.audio.mp3", b"")
        add(tar, "a2.metadata.json", b'{"duration_ms": 1000, "caption": "x"}')
        add(tar, "a3.metadata.json", b'{"duration_ms": 1000}')
        add(tar, "./a4.metadata.json", b'{"duration_ms": 250, "description": "A bell."}')
        add(tar, "./a4.audio.mp3", b"\xff\xfb")
    items = list(get_source("laion-audio")(str(tmp_path)).iter_all())
    assert [(r.key, getattr(r, "reason", None)) for r in items] == [
        ("laion-audio/flash_20_random_snippets_7/a1", "malformed_metadata"),
        ("laion-audio/flash_20_random_snippets_7/a2", "zero_byte"),
        ("laion-audio/flash_20_random_snippets_7/a3", "orphan_member"),
        ("laion-audio/flash_20_random_snippets_7/a4", None),
    ]
    a4 = items[3]
    assert (a4.member, a4.caption, a4.duration_s) == ("a4.audio.mp3", "A bell.", 0.25)
    assert a4.meta["caption_key"] == "description"


def test_bad_layout(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=str(tmp_path)):
        get_source("laion-audio")(str(tmp_path)).partitions()


def test_unknown_option(corpus: Path) -> None:
    with pytest.raises(SourceError, match=r"unknown option\(s\) \[.caption_key.\]; known: none"):
        get_source("laion-audio")(str(corpus), caption_key="x")
