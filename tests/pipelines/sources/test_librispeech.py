"""LibriSpeech source on the fixture corpus: optional parts, SPEAKERS.TXT trap, alignments, rejects."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import soundfile as sf

from uniaudio.pipelines.records import RejectReason
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.pipelines.sources.librispeech import LibriSpeechSource, parse_alignments, parse_speakers
from uniaudio.testing.corpora import librispeech as fixture

from .helpers import split_items


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return fixture.build(tmp_path_factory.mktemp("librispeech"))


def test_registered():
    assert get_source("librispeech") is LibriSpeechSource


def test_speakers_maxsplit(corpus):
    speakers = parse_speakers((corpus / "SPEAKERS.TXT").read_text())
    assert sorted(speakers) == ["1272", "14", "60"]  # ';' comment lines are not speakers
    assert speakers["60"] == {
        "speaker_sex": "M",
        "speaker_subset": "train-clean-100",
        "speaker_minutes": "20.18",
        "speaker_name": "|CBW|Simon",
    }


def test_alignment_parse():
    aligned = parse_alignments(fixture.ALIGNMENT)
    words = aligned["1272-128104-0000"]
    assert words[0] == ("", 0.0, 0.2) and words[1] == ("MISTER", 0.2, 0.38)
    assert words[-1] == ("", 1.45, 1.5)


@pytest.mark.parametrize("split", [None, "dev-clean"])
def test_records(corpus, split):
    source = LibriSpeechSource(str(corpus), split=split)
    assert source.partitions() == ["dev-clean/1272/128104"]
    records, rejects = split_items(source.iter_all())
    assert sorted(records) == ["librispeech/1272-128104-0000", "librispeech/1272-128104-0001"]
    for key, record in records.items():
        utt = key.split("/")[1]
        assert record.text == fixture.TRANSCRIPTS[utt]
        assert record.speaker == "1272"
        assert (record.split, record.language, record.sample_rate, record.member) == ("dev-clean", "en", 16000, None)
        assert record.audio_uri == str(corpus / "dev-clean/1272/128104" / f"{utt}.flac")
        assert record.meta["speaker_name"] == "John Rose"
        assert record.meta["chapter_id"] == "128104"
    first = records["librispeech/1272-128104-0000"]
    assert first.duration_s == pytest.approx(sf.info(first.audio_uri).duration, abs=0.02)  # from the alignment
    assert first.meta["alignment"][0] == ["MISTER", 0.2, 0.38]
    assert len(first.meta["alignment"]) == 9
    second = records["librispeech/1272-128104-0001"]
    assert second.duration_s is None and "alignment" not in second.meta
    assert [(r.key, r.reason) for r in rejects] == [("librispeech/1272-128104-0002", RejectReason.MISSING_FILE)]
    assert "1272-128104.trans.txt line 3" in rejects[0].detail and "1272-128104-0002.flac" in rejects[0].detail


def test_absent_part_and_layout(corpus, tmp_path):
    with pytest.raises(SourceError, match="train-clean-100"):
        LibriSpeechSource(str(corpus), split="train-clean-100").partitions()
    with pytest.raises(SourceError, match=str(tmp_path)):
        LibriSpeechSource(str(tmp_path)).partitions()


def test_malformed_line_and_empty_flac(corpus, tmp_path):
    tree = tmp_path / "LibriSpeech"
    shutil.copytree(corpus, tree)
    chapter = tree / "dev-clean/1272/128104"
    (chapter / "1272-128104-0001.flac").write_bytes(b"")
    with open(chapter / "1272-128104.trans.txt", "a", encoding="utf-8") as f:
        f.write("1272-128104-0003\n")
    records, rejects = split_items(LibriSpeechSource(str(tree)).iter_all())
    assert list(records) == ["librispeech/1272-128104-0000"]
    assert [(r.key, r.reason) for r in rejects] == [
        ("librispeech/1272-128104-0001", RejectReason.ZERO_BYTE),
        ("librispeech/1272-128104-0002", RejectReason.MISSING_FILE),
        ("librispeech/1272-128104-0003", RejectReason.MALFORMED_METADATA),
    ]
    assert "line 4" in rejects[2].detail


def test_s3_input(corpus, s3_bucket):
    from uniaudio.core import storage

    storage.upload_tree(corpus, f"{s3_bucket}/LibriSpeech")
    local_records, local_rejects = split_items(LibriSpeechSource(str(corpus)).iter_all())
    source = LibriSpeechSource(f"{s3_bucket}/LibriSpeech")
    assert source.partitions() == ["dev-clean/1272/128104"]
    records, rejects = split_items(source.iter_all())
    assert sorted(records) == sorted(local_records)
    assert [(r.key, r.reason) for r in rejects] == [(r.key, r.reason) for r in local_rejects]
    for key, record in records.items():
        assert (record.text, record.duration_s, record.meta) == (
            local_records[key].text, local_records[key].duration_s, local_records[key].meta)
    assert records["librispeech/1272-128104-0000"].audio_uri == (
        f"{s3_bucket}/LibriSpeech/dev-clean/1272/128104/1272-128104-0000.flac")
