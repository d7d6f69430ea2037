"""LibriLight source on the fixture corpus: one record per voice_activity span, fine-tuning tree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from uniaudio.pipelines.records import RejectReason
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.pipelines.sources.librilight import LibriLightSource
from uniaudio.testing.corpora import librilight as fixture

from .helpers import split_items

HOLLAND = "librilight/small/960/history_of_holland_librivox/holland_01"
ALICE = "librilight/medium/10/alice_s_adventures__vol_1__librivox/alice_01"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return fixture.build(tmp_path_factory.mktemp("librilight"))


def test_registered():
    assert get_source("librilight") is LibriLightSource


def test_all_subsets(corpus):
    assert "flac" in corpus.name  # the trap: a directory name containing "flac"
    source = LibriLightSource(str(corpus))
    assert source.partitions() == ["librispeech_finetuning/1h/0/clean/1089/134686", "medium/10", "small/960"]
    records, rejects = split_items(source.iter_all())
    assert sorted(records) == [
        "librilight/librispeech_finetuning/1089-134686-0000",
        f"{ALICE}/0",
        f"{HOLLAND}/0",
        f"{HOLLAND}/1",
    ]
    spans = {f"{HOLLAND}/0": (0.12, 1.28), f"{HOLLAND}/1": (1.75, 1.15), f"{ALICE}/0": (0.3, 1.55)}
    for key, (offset, duration) in spans.items():
        r = records[key]
        assert r.offset_s == pytest.approx(offset, abs=1e-6)
        assert r.duration_s == pytest.approx(duration, abs=0.02)
        assert r.text is None and r.language == "en" and r.sample_rate == 16000
        assert r.offset_s + r.duration_s <= sf.info(r.audio_uri).duration
    holland = records[f"{HOLLAND}/1"]
    assert holland.audio_uri == str(corpus / f"{fixture.HOLLAND}.flac")
    assert (holland.speaker, holland.split) == ("960", "small")
    assert holland.meta == {"book_meta": fixture.FILES[fixture.HOLLAND][1]["book_meta"], "snr": 12.417}
    assert holland.meta["book_meta"]["genre"] == ["History", "*Non-fiction"]
    alice = records[f"{ALICE}/0"]
    assert alice.audio_uri == str(corpus / f"{fixture.ALICE}.flac")
    assert (alice.speaker, alice.split) == ("10", "medium")
    ft = records["librilight/librispeech_finetuning/1089-134686-0000"]
    assert (ft.text, ft.speaker, ft.split) == (fixture.FINETUNING_UTT[1], "1089", "1h/0/clean")
    assert [(r.key, r.reason) for r in rejects] == [
        ("librilight/medium/10/alice_s_adventures__vol_1__librivox/alice_02", RejectReason.MISSING_FILE)
    ]
    assert "alice_02.json" in rejects[0].detail


def test_split_filters_subsets(corpus):
    assert LibriLightSource(str(corpus), split="small").partitions() == ["small/960"]
    assert LibriLightSource(str(corpus), split="librispeech_finetuning").partitions() == [
        "librispeech_finetuning/1h/0/clean/1089/134686"
    ]
    with pytest.raises(SourceError, match="large"):
        LibriLightSource(str(corpus), split="large").partitions()
    with pytest.raises(SourceError, match="tiny"):
        LibriLightSource(str(corpus), split="tiny")


def test_bad_sidecars(corpus, tmp_path):
    tree = tmp_path / "ll"
    shutil.copytree(corpus / "small", tree / "small")
    book = tree / "small/960/history_of_holland_librivox"
    shutil.copy(book / "holland_01.flac", book / "holland_02.flac")
    (book / "holland_02.json").write_text(json.dumps({"speaker": "960", "voice_activity": []}))
    shutil.copy(book / "holland_01.flac", book / "holland_03.flac")
    (book / "holland_03.json").write_text("{broken")
    shutil.copy(book / "holland_01.flac", book / "holland_04.flac")
    (book / "holland_04.json").write_text(json.dumps({"voice_activity": [[1.0, 2.0], [2.5, 2.0]]}))
    (book / "holland_05.json").write_text(json.dumps({"voice_activity": [[0, 1]]}))
    (book / "holland_06.flac").write_bytes(b"")
    (book / "holland_06.json").write_text(json.dumps({"voice_activity": [[0, 1]]}))
    records, rejects = split_items(LibriLightSource(str(tree)).iter_all())
    base = "librilight/small/960/history_of_holland_librivox"
    assert sorted(records) == [f"{base}/holland_01/0", f"{base}/holland_01/1", f"{base}/holland_04/0"]
    assert records[f"{base}/holland_04/0"].speaker == "960"  # JSON without speaker: the directory id
    assert [(r.key, r.reason) for r in rejects] == [
        (f"{base}/holland_02", RejectReason.SILENT),
        (f"{base}/holland_03", RejectReason.MALFORMED_METADATA),
        (f"{base}/holland_04/1", RejectReason.MALFORMED_METADATA),
        (f"{base}/holland_05", RejectReason.MISSING_FILE),
        (f"{base}/holland_06", RejectReason.ZERO_BYTE),
    ]


def test_s3_input(corpus, s3_bucket):
    from uniaudio.core import storage

    storage.upload_tree(corpus, f"{s3_bucket}/ll")
    local = LibriLightSource(str(corpus))
    source = LibriLightSource(f"{s3_bucket}/ll")
    assert source.partitions() == local.partitions()
    records, rejects = split_items(source.iter_all())
    local_records, local_rejects = split_items(local.iter_all())
    assert sorted(records) == sorted(local_records)
    assert [(r.key, r.reason) for r in rejects] == [(r.key, r.reason) for r in local_rejects]
    assert records[f"{HOLLAND}/1"].audio_uri == f"{s3_bucket}/ll/{fixture.HOLLAND}.flac"
    assert records[f"{HOLLAND}/1"].meta == local_records[f"{HOLLAND}/1"].meta
