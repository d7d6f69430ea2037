"""CapSpeech source on the fixture: source → root map (dict and file), unmapped source, missing audio, S3."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from uniaudio.core import storage
from uniaudio.pipelines.records import AudioRecord, Reject
from uniaudio.pipelines.sources import SourceError, get_source
from uniaudio.testing.corpora import capspeech

PARQUET = "data/train_PT-00000-of-00001.parquet"
MLS = "mls_english/test/audio/10226/10111/10226_10111_000001.flac"
EMILIA = "EN_B00020_S00165_W000096.mp3"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return capspeech.build(tmp_path_factory.mktemp("capspeech"))


def _check(items: list, roots: dict[str, str]) -> None:
    records = [r for r in items if isinstance(r, AudioRecord)]
    rejects = [r for r in items if isinstance(r, Reject)]
    assert [r.key for r in records] == [
        "capspeech/train_PT/mls/mls_english/test/audio/10226/10111/10226_10111_000001",
        "capspeech/train_PT/emilia/EN_B00020_S00165_W000096",
    ]
    mls, emilia = records
    assert mls.audio_uri == f"{roots['mls']}/{MLS}"
    assert emilia.audio_uri == f"{roots['emilia']}/{EMILIA}"
    assert mls.text == "and so the evening passed in quiet conversation"
    assert mls.caption == "A middle-aged man speaks slowly with a low, calm voice."
    # CapTTS-SE tags kept verbatim, only surrounding whitespace stripped
    assert emilia.text == "<B_start> Well, I never expected that. <train_whistling> <B_end>"
    assert [r.duration_s for r in records] == [pytest.approx(2.0, abs=0.02), pytest.approx(1.5, abs=0.02)]
    assert mls.labels == ["calm", "slow"] and emilia.labels == ["surprised"]
    assert all(r.split == "train_PT" for r in records)
    assert mls.meta == {
        "capspeech_source": "mls",
        "audio_path": MLS,
        "gender": "male",
        "pitch": "low-pitch",
        "age": "middle-aged adult",
    }
    assert [(r.key, r.reason.value) for r in rejects] == [
        ("capspeech/train_PT/libritts-r/LibriTTS_R/test-clean/1089/134686/1089_134686_000001_000001_01",
         "missing_file"),
        ("capspeech/train_PT/voxceleb/id10270/5r0dWxy17C8/00001", "unmapped_source"),
    ]
    assert "row 2" in rejects[0].detail and "1089_134686_000001_000001_01.wav" in rejects[0].detail
    assert "row 3: source 'voxceleb'" in rejects[1].detail


def test_roots_file(corpus: Path) -> None:
    source = get_source("capspeech")(str(corpus), roots_file=str(corpus / "source_roots.json"))
    assert source.partitions() == [PARQUET]
    items = list(source.iter_all())
    roots = {name: str(corpus / "corpora" / name) for name in ("mls", "emilia", "libritts-r")}
    _check(items, roots)
    for record, expected in zip([r for r in items if isinstance(r, AudioRecord)], (2.0, 1.5), strict=True):
        assert sf.info(record.audio_uri).duration == pytest.approx(expected, abs=0.02)


def test_source_roots_dict_and_yaml(corpus: Path, tmp_path: Path) -> None:
    roots = {name: str(corpus / "corpora" / name) for name in ("mls", "emilia", "libritts-r")}
    _check(list(get_source("capspeech")(str(corpus / PARQUET), source_roots=roots).iter_all()), roots)
    yaml_file = tmp_path / "roots.yaml"
    yaml_file.write_text("".join(f"{k}: {v}\n" for k, v in roots.items()))
    _check(list(get_source("capspeech")(str(corpus), roots_file=str(yaml_file)).iter_all()), roots)
    inline = json.dumps(roots)  # CLI form of source_roots
    _check(list(get_source("capspeech")(str(corpus), source_roots=inline).iter_all()), roots)
    # the corpus root's source_roots.json is the default map
    _check(list(get_source("capspeech")(str(corpus)).iter_all()), roots)
    # with no map at all every row is unmapped
    items = list(get_source("capspeech")(str(corpus / PARQUET)).iter_all())
    assert [r.reason.value for r in items] == ["unmapped_source"] * 4


def test_s3_input(corpus: Path, s3_bucket: str) -> None:
    storage.upload_tree(corpus, f"{s3_bucket}/CapSpeech")
    uri = f"{s3_bucket}/CapSpeech"
    source = get_source("capspeech")(uri, roots_file=f"{uri}/source_roots.json")
    assert source.partitions() == [PARQUET]
    roots = {name: f"{uri}/corpora/{name}" for name in ("mls", "emilia", "libritts-r")}
    _check(list(source.iter_all()), roots)


def test_split_option_and_bad_layout(corpus: Path, tmp_path: Path) -> None:
    assert get_source("capspeech")(str(corpus), split="validation_PT").partitions() == []
    assert get_source("capspeech")(str(corpus), split="train_PT").partitions() == [PARQUET]
    with pytest.raises(SourceError, match=str(tmp_path)):
        get_source("capspeech")(str(tmp_path)).partitions()
    with pytest.raises(SourceError, match="unknown option"):
        get_source("capspeech")(str(corpus), roots=str(corpus / "source_roots.json"))
    bad = tmp_path / "roots.json"
    bad.write_text(json.dumps(["mls"]))
    with pytest.raises(SourceError, match="roots.json"):
        get_source("capspeech")(str(corpus), roots_file=str(bad))


def test_malformed_row_and_tab_indented_roots(tmp_path: Path) -> None:
    table = pa.table({
        "audio_path": ["a/b.wav", None],
        "text": ["hello", "world"],
        "source": ["vctk", "vctk"],
        "speech_duration": pa.array([1.0, 1.0], type=pa.float32()),
        "caption": ["A man says hello.", "A man says world."],
    })
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data/validation_PT-00000-of-00001.parquet")
    (tmp_path / "vctk/a").mkdir(parents=True)
    (tmp_path / "vctk/a/b.wav").write_bytes(b"")
    (tmp_path / "source_roots.json").write_text('{\n\t"vctk": "vctk"\n}\n')
    items = list(get_source("capspeech")(str(tmp_path)).iter_all())
    assert [(r.key, r.reason.value) for r in items] == [
        ("capspeech/validation_PT/vctk/a/b", "zero_byte"),
        ("capspeech/validation_PT/validation_PT-00000-of-00001/row1", "malformed_metadata"),
    ]
    assert "row 1: no source or audio_path" in items[1].detail
