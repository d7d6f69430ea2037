"""AudioCaps source on the fixture: one record per clip, 5 captions in val/test, dump names, missing clip."""

from __future__ import annotations

from pathlib import Path

import pytest

from uniaudio.pipelines.records import AudioRecord, Reject
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.testing.corpora import audiocaps


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return audiocaps.build(tmp_path_factory.mktemp("audiocaps"))


def test_records(corpus: Path) -> None:
    source = get_source("audiocaps")(str(corpus))
    assert source.partitions() == ["test", "train", "val"]
    items = list(source.iter_all())
    records = {r.key: r for r in items if isinstance(r, AudioRecord)}
    assert list(records) == ["audiocaps/zzL8jVMcZrY_0", "audiocaps/r1nicOVtvkQ_130000", "audiocaps/-1nicOVtvk__30000"]

    val = records["audiocaps/-1nicOVtvk__30000"]
    assert val.split == "val"
    assert val.audio_uri == str(corpus / "audio/val/-1nicOVtvk__30.wav")
    assert val.caption == "A man speaks while a motor runs"
    assert val.meta["captions"] == [
        "A man speaks while a motor runs",
        "A motor runs, then a man speaks",
        "An engine idles as a person talks",
        "A man talking over a running engine",
        "Engine humming and a man speaking",
    ]
    assert val.meta["audiocap_ids"] == ["97151", "97152", "97153", "97154", "97155"]
    assert val.meta["start_s"] == 30.0

    train = records["audiocaps/r1nicOVtvkQ_130000"]
    assert train.audio_uri == str(corpus / "audio/train/Yr1nicOVtvkQ.wav")
    assert train.caption == "A woman talks nearby as water pours"
    assert train.meta["captions"] == ["A woman talks nearby as water pours"]
    assert train.split == "train"

    test = records["audiocaps/zzL8jVMcZrY_0"]
    assert len(test.meta["captions"]) == 5 and test.caption == "Birds chirp in the distance"
    assert test.audio_uri == str(corpus / "audio/test/YzzL8jVMcZrY.wav")
    # the CSVs carry no duration: the audio stage measures it
    assert all(r.duration_s is None and r.offset_s == 0.0 for r in records.values())

    rejects = [r for r in items if isinstance(r, Reject)]
    assert [(r.key, r.reason.value) for r in rejects] == [("audiocaps/--0w1YA1Hm4_30000", "missing_file")]
    assert "train.csv line 3" in rejects[0].detail and "Y--0w1YA1Hm4" in rejects[0].detail


def test_split_option_and_malformed_row(tmp_path: Path) -> None:
    (tmp_path / "val.csv").write_text(
        "audiocap_id,youtube_id,start_time,caption\n1,abcdefghijk,thirty,A dog barks\n2,abcdefghijk,30,\n"
    )
    source = get_source("audiocaps")(str(tmp_path), split="val")
    assert source.partitions() == ["val"]
    rejects = list(source.iter_all())
    assert [(r.key, r.reason.value) for r in rejects] == [
        ("audiocaps/abcdefghijk/line2", "malformed_metadata"),
        ("audiocaps/abcdefghijk/line3", "malformed_metadata"),
    ]
    assert str(tmp_path / "val.csv") in rejects[0].detail


def test_bad_layout(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=str(tmp_path)):
        get_source("audiocaps")(str(tmp_path)).partitions()
