"""MLS source on the fixture corpus: OpenSLR FLAC and Opus trees, limited supervision, HF parquet, S3."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from uniaudio.core import storage
from uniaudio.pipelines.records import RejectReason
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.pipelines.sources.hf_tables import read_audio_cell
from uniaudio.pipelines.sources.mls import MLSSource
from uniaudio.testing.corpora import mls as fixture

from .helpers import split_items

TITLE = 'Die Geschichte "vom", kleinen Muck'


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """``<root>/mls``, holding all three variants (``build`` returns the FLAC tree inside it)."""
    flac_tree = fixture.build(tmp_path_factory.mktemp("mls"))
    assert flac_tree.name == "mls_german"
    return flac_tree.parent


def test_registered():
    assert get_source("mls") is MLSSource


@pytest.mark.parametrize(
    ("tree", "suffix", "rate"), [("mls_german", "flac", 16000), ("mls_german_opus", "opus", 48000)]
)
def test_openslr_tree(corpus, tree, suffix, rate):
    source = MLSSource(str(corpus / tree))
    assert source.partitions() == ["dev", "train"]
    records, rejects = split_items(source.iter_all())
    assert sorted(records) == [
        "mls/german/1234_5678_000000", "mls/german/1234_5678_000001", "mls/german/4321_8765_000007"
    ]
    expected = {
        "mls/german/1234_5678_000000": ("es war einmal ein kleiner muck", "1234", 1.5, "train"),
        "mls/german/1234_5678_000001": ("der wohnte in nicea", "1234", 1.2, "train"),
        "mls/german/4321_8765_000007": ("und so ging er weiter", "4321", 1.6, "dev"),
    }
    for key, (text, speaker, duration, split) in expected.items():
        r = records[key]
        assert (r.text, r.speaker, r.split, r.language, r.sample_rate) == (text, speaker, split, "de", rate)
        assert r.duration_s == pytest.approx(duration, abs=0.02)
        assert sf.info(r.audio_uri).duration == pytest.approx(r.duration_s, abs=0.02)  # segments.txt is right
        assert r.member is None
    first = records["mls/german/1234_5678_000000"]
    assert first.audio_uri == str(corpus / tree / f"train/audio/1234/5678/1234_5678_000000.{suffix}")
    assert Path(first.audio_uri).is_file()
    assert first.meta == {
        "book_id": "5678",
        "url": fixture.URL,
        "begin_time": 10.5,
        "end_time": 12.0,
        "limited_supervision": ["1hr/0"],
        "speaker_gender": "F",
        "speaker_partition": "train",
        "speaker_minutes": "61.264",
        "title": TITLE,  # commas and quotes survive the pipe table, the header row is not a speaker
        "chapter": "Kapitel 1",
    }
    assert records["mls/german/1234_5678_000001"].meta["limited_supervision"] == ["9hr"]
    assert "limited_supervision" not in records["mls/german/4321_8765_000007"].meta
    assert [(r.key, r.reason) for r in rejects] == [("mls/german/1234_5678_000002", RejectReason.MISSING_FILE)]
    assert "transcripts.txt line 3" in rejects[0].detail and f"1234_5678_000002.{suffix}" in rejects[0].detail


@pytest.mark.parametrize(("split", "keys"), [
    ("9hr", ["mls/german/1234_5678_000001"]),
    ("9_hours", ["mls/german/1234_5678_000001"]),
    ("1hr", ["mls/german/1234_5678_000000"]),
    ("dev", ["mls/german/4321_8765_000007"]),
])
def test_openslr_splits(corpus, split, keys):
    records, rejects = split_items(MLSSource(str(corpus / "mls_german"), split=split).iter_all())
    assert sorted(records) == keys
    assert rejects == []
    assert {r.split for r in records.values()} == {{"9_hours": "9hr"}.get(split, split)}


def test_bad_split_and_layout(corpus, tmp_path):
    with pytest.raises(SourceError, match="10hr"):
        MLSSource(str(corpus / "mls_german"), split="10hr")
    with pytest.raises(SourceError, match=str(tmp_path)):
        MLSSource(str(tmp_path)).partitions()
    with pytest.raises(SourceError, match="test/transcripts.txt"):
        MLSSource(str(corpus / "mls_german"), split="test").partitions()


def test_shards(corpus):
    whole, whole_rejects = split_items(MLSSource(str(corpus / "mls_german")).iter_all())
    source = MLSSource(str(corpus / "mls_german"), shards=2)
    assert source.partitions() == ["dev#0000-of-0002", "dev#0001-of-0002", "train#0000-of-0002", "train#0001-of-0002"]
    parts = [split_items(source.read_partition(p)) for p in source.partitions()]
    # line k of transcripts.txt (1-based) goes to shard k % 2
    assert [sorted(records) for records, _ in parts] == [
        [],
        ["mls/german/4321_8765_000007"],
        ["mls/german/1234_5678_000001"],
        ["mls/german/1234_5678_000000"],
    ]
    assert [[r.key for r in rejects] for _, rejects in parts] == [[], [], [], ["mls/german/1234_5678_000002"]]
    merged = {k: v for records, _ in parts for k, v in records.items()}
    assert merged == whole
    assert [r.detail for _, rejects in parts for r in rejects] == [r.detail for r in whole_rejects]
    with pytest.raises(SourceError, match="shards"):
        MLSSource(str(corpus / "mls_german"), shards=0).partitions()


def test_language_option(corpus, tmp_path):
    import shutil

    shutil.copytree(corpus / "mls_german", tmp_path / "renamed")
    records, _ = split_items(MLSSource(str(tmp_path / "renamed"), split="dev", language="german").iter_all())
    assert list(records) == ["mls/german/4321_8765_000007"]
    assert records["mls/german/4321_8765_000007"].language == "de"
    with pytest.raises(SourceError, match="known: language"):
        MLSSource(str(tmp_path / "renamed"), lang="german")


def test_malformed_transcript_line(corpus, tmp_path):
    import shutil

    tree = tmp_path / "mls_german"
    shutil.copytree(corpus / "mls_german", tree)
    with open(tree / "dev" / "transcripts.txt", "a", encoding="utf-8") as f:
        f.write("4321_8765_000008 no tab here\n")
    records, rejects = split_items(MLSSource(str(tree), split="dev").iter_all())
    assert list(records) == ["mls/german/4321_8765_000007"]
    assert [(r.key, r.reason) for r in rejects] == [("mls/german/4321_8765_000008", RejectReason.MALFORMED_METADATA)]
    assert "transcripts.txt line 2" in rejects[0].detail


def _check_parquet(records, rejects, uri: str):
    assert rejects == []
    assert sorted(records) == ["mls/german/1234_5678_000000", "mls/german/1234_5678_000001"]
    first = records["mls/german/1234_5678_000000"]
    assert first.audio_uri == uri
    assert first.member == "0:audio"
    assert records["mls/german/1234_5678_000001"].member == "1:audio"
    assert (first.text, first.speaker, first.split, first.language, first.sample_rate) == (
        "es war einmal ein kleiner muck", "1234", "train", "de", 16000)
    assert first.duration_s == pytest.approx(1.5, abs=0.02)
    assert first.meta == {
        "book_id": "5678",
        "original_path": fixture.URL,
        "begin_time": 10.5,
        "end_time": 12.0,
        "file": "1234_5678_000000.opus",
        "audio_path": "1234_5678_000000.flac",
    }


def test_hf_parquet(corpus):
    root = corpus / "multilingual_librispeech"
    source = MLSSource(str(root))
    assert source.partitions() == ["german/train-00000-of-00001.parquet"]
    records, rejects = split_items(source.iter_all())
    uri = str(root / "german/train-00000-of-00001.parquet")
    _check_parquet(records, rejects, uri)
    assert read_audio_cell(uri, 1, "audio")[:4] == b"fLaC"
    assert MLSSource(str(root), split="dev").partitions() == []
    assert MLSSource(str(root / "german"), split="train").partitions() == ["train-00000-of-00001.parquet"]


def test_hf_parquet_bad_rows(tmp_path):
    path = tmp_path / "german" / "test-00000-of-00001.parquet"
    path.parent.mkdir()
    table = pa.table({
        "audio": [{"bytes": b"", "path": "a.flac"}, {"bytes": b"fLaC", "path": "b.flac"}],
        "transcript": ["empty audio", None],
        "audio_duration": [1.0, 1.0],
        "id": ["10_20_000001", "10_20_000002"],
    })
    pq.write_table(table, path)
    records, rejects = split_items(MLSSource(str(tmp_path)).iter_all())
    assert records == {}
    assert [(r.key, r.reason) for r in rejects] == [
        ("mls/german/10_20_000001", RejectReason.ZERO_BYTE),
        ("mls/german/test-00000-of-00001_parquet-row1", RejectReason.MALFORMED_METADATA),
    ]
    assert "row 1" in rejects[1].detail


def test_openslr_opus_tree_on_s3(corpus, s3_bucket):
    tree = corpus / "mls_german_opus"
    storage.upload_tree(tree, f"{s3_bucket}/mls_german_opus")
    source = MLSSource(f"{s3_bucket}/mls_german_opus", split="1hr")
    assert source.partitions() == ["train"]
    records, rejects = split_items(source.iter_all())
    assert list(records) == ["mls/german/1234_5678_000000"]
    record = records["mls/german/1234_5678_000000"]
    assert record.audio_uri == f"{s3_bucket}/mls_german_opus/train/audio/1234/5678/1234_5678_000000.opus"
    assert (record.sample_rate, record.meta["title"]) == (48000, TITLE)
    assert rejects == []


def test_hf_parquet_on_s3(corpus, s3_bucket):
    local = corpus / "multilingual_librispeech" / "german" / "train-00000-of-00001.parquet"
    uri = f"{s3_bucket}/mls/german/train-00000-of-00001.parquet"
    storage.atomic_write_bytes(uri, local.read_bytes())
    source = MLSSource(f"{s3_bucket}/mls")
    assert source.partitions() == ["german/train-00000-of-00001.parquet"]
    records, rejects = split_items(source.iter_all())
    _check_parquet(records, rejects, uri)
    assert read_audio_cell(uri, 0, "audio") == read_audio_cell(str(local), 0, "audio")
