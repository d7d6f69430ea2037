"""WenetSpeech source on the fixture corpus: streamed JSON, one record per segment, subset filters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from uniaudio.pipelines.records import RejectReason
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.pipelines.sources import wenetspeech as module
from uniaudio.pipelines.sources.wenetspeech import WenetSpeechSource
from uniaudio.testing.corpora import wenetspeech as fixture

from .helpers import split_items

YT = "wenetspeech/Y0000000000_--5llN02F84"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return fixture.build(tmp_path_factory.mktemp("wenetspeech"))


def test_registered():
    assert get_source("wenetspeech") is WenetSpeechSource


def test_all_segments(corpus):
    source = WenetSpeechSource(str(corpus))
    assert source.partitions() == ["WenetSpeech.json"]
    records, rejects = split_items(source.iter_all())
    assert sorted(records) == ["wenetspeech/P0000000001_S00000", f"{YT}_S00000", f"{YT}_S00001"]
    expected = {
        f"{YT}_S00000": ("怎么样\u3000这些日子住得还习惯吧", 0.0, 1.2, "L"),  # full-width space kept
        f"{YT}_S00001": ("挺好的", 1.5, 1.4, "L"),
        "wenetspeech/P0000000001_S00000": ("今天的新闻就到这里", 0.4, 2.2, "DEV"),  # outer spaces stripped
    }
    for key, (text, offset, duration, split) in expected.items():
        r = records[key]
        assert (r.text, r.split, r.language, r.sample_rate, r.member) == (text, split, "zh", 16000, None)
        assert r.offset_s == pytest.approx(offset, abs=1e-6)
        assert r.duration_s == pytest.approx(duration, abs=0.02)
        assert r.offset_s + r.duration_s <= sf.info(r.audio_uri).duration
    first = records[f"{YT}_S00000"]
    assert first.audio_uri == str(corpus / "audio/train/youtube/B00000/Y0000000000_--5llN02F84.opus")
    assert first.meta == {
        "aid": "Y0000000000_--5llN02F84",
        "source": "youtube",
        "tags": ["drama"],
        "url": "https://www.youtube.com/watch?v=--5llN02F84",
        "md5": "48af998ec7dab6964386c3522386fa4b",
        "audio_duration": 3.0,
        "confidence": 0.98,
        "subsets": ["L", "M", "S"],
    }
    assert [(r.key, r.reason) for r in rejects] == [("wenetspeech/Y0000000002_a-b_c_S00000", RejectReason.MISSING_FILE)]
    assert "Y0000000002_a-b_c.opus" in rejects[0].detail


@pytest.mark.parametrize(("split", "keys"), [
    ("L", [f"{YT}_S00000", f"{YT}_S00001"]),
    ("m", [f"{YT}_S00000"]),
    ("S", [f"{YT}_S00000"]),
    ("DEV", ["wenetspeech/P0000000001_S00000"]),
    ("TEST_MEETING", []),
])
def test_subset_filter(corpus, split, keys):
    records, rejects = split_items(WenetSpeechSource(str(corpus / "WenetSpeech.json"), split=split).iter_all())
    assert sorted(records) == keys
    assert rejects == []
    assert {r.split for r in records.values()} <= {split.upper()}


def test_shards(corpus):
    whole, whole_rejects = split_items(WenetSpeechSource(str(corpus)).iter_all())
    source = WenetSpeechSource(str(corpus), shards="2")  # CLI options arrive as strings
    assert source.partitions() == ["WenetSpeech.json#0000-of-0002", "WenetSpeech.json#0001-of-0002"]
    first, first_rejects = split_items(source.read_partition("WenetSpeech.json#0000-of-0002"))
    second, second_rejects = split_items(source.read_partition("WenetSpeech.json#0001-of-0002"))
    # audios 0 and 2 go to shard 0, audio 1 to shard 1
    assert sorted(first) == [f"{YT}_S00000", f"{YT}_S00001"]
    assert [r.key for r in first_rejects] == ["wenetspeech/Y0000000002_a-b_c_S00000"]
    assert list(second) == ["wenetspeech/P0000000001_S00000"] and second_rejects == []
    assert {**first, **second} == whole
    assert [r.detail for r in first_rejects] == [r.detail for r in whole_rejects]


def test_missing_recording_only_rejected_for_wanted_segments(corpus):
    records, rejects = split_items(WenetSpeechSource(str(corpus), split="TEST_NET").iter_all())
    assert records == {}
    assert [r.key for r in rejects] == ["wenetspeech/Y0000000002_a-b_c_S00000"]


def test_streams_without_json_load(corpus, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("WenetSpeech.json must be streamed, not json.load-ed")

    monkeypatch.setattr(json, "load", forbidden)
    monkeypatch.setattr(json, "loads", forbidden)
    records, _ = split_items(WenetSpeechSource(str(corpus)).iter_all())
    assert len(records) == 3
    assert module.ijson is not None


def test_bad_input(corpus, tmp_path):
    with pytest.raises(SourceError, match="XL"):
        WenetSpeechSource(str(corpus), split="XL")
    with pytest.raises(SourceError, match=str(tmp_path)):
        WenetSpeechSource(str(tmp_path)).partitions()
    bad = dict(fixture.METADATA)
    bad["audios"] = [
        {**fixture.METADATA["audios"][0], "segments": [{"sid": "A_S0", "begin_time": 2.0, "end_time": 1.0, "text": "x"},
                                                        {"begin_time": 0.0, "end_time": 1.0, "text": "y"}]},
        {**fixture.METADATA["audios"][1], "path": None},
        fixture.METADATA["audios"][2],
    ]
    text = json.dumps(bad, ensure_ascii=False)
    truncated = text[: text.rindex('"aid"') + 12]  # the file ends inside the third audio
    (tmp_path / "WenetSpeech.json").write_text(truncated, encoding="utf-8")
    (tmp_path / "audio/train/youtube/B00000").mkdir(parents=True)
    (tmp_path / "audio/train/youtube/B00000/Y0000000000_--5llN02F84.opus").write_bytes(
        (corpus / "audio/train/youtube/B00000/Y0000000000_--5llN02F84.opus").read_bytes())
    records, rejects = split_items(WenetSpeechSource(str(tmp_path)).iter_all())
    assert records == {}
    assert [(r.key, r.reason) for r in rejects] == [
        ("wenetspeech/A_S0", RejectReason.MALFORMED_METADATA),
        ("wenetspeech/Y0000000000_--5llN02F84_segment1", RejectReason.MALFORMED_METADATA),
        ("wenetspeech/P0000000001_S00000", RejectReason.MALFORMED_METADATA),
        ("wenetspeech/WenetSpeech", RejectReason.MALFORMED_METADATA),  # truncated file: the stream stops
    ]
    assert "JSON error" in rejects[-1].detail


def test_s3_input(corpus, s3_bucket):
    from uniaudio.core import storage

    storage.upload_tree(corpus, f"{s3_bucket}/ws")
    records, rejects = split_items(WenetSpeechSource(f"{s3_bucket}/ws", split="L").iter_all())
    assert sorted(records) == [f"{YT}_S00000", f"{YT}_S00001"]
    opus = "audio/train/youtube/B00000/Y0000000000_--5llN02F84.opus"
    assert records[f"{YT}_S00000"].audio_uri == f"{s3_bucket}/ws/{opus}"
    assert rejects == []
    _, rejects = split_items(WenetSpeechSource(f"{s3_bucket}/ws/WenetSpeech.json", split="TEST_NET").iter_all())
    assert [(r.key, r.reason) for r in rejects] == [("wenetspeech/Y0000000002_a-b_c_S00000", RejectReason.MISSING_FILE)]
