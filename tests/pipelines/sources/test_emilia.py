"""Emilia source on the fixture corpus: HF WebDataset tars (Emilia, Emilia-YODAS), the raw tree, S3."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import soundfile as sf

from uniaudio.core import storage
from uniaudio.pipelines.records import RejectReason
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.pipelines.sources.emilia import EmiliaSource
from uniaudio.testing.archives import write_tar
from uniaudio.testing.corpora import emilia as fixture

from .helpers import split_items


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return fixture.build(tmp_path_factory.mktemp("emilia"))


def test_registered():
    assert get_source("emilia") is EmiliaSource


def test_hf_tar_pairs_by_stem_in_either_order(corpus):
    tar_path = corpus / "Emilia" / "EN" / "EN-B000000.tar"
    with tarfile.open(tar_path) as tar:
        names = tar.getnames()
    # the fixture really holds json-before-mp3 and mp3-before-json pairs
    assert names.index("EN_B00000_S00000_W000000.json") < names.index("EN_B00000_S00000_W000000.mp3")
    assert names.index("EN_B00000_S00010_W000003.mp3") < names.index("EN_B00000_S00010_W000003.json")

    source = EmiliaSource(str(corpus / "Emilia"))
    assert source.partitions() == ["EN/EN-B000000.tar"]
    records, rejects = split_items(source.read_partition("EN/EN-B000000.tar"))
    assert sorted(records) == ["emilia/EN_B00000_S00000_W000000", "emilia/EN_B00000_S00010_W000003"]
    first = records["emilia/EN_B00000_S00000_W000000"]
    assert first.text == "Hello there, this is the first clip."  # leading space stripped, rest verbatim
    assert first.speaker == "EN_B00000_S00000"
    assert first.language == "en"
    assert first.duration_s == pytest.approx(1.0, abs=0.02)
    assert first.sample_rate == 24000
    assert first.audio_uri == str(tar_path)
    assert first.member == "EN_B00000_S00000_W000000.mp3"
    assert first.offset_s == 0.0 and first.split is None
    assert first.meta == {
        "subset": "Emilia",
        "dnsmos": 3.31,
        "wav": "EN_B00000/EN_B00000_S00000/mp3/EN_B00000_S00000_W000000.mp3",
    }
    second = records["emilia/EN_B00000_S00010_W000003"]
    assert second.text == "And a second one, from another speaker."
    assert second.speaker == "EN_B00000_S00010"
    assert second.member == "EN_B00000_S00010_W000003.mp3"
    assert [(r.key, r.reason) for r in rejects] == [("emilia/EN_B00000_S00020_W000001", RejectReason.ORPHAN_MEMBER)]
    assert fixture.ORPHAN_MEMBER in rejects[0].detail and "EN-B000000.tar" in rejects[0].detail

    # the member a record names is the clip's audio, as long as the metadata says
    with tarfile.open(tar_path) as tar:
        for record in records.values():
            info = sf.info(io.BytesIO(tar.extractfile(record.member).read()))
            assert (info.samplerate, info.channels) == (24000, 1)
            assert info.duration == pytest.approx(record.duration_s, abs=0.02)


def test_yodas_tar(corpus):
    source = EmiliaSource(str(corpus / "Emilia-YODAS"))
    records, rejects = split_items(source.iter_all())
    assert rejects == []
    (record,) = records.values()
    assert record.key == "emilia/EN_-Xy_z12AB3c_W000123"  # YouTube id keeps its leading '-' and '_'
    assert record.member == "EN_-Xy_z12AB3c_W000123.mp3"
    assert record.speaker == "EN_-Xy_z12AB3c_SPEAKER_00"
    assert record.text == "Welcome back to the channel."
    assert record.meta["subset"] == "Emilia-YODAS"
    assert record.meta["phone_count"] == 21


def test_raw_tree_with_missing_mp3(corpus):
    source = EmiliaSource(str(corpus / "raw"))
    assert source.partitions() == ["EN/EN_B00000.jsonl"]
    records, rejects = split_items(source.iter_all())
    assert list(records) == ["emilia/EN_B00000_S00001_W000000"]
    record = records["emilia/EN_B00000_S00001_W000000"]
    assert record.audio_uri == str(
        corpus / "raw/EN/EN_B00000/EN_B00000_S00001/mp3/EN_B00000_S00001_W000000.mp3"
    )
    assert record.member is None
    assert record.text == "A raw layout clip."
    assert record.speaker == "EN_B00000_S00001"
    assert record.duration_s == pytest.approx(1.0, abs=0.02)
    assert [(r.key, r.reason) for r in rejects] == [("emilia/EN_B00000_S00001_W000001", RejectReason.MISSING_FILE)]
    assert "EN_B00000.jsonl line 2" in rejects[0].detail
    assert "EN_B00000_S00001_W000001.mp3" in rejects[0].detail


def test_root_reads_every_layout(corpus):
    source = EmiliaSource(str(corpus))
    assert source.partitions() == [
        "Emilia-YODAS/EN/EN-B000000.tar",
        "Emilia/EN/EN-B000000.tar",
        "raw/EN/EN_B00000.jsonl",
    ]
    records, rejects = split_items(source.iter_all())
    assert len(records) == 4 and len(rejects) == 2


def test_bad_members(tmp_path):
    """Malformed JSON, a JSON without text, a zero-byte mp3, an orphan JSON and an empty tar: one reject each."""
    path = tmp_path / "Emilia" / "EN" / "EN-B000001.tar"
    path.parent.mkdir(parents=True)
    good = {"id": "EN_B00000_S00001_W000000", "text": " ok", "duration": 1.0, "speaker": "s", "language": "en"}
    members = [
        ("EN_B00000_S00001_W000000.json", json.dumps(good).encode()),
        ("EN_B00000_S00001_W000000.mp3", b""),
        ("EN_B00000_S00011_W000000.json", b"{not json"),
        ("EN_B00000_S00011_W000000.mp3", b"\xff\xfb"),
        ("EN_B00000_S00021_W000000.json", json.dumps({"id": "x"}).encode()),
        ("EN_B00000_S00021_W000000.mp3", b"\xff\xfb"),
        ("EN_B00000_S00031_W000000.json", json.dumps(good).encode()),
    ]
    write_tar(path, members)
    (path.parent / "EN-B000002.tar").write_bytes(b"")  # an empty download
    records, rejects = split_items(EmiliaSource(str(tmp_path)).iter_all())
    assert records == {}
    assert [(r.key, r.reason) for r in rejects] == [
        ("emilia/EN_B00000_S00001_W000000", RejectReason.ZERO_BYTE),
        ("emilia/EN_B00000_S00011_W000000", RejectReason.MALFORMED_METADATA),
        ("emilia/EN_B00000_S00021_W000000", RejectReason.MALFORMED_METADATA),
        ("emilia/EN_B00000_S00031_W000000", RejectReason.ORPHAN_MEMBER),
        ("emilia/EN-B000002", RejectReason.MALFORMED_METADATA),
    ]
    assert "EN-B000002.tar" in rejects[-1].detail
    assert "EN_B00000_S00011_W000000.json" in rejects[1].detail


def test_bad_layout_andsplit_items(tmp_path):
    with pytest.raises(SourceError, match=str(tmp_path)):
        EmiliaSource(str(tmp_path)).partitions()
    with pytest.raises(SourceError, match="no splits"):
        EmiliaSource(str(tmp_path), split="train")
    with pytest.raises(SourceError, match=r"unknown option\(s\) \['lang'\]"):
        EmiliaSource(str(tmp_path), lang="EN")


def test_s3_input(corpus, s3_bucket):
    storage.upload_tree(corpus, f"{s3_bucket}/emilia")
    local_records, local_rejects = split_items(EmiliaSource(str(corpus)).iter_all())
    source = EmiliaSource(f"{s3_bucket}/emilia")
    assert source.partitions() == EmiliaSource(str(corpus)).partitions()
    records, rejects = split_items(source.iter_all())
    assert sorted(records) == sorted(local_records)
    assert [(r.key, r.reason) for r in rejects] == [(r.key, r.reason) for r in local_rejects]
    tar_record = records["emilia/EN_B00000_S00000_W000000"]
    assert tar_record.audio_uri == f"{s3_bucket}/emilia/Emilia/EN/EN-B000000.tar"
    assert tar_record.member == "EN_B00000_S00000_W000000.mp3"
    for key, record in records.items():
        local = local_records[key]
        assert (record.text, record.speaker, record.duration_s, record.meta) == (
            local.text, local.speaker, local.duration_s, local.meta)
    assert records["emilia/EN_B00000_S00001_W000000"].audio_uri.startswith(f"{s3_bucket}/emilia/raw/EN/")
