"""Generic manifest source on the fixture corpus: AudioFolder, NeMo JSONL, Kaldi dir, fairseq TSV."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from uniaudio.pipelines.records import RejectReason
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.pipelines.sources.manifest import ManifestSource
from uniaudio.testing.corpora import manifest as fixture

from .helpers import split_items


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return fixture.build(tmp_path_factory.mktemp("manifest"))


def test_registered():
    assert get_source("manifest") is ManifestSource


def test_fixture_traps(corpus):
    raw = (corpus / "audiofolder/train/metadata.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    assert b"\r\n" in (corpus / "kaldi/wav.scp").read_bytes()


def test_audiofolder(corpus):
    source = ManifestSource(str(corpus / "audiofolder"))
    assert source.partitions() == ["test/metadata.jsonl", "train/metadata.csv"]
    records, rejects = split_items(source.iter_all())
    assert sorted(records) == [
        "manifest/audiofolder/test/c",
        "manifest/audiofolder/train/a",
        "manifest/audiofolder/train/b",
    ]
    a = records["manifest/audiofolder/train/a"]
    assert (a.text, a.speaker, a.split, a.duration_s) == ("hello world", "spk1", "train", None)
    assert a.audio_uri == str(corpus / "audiofolder/train/a.wav")
    assert a.meta == {"comment": "clean"}  # the extra column
    b = records["manifest/audiofolder/train/b"]
    assert (b.text, b.speaker, b.meta) == (fixture.NON_ASCII, "spk2", {"comment": "stereo 44.1k"})
    c = records["manifest/audiofolder/test/c"]
    assert (c.text, c.split) == ("a short mp3 clip", "test")
    assert c.duration_s == pytest.approx(1.0, abs=0.02)
    assert [(r.key, r.reason) for r in rejects] == [("manifest/audiofolder/train/gone", RejectReason.MISSING_FILE)]
    assert "metadata.csv line 4" in rejects[0].detail and "gone.wav" in rejects[0].detail


def test_audiofolder_split_and_name(corpus):
    source = ManifestSource(str(corpus / "audiofolder"), split="test", name="my_set")
    assert source.partitions() == ["test/metadata.jsonl"]
    records, rejects = split_items(source.iter_all())
    assert list(records) == ["manifest/my_set/test/c"] and rejects == []


def test_nemo(corpus):
    source = ManifestSource(str(corpus / "nemo" / "manifest.jsonl"))
    assert source.partitions() == ["manifest.jsonl"]
    records, rejects = split_items(source.iter_all())
    assert sorted(records) == ["manifest/nemo/audio/a_500", "manifest/nemo/audio/b", "manifest/nemo/audio/c"]
    a = records["manifest/nemo/audio/a_500"]
    assert a.audio_uri == str(corpus / "audio/a.wav")  # relative to the manifest
    assert (a.offset_s, a.text) == (0.5, "first part")
    assert a.duration_s == pytest.approx(1.0, abs=0.02)
    c = records["manifest/nemo/audio/c"]
    assert (c.offset_s, c.text, c.language) == (0.0, "mp3 clip", "en")
    b = records["manifest/nemo/audio/b"]
    assert (b.text, b.meta) == (fixture.NON_ASCII, {"snr": 20.5})
    assert b.duration_s == pytest.approx(1.5, abs=0.02)
    assert [(r.key, r.reason) for r in rejects] == [
        ("manifest/nemo/audio/missing", RejectReason.MISSING_FILE),
        ("manifest/nemo/manifest_jsonl-line4", RejectReason.MALFORMED_METADATA),
    ]
    assert "manifest.jsonl line 3" in rejects[0].detail and "manifest.jsonl line 4" in rejects[1].detail


def test_kaldi(corpus):
    source = ManifestSource(str(corpus / "kaldi"))
    assert source.partitions() == ["wav.scp"]
    records, rejects = split_items(source.iter_all())
    assert sorted(records) == ["manifest/kaldi/utt1", "manifest/kaldi/utt2", "manifest/kaldi/utt3"]
    expected = {
        "utt1": ("HELLO THERE", "spkA", 0.0, 1.0, "a.wav", "rec1"),
        "utt2": (fixture.NON_ASCII, "spkA", 1.0, 1.0, "a.wav", "rec1"),
        "utt3": ("stereo  input", "spkB", 0.25, 1.25, "b.flac", "rec2"),  # inner spacing verbatim
    }
    for utt, (text, speaker, offset, duration, audio, rec) in expected.items():
        r = records[f"manifest/kaldi/{utt}"]
        assert (r.text, r.speaker, r.meta) == (text, speaker, {"recording": rec})
        assert r.offset_s == pytest.approx(offset) and r.duration_s == pytest.approx(duration, abs=0.02)
        assert r.audio_uri == str(corpus / "audio" / audio)
    assert [(r.key, r.reason) for r in rejects] == [("manifest/kaldi/utt4", RejectReason.MISSING_FILE)]
    assert "segments line 4" in rejects[0].detail


def test_kaldi_without_segments_and_bad_rows(corpus, tmp_path):
    data = tmp_path / "train"
    data.mkdir()
    (data / "wav.scp").write_text(
        f"r1 {corpus / 'audio/a.wav'}\nr2 sox x.wav -t wav - |\nr3\n", encoding="utf-8"
    )
    (data / "text").write_text("r1 full recording\n", encoding="utf-8")
    records, rejects = split_items(ManifestSource(str(data), split="train").iter_all())
    assert list(records) == ["manifest/train/r1"]
    r1 = records["manifest/train/r1"]
    assert (r1.text, r1.offset_s, r1.duration_s, r1.split) == ("full recording", 0.0, None, "train")
    assert [(r.key, r.reason) for r in rejects] == [
        ("manifest/train/r2", RejectReason.MALFORMED_METADATA),
        ("manifest/train/r3", RejectReason.MALFORMED_METADATA),
    ]


def test_fairseq_tsv(corpus):
    source = ManifestSource(str(corpus / "fairseq"))
    assert source.partitions() == ["train.tsv"]
    records, rejects = split_items(source.iter_all())
    assert sorted(records) == ["manifest/fairseq/a", "manifest/fairseq/b"]
    a, b = records["manifest/fairseq/a"], records["manifest/fairseq/b"]
    assert (a.text, a.split, a.meta, a.duration_s) == ("HELLO WORLD", "train", {"num_samples": 32000}, None)
    assert (b.text, b.meta) == ("STEREO CLIP", {"num_samples": 66150})
    assert b.audio_uri == str(corpus / "audio/b.flac")
    assert [(r.key, r.reason) for r in rejects] == [("manifest/fairseq/gone", RejectReason.MISSING_FILE)]
    assert "train.tsv line 4" in rejects[0].detail


def test_forms_are_not_mixed(corpus, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(corpus / "kaldi", mixed)
    shutil.copy(corpus / "nemo/manifest.jsonl", mixed / "manifest.jsonl")
    with pytest.raises(SourceError, match="kaldi, nemo"):
        ManifestSource(str(mixed)).partitions()
    assert ManifestSource(str(mixed), form="kaldi").partitions() == ["wav.scp"]
    with pytest.raises(SourceError, match=str(tmp_path / "empty")):
        (tmp_path / "empty").mkdir()
        ManifestSource(str(tmp_path / "empty")).partitions()
    with pytest.raises(SourceError, match="form"):
        ManifestSource(str(mixed), form="csv")
    with pytest.raises(SourceError, match="known: form, name"):
        ManifestSource(str(mixed), fomr="kaldi")


def test_nemo_and_kaldi_on_s3(corpus, s3_bucket):
    """Relative paths with ``..`` resolve to real S3 keys."""
    from uniaudio.core import storage

    storage.upload_tree(corpus, f"{s3_bucket}/m")
    for form, present in (("nemo", 3), ("kaldi", 3), ("fairseq", 2)):
        records, rejects = split_items(ManifestSource(f"{s3_bucket}/m/{form}").iter_all())
        local_records, local_rejects = split_items(ManifestSource(str(corpus / form)).iter_all())
        assert len(records) == present
        assert sorted(records) == sorted(local_records)  # the namespace is the directory name in both
        assert all(r.audio_uri.startswith(f"{s3_bucket}/m/audio/") for r in records.values())
        assert [r.reason for r in rejects] == [r.reason for r in local_rejects]


def test_nemo_manifest_is_split_by_byte_range(tmp_path):
    """Every line lands in exactly one byte range, whatever the cut points (BOM, CRLF, a broken line)."""
    import json

    (tmp_path / "a.wav").write_bytes(b"RIFF" + b"\0" * 60)
    lines = [json.dumps({"audio_filepath": "a.wav", "offset": i * 0.25, "duration": 0.25, "text": "é" * (i % 7)})
             for i in range(60)]
    lines[17] = "{broken"
    (tmp_path / "m.jsonl").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    whole = ManifestSource(str(tmp_path / "m.jsonl"))
    assert whole.partitions() == ["m.jsonl"]
    expected = sorted(split_items(whole.iter_all())[0])
    for shards in (2, 7, 60, 200):
        source = ManifestSource(str(tmp_path / "m.jsonl"), shards=str(shards))
        partitions = source.partitions()
        assert len(partitions) == shards and partitions[0] == f"m.jsonl#0000-of-{shards:04d}"
        items = list(source.iter_all())
        records, rejects = split_items(items)
        assert sorted(records) == expected and len(items) == 60
        [bad] = rejects
        assert bad.reason == RejectReason.MALFORMED_METADATA and "m.jsonl byte " in bad.detail
