"""MusicCaps source on the fixture: quoted newlines, literal aspect lists, eval split, missing clip."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from uniaudio.pipelines.records import AudioRecord, Reject
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.testing.corpora import musiccaps


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return musiccaps.build(tmp_path_factory.mktemp("musiccaps"))


def test_records_and_rejects(corpus: Path) -> None:
    source = get_source("musiccaps")(str(corpus))
    assert source.partitions() == ["musiccaps-public.csv"]
    items = list(source.iter_all())
    records = {r.key: r for r in items if isinstance(r, AudioRecord)}
    assert list(records) == ["musiccaps/-0Gj8-vB1q4_30000", "musiccaps/-0SdAVK79lg_30000"]

    first = records["musiccaps/-0Gj8-vB1q4_30000"]
    assert first.caption == (
        "The low quality recording features a ballad song, with sustained strings,\n"
        "soft female vocal and mellow piano."
    )
    assert first.labels == ["low quality", "sustained strings melody", "soft female vocal"]
    assert first.split == "train"
    assert first.audio_uri == str(corpus / "audio/-0Gj8-vB1q4.wav")
    assert first.meta["audioset_mids"] == ["/m/0140xf", "/m/02cjck", "/m/04rlf"]
    assert first.meta["author_id"] == "4"
    assert first.meta["is_balanced_subset"] is False and first.meta["is_audioset_eval"] is False

    second = records["musiccaps/-0SdAVK79lg_30000"]
    assert second.labels == ["80's pop", "synth"]
    assert second.caption == "An 80's pop song with a bright synth lead."
    assert second.meta["is_balanced_subset"] is True

    for record, expected in ((first, 3.0), (second, 2.0)):
        assert record.duration_s == pytest.approx(expected, abs=0.02)
        assert sf.info(record.audio_uri).duration == pytest.approx(expected, abs=0.02)

    rejects = [r for r in items if isinstance(r, Reject)]
    assert [(r.key, r.reason.value) for r in rejects] == [("musiccaps/-0vPFx-wRRI_30000", "missing_file")]
    assert "musiccaps-public.csv row 3" in rejects[0].detail


def test_split_from_is_audioset_eval(corpus: Path) -> None:
    items = list(get_source("musiccaps")(str(corpus), split="test").iter_all())
    assert [(r.key, type(r).__name__) for r in items] == [("musiccaps/-0vPFx-wRRI_30000", "Reject")]


def test_malformed_rows(tmp_path: Path) -> None:
    (tmp_path / "musiccaps-public.csv").write_text(
        "ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,is_balanced_subset,"
        "is_audioset_eval\n"
        "aaaaaaaaaaa,0,10,/m/04rlf,\"['rock'\",A rock song.,1,False,False\n"
        "bbbbbbbbbbb,0,10,/m/04rlf,\"['rock']\",A rock song.,1,yes,False\n"
        "ccccccccccc,0,10,/m/04rlf,\"__import__('os')\",A rock song.,1,False,False\n"
    )
    items = list(get_source("musiccaps")(str(tmp_path)).iter_all())
    assert [(r.key, r.reason.value) for r in items] == [
        ("musiccaps/aaaaaaaaaaa", "malformed_metadata"),
        ("musiccaps/bbbbbbbbbbb", "malformed_metadata"),
        ("musiccaps/ccccccccccc", "malformed_metadata"),
    ]
    assert "row 2: is_balanced_subset is 'yes'" in items[1].detail


def test_bad_layout(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="musiccaps-public.csv"):
        get_source("musiccaps")(str(tmp_path)).partitions()
