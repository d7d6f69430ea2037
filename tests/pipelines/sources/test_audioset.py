"""AudioSet source on the fixture: official CSV layout, HF parquet layout (local and S3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from uniaudio.core import storage
from uniaudio.pipelines.records import AudioRecord, Reject
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.pipelines.sources.audioset import clip_stems
from uniaudio.pipelines.sources.hf_tables import read_audio_cell
from uniaudio.testing.corpora import audioset


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return audioset.build(tmp_path_factory.mktemp("audioset"))


def _read(uri: str, **options) -> tuple[list[AudioRecord], list[Reject]]:
    items = list(get_source("audioset")(uri, **options).iter_all())
    return [r for r in items if isinstance(r, AudioRecord)], [r for r in items if isinstance(r, Reject)]


def test_csv_layout_records(corpus: Path) -> None:
    source = get_source("audioset")(str(corpus))
    assert source.partitions() == [
        "balanced_train_segments.csv",
        "eval_segments.csv",
        "unbalanced_train_segments.csv",
    ]
    records, _ = _read(str(corpus))
    by_key = {r.key: r for r in records}
    assert list(by_key) == ["audioset/--PJHxphWEs_30000", "audioset/Eg_Vl-TQ3Xo_0", "audioset/Ub-8_xK2mQo_10000"]

    first = by_key["audioset/--PJHxphWEs_30000"]
    # quoted 3-label list survives the ", " separator; mids mapped through quoted names with commas
    assert first.labels == ["Speech", "Gush", "Male speech, man speaking"]
    assert first.meta["mids"] == ["/m/09x0r", "/t/dd00088", "/m/05zppz"]
    assert first.audio_uri == str(corpus / "audio/bal_train/--PJHxphWEs.flac")
    assert first.split == "balanced_train"
    assert first.duration_s == pytest.approx(3.0, abs=0.02)
    assert first.member is None and first.offset_s == 0.0

    ev = by_key["audioset/Eg_Vl-TQ3Xo_0"]
    assert ev.audio_uri == str(corpus / "audio/eval/YEg_Vl-TQ3Xo.wav")
    assert ev.labels == ["Child speech, kid speaking", "Speech"]
    assert ev.split == "eval"
    assert ev.duration_s == pytest.approx(2.0, abs=0.02)

    unbal = by_key["audioset/Ub-8_xK2mQo_10000"]
    assert unbal.audio_uri == str(corpus / "audio/unbal_train/Ub-8_xK2mQo_10.wav")
    assert unbal.labels == ["Water"]
    assert unbal.split == "unbalanced_train"
    assert unbal.duration_s == pytest.approx(2.5, abs=0.02)
    assert unbal.meta["start_s"] == 10.0 and unbal.meta["end_s"] == 12.5
    # metadata durations agree with the fixture audio (the audio stage measures the same)
    for record in records:
        assert sf.info(record.audio_uri).duration == pytest.approx(record.duration_s, abs=0.02)


def test_csv_layout_rejects(corpus: Path) -> None:
    _, rejects = _read(str(corpus))
    assert [(r.key, r.reason.value) for r in rejects] == [
        ("audioset/0FMdORf5iGs_0", "missing_file"),
        ("audioset/bAdRow12345", "malformed_metadata"),
    ]
    assert "balanced_train_segments.csv line 5" in rejects[0].detail
    assert "unbalanced_train_segments.csv line 5" in rejects[1].detail


def test_split_option_and_audio_dir(corpus: Path) -> None:
    source = get_source("audioset")(str(corpus), split="eval")
    assert source.partitions() == ["eval_segments.csv"]
    records, rejects = _read(str(corpus), split="eval", audio_dir=str(corpus / "audio" / "bal_train"))
    assert records == [] and [r.reason.value for r in rejects] == ["missing_file"]


def test_clip_stems_cover_dump_names() -> None:
    stems = clip_stems("--PJHxphWEs", 30.0)
    for name in ("--PJHxphWEs", "Y--PJHxphWEs", "--PJHxphWEs_30", "--PJHxphWEs_30.000", "--PJHxphWEs_30000"):
        assert name in stems


def test_missing_label_index_is_a_layout_error(tmp_path: Path) -> None:
    (tmp_path / "eval_segments.csv").write_text("# a\n# b\n# c\n")
    with pytest.raises(SourceError, match="class_labels_indices.csv"):
        get_source("audioset")(str(tmp_path)).partitions()
    with pytest.raises(SourceError, match=str(tmp_path / "empty")):
        get_source("audioset")(str(tmp_path / "empty")).partitions()


def _check_parquet(records: list[AudioRecord], rejects: list[Reject], file_uri: str) -> None:
    assert rejects == []
    assert [(r.key, r.member, r.labels, r.split) for r in records] == [
        ("audioset/--PJHxphWEs", "0:audio", ["Speech", "Gush"], "balanced_train"),
        ("audioset/-0RWZT-miFs", "1:audio", ["Music"], "balanced_train"),
    ]
    assert all(r.audio_uri == file_uri and r.duration_s is None for r in records)
    assert records[0].meta["mids"] == ["/m/09x0r", "/t/dd00088"]
    assert records[0].meta["audio_path"] == "audio/bal_train/--PJHxphWEs.flac"
    assert read_audio_cell(file_uri, 1, "audio")[:4] == b"fLaC"


def test_hf_parquet_layout(corpus: Path) -> None:
    hf = corpus.parent / "AudioSet-hf"
    assert get_source("audioset")(str(hf)).partitions() == ["data/bal_train/00.parquet"]
    assert get_source("audioset")(str(hf), split="balanced_train").partitions() == ["data/bal_train/00.parquet"]
    assert get_source("audioset")(str(hf), split="eval").partitions() == []
    records, rejects = _read(str(hf))
    _check_parquet(records, rejects, str(hf / "data/bal_train/00.parquet"))


def test_hf_parquet_layout_on_s3(corpus: Path, s3_bucket: str) -> None:
    hf = corpus.parent / "AudioSet-hf"
    storage.upload_tree(hf, f"{s3_bucket}/AudioSet-hf")
    uri = f"{s3_bucket}/AudioSet-hf"
    assert get_source("audioset")(uri).partitions() == ["data/bal_train/00.parquet"]
    records, rejects = _read(uri)
    _check_parquet(records, rejects, f"{uri}/data/bal_train/00.parquet")


def test_csv_layout_on_s3(corpus: Path, s3_bucket: str) -> None:
    storage.upload_tree(corpus, f"{s3_bucket}/AudioSet")
    uri = f"{s3_bucket}/AudioSet"
    records, rejects = _read(uri)
    assert [(r.key, r.audio_uri) for r in records] == [
        ("audioset/--PJHxphWEs_30000", f"{uri}/audio/bal_train/--PJHxphWEs.flac"),
        ("audioset/Eg_Vl-TQ3Xo_0", f"{uri}/audio/eval/YEg_Vl-TQ3Xo.wav"),
        ("audioset/Ub-8_xK2mQo_10000", f"{uri}/audio/unbal_train/Ub-8_xK2mQo_10.wav"),
    ]
    assert records[0].labels == ["Speech", "Gush", "Male speech, man speaking"]
    assert [r.reason.value for r in rejects] == ["missing_file", "malformed_metadata"]
