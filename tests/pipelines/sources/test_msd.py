"""MSD source on the fixture: HDF5 compound tables, preview paths, zero-byte preview, LP-MusicCaps join."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from uniaudio.core import storage
from uniaudio.pipelines.records import AudioRecord, Reject
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.pipelines.sources.msd import preview_path, read_track
from uniaudio.testing.corpora import msd

TRACK_A = "data/A/B/C/TRABCEI128F424C983.h5"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return msd.build(tmp_path_factory.mktemp("msd"))


def test_read_track_decodes_bytes_and_nan(corpus: Path) -> None:
    track = read_track((corpus / TRACK_A).read_bytes())
    assert track["track_id"] == "TRABCEI128F424C983"
    assert track["title"] == "I Didn't Mean To" and track["artist_name"] == "Casual"
    assert track["release"] is None and track["genre"] is None  # empty fixed-width strings
    assert track["song_hotttnesss"] is None and track["artist_familiarity"] is None  # NaN
    assert track["year"] is None  # 0 = unknown
    assert track["track_7digitalid"] == 1234567
    assert track["duration"] == pytest.approx(218.93179)
    assert track["artist_terms"] == ["hip hop", "underground rap", "g funk"]
    assert preview_path(1234567) == "1/2/1234567.clip.mp3"


def test_records_and_rejects(corpus: Path) -> None:
    source = get_source("msd")(str(corpus))
    assert source.partitions() == ["data/A", "data/B"]
    items = list(source.iter_all())
    records = [r for r in items if isinstance(r, AudioRecord)]
    rejects = [r for r in items if isinstance(r, Reject)]
    assert len(records) == 1
    rec = records[0]
    assert rec.key == "msd/TRABCEI128F424C983"
    assert rec.audio_uri == str(corpus / "previews/1/2/1234567.clip.mp3")
    assert rec.caption == "A laid-back hip hop track with a deep bassline and relaxed rapping."
    assert rec.labels == ["hip hop", "underground rap"]
    assert rec.split == "train"
    assert rec.duration_s is None  # the HDF5 duration is the full track's, not the preview's
    assert rec.meta["duration"] == pytest.approx(218.93179)
    assert rec.meta["caption_summary"] == "Laid-back underground hip hop."
    assert rec.meta["pseudo_attribute"] == ["deep bassline", "relaxed"]
    assert rec.meta["lp_path"] == "1/2/1234567.clip.mp3"
    assert "caption_attribute_prediction" not in rec.meta
    assert rec.meta["song_hotttnesss"] is None and rec.meta["genre"] is None
    assert [(r.key, r.reason.value) for r in rejects] == [("msd/TRBFCLN128F4262FC4", "zero_byte")]
    assert "TRBFCLN128F4262FC4.h5" in rejects[0].detail and "7/6/7654321.clip.mp3" in rejects[0].detail


def test_without_captions(corpus: Path, tmp_path: Path) -> None:
    # the 10k subset's layout, without LP-MusicCaps
    shutil.copytree(corpus / "data", tmp_path / "MillionSongSubset/data")
    shutil.copytree(corpus / "previews", tmp_path / "previews")
    source = get_source("msd")(str(tmp_path))
    assert source.partitions() == ["MillionSongSubset/data/A", "MillionSongSubset/data/B"]
    items = list(source.iter_all())
    assert [(r.key, type(r).__name__) for r in items] == [
        ("msd/TRABCEI128F424C983", "AudioRecord"),
        ("msd/TRBFCLN128F4262FC4", "Reject"),
    ]
    rec = items[0]
    assert rec.caption is None and rec.labels == [] and rec.split is None
    assert rec.meta["title"] == "I Didn't Mean To"
    # explicit captions_uri joins the LP-MusicCaps table from anywhere
    joined = get_source("msd")(str(tmp_path), captions_uri=str(corpus / "LP-MusicCaps-MSD"))
    assert next(iter(joined.iter_all())).caption.startswith("A laid-back hip hop track")


def test_missing_preview_and_split_filter(corpus: Path, tmp_path: Path) -> None:
    source = get_source("msd")(str(corpus), previews_uri=str(tmp_path))
    items = list(source.read_partition("data/A"))
    assert [(r.key, r.reason.value) for r in items] == [("msd/TRABCEI128F424C983", "missing_file")]
    assert "1/2/1234567.clip.mp3 not found" in items[0].detail
    # the split filter applies to the LP-MusicCaps split
    assert list(get_source("msd")(str(corpus), split="test").iter_all()) == []


def test_bad_inputs(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=str(tmp_path)):
        get_source("msd")(str(tmp_path)).partitions()
    with pytest.raises(SourceError, match="nowhere"):
        get_source("msd")(str(corpus), captions_uri=str(tmp_path / "nowhere"))
    broken = tmp_path / "data/A/B/C/TRABCXX128F4290000.h5"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not hdf5")
    items = list(get_source("msd")(str(tmp_path)).iter_all())
    assert [(r.key, r.reason.value) for r in items] == [("msd/TRABCXX128F4290000", "malformed_metadata")]


def test_s3_input(corpus: Path, s3_bucket: str) -> None:
    storage.upload_tree(corpus, f"{s3_bucket}/MSD")
    uri = f"{s3_bucket}/MSD"
    source = get_source("msd")(uri)
    assert source.partitions() == ["data/A", "data/B"]
    items = list(source.iter_all())
    assert [(r.key, type(r).__name__) for r in items] == [
        ("msd/TRABCEI128F424C983", "AudioRecord"),
        ("msd/TRBFCLN128F4262FC4", "Reject"),
    ]
    assert items[0].audio_uri == f"{uri}/previews/1/2/1234567.clip.mp3"
    assert items[0].caption == "A laid-back hip hop track with a deep bassline and relaxed rapping."
    assert items[1].reason.value == "zero_byte"
