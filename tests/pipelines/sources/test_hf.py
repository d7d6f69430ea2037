"""The ``hf`` source on a small audio dataset built with ``datasets`` and stored in every layout it reads.

The dataset (3 clips with their bytes embedded, text, speaker, id, duration and labels) is saved with
``save_to_disk`` (a DatasetDict, train in 2 shards), as hub-style parquet files with a README ``configs``
block, in the hub snapshot cache (blobs + symlinks + refs/main) and in the ``datasets`` arrow cache
(prepared by ``datasets.load_dataset`` itself). Everything runs with ``HF_DATASETS_OFFLINE=1``.
"""

from __future__ import annotations

import io
import json
import os
import shutil

import pytest
import soundfile as sf

from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources import get_source
from uniaudio.pipelines.sources.base import SourceError
from uniaudio.pipelines.sources.hf import HFOptions, HFSource
from uniaudio.pipelines.sources.hf_tables import read_audio_cell
from uniaudio.testing.audio import encode_audio, synth

# (id, seconds, sample rate, format, text, speaker, labels)
CLIPS = [
    ("utt-a", 1.0, 16000, "wav", "hello world", "spk1", ["speech"]),
    ("utt.b", 0.5, 24000, "flac", "  good morning ", "spk2", ["speech", "male"]),
    ("utt-c", 0.25, 8000, "wav", "test clip", "spk1", []),
]
SPLITS = {"train": CLIPS[:2], "test": CLIPS[2:]}
COMMIT = "0123456789abcdef0123456789abcdef01234567"
README = """---
configs:
- config_name: german
  data_files:
  - split: train
    path: german/train-*
  - split: test
    path: german/test-*
---
# tiny speech
"""


def _dataset(clips):
    from datasets import Audio, Dataset

    columns = {
        "audio": [
            {"bytes": encode_audio(synth(sec, sr, seed=i), sr, fmt), "path": f"{cid}.{fmt}"}
            for i, (cid, sec, sr, fmt, *_rest) in enumerate(clips)
        ],
        "utt_id": [c[0] for c in clips],
        "sentence": [c[4] for c in clips],
        "speaker": [c[5] for c in clips],
        "seconds": [c[1] for c in clips],
        "tags": [c[6] for c in clips],
    }
    return Dataset.from_dict(columns).cast_column("audio", Audio(decode=False))


@pytest.fixture(scope="module")
def hf_layouts(tmp_path_factory):
    """Paths of the same dataset in every layout, plus the two cache roots."""
    from datasets import DatasetDict, load_dataset

    root = tmp_path_factory.mktemp("hf")
    data = DatasetDict({split: _dataset(clips) for split, clips in SPLITS.items()})
    data.save_to_disk(str(root / "saved"), num_shards={"train": 2, "test": 1})

    repo = root / "tiny_speech"
    for split, ds in data.items():
        ds.to_parquet(str(repo / "german" / f"{split}-00000-of-00001.parquet"))
    (repo / "README.md").write_text(README)

    hub = root / "hub" / "datasets--acme--tiny_speech"
    (hub / "blobs").mkdir(parents=True)
    for i, file in enumerate(sorted(p for p in repo.rglob("*") if p.is_file())):
        blob = hub / "blobs" / f"{i:040x}"
        shutil.copy(file, blob)
        link = hub / "snapshots" / COMMIT / file.relative_to(repo)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (hub / "refs").mkdir()
    (hub / "refs" / "main").write_text(COMMIT)

    cache = root / "datasets-cache"
    load_dataset(str(repo), "german", cache_dir=str(cache))  # datasets prepares its arrow cache
    return {"saved": root / "saved", "repo": repo, "hub": root / "hub", "cache": cache}


@pytest.fixture
def offline(hf_layouts, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(hf_layouts["cache"]))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_layouts["hub"]))
    return hf_layouts


MAPPING = dict(id_column="utt_id", text_column="sentence", speaker_column="speaker",
               duration_column="seconds", labels_column="tags")


def _read(source: HFSource) -> list[AudioRecord | Reject]:
    return [r for p in source.partitions() for r in source.read_partition(p)]


def _decoded_seconds(record: AudioRecord) -> float:
    row, column = record.member.split(":")
    data, sr = sf.read(io.BytesIO(read_audio_cell(record.audio_uri, int(row), column)))
    return len(data) / sr


def _check_records(records: list[AudioRecord], name: str, splits: dict[str, list]) -> None:
    expected = [(split, clip) for split, clips in splits.items() for clip in clips]
    assert sorted(r.key for r in records) == sorted(f"hf/{name}/{c[0].replace('.', '_')}" for _, c in expected)
    by_key = {r.key: r for r in records}
    for split, (cid, sec, _sr, fmt, text, spk, labels) in expected:
        r = by_key[f"hf/{name}/{cid.replace('.', '_')}"]
        assert (r.source, r.split, r.text, r.speaker, r.labels) == ("hf", split, text.strip(), spk, labels)
        assert r.duration_s == sec and r.sample_rate is None and r.caption is None
        assert r.member.endswith(":audio") and r.meta["audio_path"] == f"{cid}.{fmt}"
        assert _decoded_seconds(r) == sec  # the member points at this clip's bytes


def test_registered():
    assert get_source("hf") is HFSource


def test_save_to_disk_exact_records(offline):
    source = HFSource(str(offline["saved"]), **MAPPING)
    assert source.partitions() == [
        "test/data-00000-of-00001.arrow", "train/data-00000-of-00002.arrow", "train/data-00001-of-00002.arrow"
    ]
    records = _read(source)
    _check_records(records, "saved", SPLITS)
    assert {r.audio_uri for r in records if r.split == "train"} == {
        str(offline["saved"] / "train" / f"data-0000{i}-of-00002.arrow") for i in range(2)
    }


def test_split_selection_and_unknown_split(offline):
    records = _read(HFSource(str(offline["saved"]), split="test", **MAPPING))
    _check_records(records, "saved", {"test": SPLITS["test"]})
    with pytest.raises(SourceError, match=r"no files of split 'dev'; splits: test, train"):
        HFSource(str(offline["saved"]), split="dev").partitions()


def test_parquet_folder_with_readme_configs(offline):
    source = HFSource(str(offline["repo"]), config="german", **MAPPING)
    assert source.partitions() == ["german/test-00000-of-00001.parquet", "german/train-00000-of-00001.parquet"]
    _check_records(_read(source), "tiny_speech", SPLITS)
    with pytest.raises(SourceError, match="no config 'french' in README.md; configs: german"):
        HFSource(str(offline["repo"]), config="french").partitions()


def test_name_from_datasets_arrow_cache(offline):
    import datasets

    source = HFSource("tiny_speech", config="german", split="train", **MAPPING)
    assert source.tables.layout == "datasets_cache"
    # datasets itself (offline) loads the same files from that cache
    cached = datasets.load_dataset("tiny_speech", "german", split="train", cache_dir=str(offline["cache"]))
    assert [source.tables.uri(p) for p in source.partitions()] == [f["filename"] for f in cached.cache_files]
    _check_records(_read(source), "tiny_speech", {"train": SPLITS["train"]})


def test_name_from_hub_snapshot_cache(offline):
    source = HFSource("acme/tiny_speech", split="train", **MAPPING)  # the only config is the default
    assert source.tables.layout == "folder" and COMMIT in source.tables.root
    _check_records(_read(source), "acme/tiny_speech", {"train": SPLITS["train"]})
    pinned = HFSource("acme/tiny_speech", revision=COMMIT, **MAPPING)
    assert len(_read(pinned)) == 3


def test_streaming_reads_the_same_records(offline):
    for input_uri in (str(offline["saved"]), str(offline["repo"])):
        plain = _read(HFSource(input_uri, config="german", **MAPPING))
        streamed = _read(HFSource(input_uri, config="german", streaming=True, **MAPPING))
        assert [r.to_row() for r in streamed] == [r.to_row() for r in plain]


def test_column_mapping_defaults_and_positional_ids(offline):
    records = _read(HFSource(str(offline["saved"]), split="train", caption_column="sentence", name="tiny"))
    assert [r.key for r in records] == ["hf/tiny/train/data-00000-of-00002_0", "hf/tiny/train/data-00001-of-00002_0"]
    assert [r.caption for r in records] == ["hello world", "good morning"]
    assert all(r.text is None and r.speaker is None and r.duration_s is None for r in records)


def test_missing_column_lists_existing_columns(offline):
    with pytest.raises(SourceError) as err:
        HFSource(str(offline["saved"]), text_column="transcript").partitions()
    message = str(err.value)
    assert "no column(s) transcript" in message
    assert "columns: audio, utt_id, sentence, speaker, seconds, tags" in message


def test_options_from_the_cli():
    with pytest.raises(SourceError, match="unknown option.*text_colum.*known:"):
        HFSource("x", text_colum="text")
    options = HFOptions.from_options({"config": 2024, "streaming": "yes", "text_column": None})
    assert (options.config, options.streaming, options.text_column) == ("2024", True, None)
    assert options.audio_column == "audio"


def test_not_cached_offline_names_paths_and_download(offline):
    with pytest.raises(SourceError) as err:
        HFSource("acme/other_corpus", config="en").partitions()
    message = str(err.value)
    assert "offline mode is on" in message
    assert str(offline["cache"] / "acme___other_corpus" / "en") in message
    assert str(offline["hub"] / "datasets--acme--other_corpus") in message
    assert "huggingface-cli download acme/other_corpus --repo-type dataset" in message
    assert "datasets.load_dataset('acme/other_corpus', 'en').save_to_disk('DIR')" in message


def test_path_only_audio_points_at_the_file(tmp_path, offline):
    """Arrow files that ``datasets`` writes for processed datasets (``map``) keep paths, not bytes."""
    from datasets import Audio, Dataset

    clip, gone = tmp_path / "clip.wav", tmp_path / "gone.wav"
    for path in (clip, gone):
        path.write_bytes(encode_audio(synth(0.5, 16000), 16000, "wav"))
    ds = Dataset.from_dict({"audio": [str(clip), str(gone)]}).cast_column("audio", Audio(decode=False))
    ds.map(lambda row: row, cache_file_name=str(tmp_path / "processed.arrow"))
    gone.unlink()  # the dataset outlived one of its files
    ok, missing = _read(HFSource(str(tmp_path / "processed.arrow")))
    assert isinstance(ok, AudioRecord) and (ok.audio_uri, ok.member) == (str(clip), None)
    assert isinstance(missing, Reject) and missing.reason == RejectReason.MISSING_FILE
    assert "gone.wav" in missing.detail


def test_single_parquet_file(offline):
    file = offline["repo"] / "german" / "test-00000-of-00001.parquet"
    source = HFSource(str(file), **MAPPING)
    assert source.partitions() == [""]
    _check_records(_read(source), "test-00000-of-00001", {"test": SPLITS["test"]})


def test_parquet_on_s3(offline, s3_bucket):
    from uniaudio.core import storage

    for file in (offline["repo"] / "german").glob("*.parquet"):
        storage.filesystem(s3_bucket).put_file(str(file), storage.strip_scheme(f"{s3_bucket}/german/{file.name}"))
    source = HFSource(s3_bucket, streaming=True, **MAPPING)
    records = _read(source)
    assert len(records) == 3 and all(r.audio_uri.startswith(f"{s3_bucket}/german/") for r in records)
    assert sorted(_decoded_seconds(r) for r in records) == sorted(c[1] for c in CLIPS)


def test_ingest_cli_reads_hf_offline(offline, tmp_path, ray_session):
    """``uniaudio ingest hf`` end to end: the column flags (and ``-o`` for the rest), durations measured."""
    from typer.testing import CliRunner

    from uniaudio.cli.main import app
    from uniaudio.pipelines.ingest import read_records, read_table

    out = str(tmp_path / "records")
    args = ["ingest", "hf", "tiny_speech", out, "--config", "german", "--streaming", "--id-column", "utt_id",
            "--text-column", "sentence", "--speaker-column", "speaker", "-o", "labels_column=tags"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cache_dir = HFSource("tiny_speech", config="german").tables.root
    rows = [r.to_row() for r in read_records(out)]
    assert [(r["key"], r["member"], r["duration_s"], r["sample_rate"], r["text"], r["split"]) for r in rows] == [
        ("hf/tiny_speech/utt-a", "0:audio", 1.0, 16000, "hello world", "train"),
        ("hf/tiny_speech/utt_b", "1:audio", 0.5, 24000, "good morning", "train"),
    ]
    assert {r["audio_uri"] for r in rows} == {f"{cache_dir}/tiny_speech-train.arrow"}
    rejects = read_table(out, "rejects").to_pylist()
    assert [(r["key"], r["reason"]) for r in rejects] == [("hf/tiny_speech/utt-c", "too_short")]  # 0.25 s < 0.5 s
    summary = json.loads((tmp_path / "records" / "summary.json").read_text())
    assert summary["partitions"] == {"total": 2, "complete": 2, "partial": 0, "skipped": 0}  # one per arrow file


@pytest.mark.parametrize("writer", ["ipc_stream", "ipc_file", "parquet"])
def test_streamed_batches_are_bounded_and_projected(tmp_path, writer):
    """``datasets`` writes arrow IPC streams; plain pyarrow users often write IPC files or parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from uniaudio.pipelines.sources.hf_tables import iter_table_batches, iter_table_rows, stream_table_rows

    table = pa.table({"audio": [{"bytes": b"x" * i, "path": f"{i}.wav"} for i in range(1, 6)],
                      "text": [f"t{i}" for i in range(1, 6)], "other": list(range(5))})
    path = str(tmp_path / ("t.parquet" if writer == "parquet" else "t.arrow"))
    if writer == "parquet":
        pq.write_table(table, path, row_group_size=4)
    else:
        new = pa.ipc.new_stream if writer == "ipc_stream" else pa.ipc.new_file
        with pa.OSFile(path, "wb") as sink, new(sink, table.schema) as out:
            for batch in table.to_batches(max_chunksize=3):
                out.write_batch(batch)
    batches = list(iter_table_batches(path, columns=["text"], batch_size=2))
    assert all(b.num_rows <= 2 and b.schema.names == ["text"] for b in batches)
    assert [t for b in batches for t in b.column("text").to_pylist()] == table.column("text").to_pylist()
    streamed = list(stream_table_rows(path, ("audio",), columns=["audio", "text"], batch_size=2))
    loaded = [(i, {k: v for k, v in row.items() if k != "other"}) for i, row in iter_table_rows(path, ("audio",))]
    assert streamed == loaded and streamed[4][1]["audio"].num_bytes == 5


def test_hf_flags_are_refused_for_other_sources(tmp_path):
    from typer.testing import CliRunner

    from uniaudio.cli.main import app

    args = ["ingest", "librispeech", str(tmp_path), str(tmp_path / "o"), "--text-column", "x"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--text-column only apply to source hf" in result.output


def test_shards_build_from_a_saved_dataset(offline, tmp_path, ray_session):
    from uniaudio.pipelines.build import BuildConfig, run_build
    from uniaudio.pipelines.token_store import iter_store, validate_store

    out = str(tmp_path / "tokens")
    run_build(BuildConfig(source="hf", input_uri=str(offline["saved"]), output_uri=out, split="train",
                          source_options={"id_column": "utt_id", "text_column": "sentence"}))
    assert validate_store(out) == []
    samples = {s.key: s for s in iter_store(out)}
    assert sorted(samples) == ["hf/saved/utt-a", "hf/saved/utt_b"]
    assert samples["hf/saved/utt-a"].meta["text"] == "hello world"
