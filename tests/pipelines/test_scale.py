"""Bounded driver memory (issue 14, item 3), at test scale: a NeMo manifest split by byte range, ingest
and ``shards build`` of it with shards committed while a partition is still streaming, and a crash in
the middle of a partition resumed with every key exactly once. ``bench/ingest_bench.py --scale`` is the
memory measurement itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.build import BuildConfig, run_build
from uniaudio.pipelines.ingest import IngestConfig, read_table, run_ingest
from uniaudio.pipelines.token_store import TokenStoreWriter, iter_store, validate_store
from uniaudio.testing.audio import write_audio

RECORDS = 12


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """A NeMo manifest of 12 lines over 3 clips reused under 12 ids (hard links)."""
    import os

    root = tmp_path_factory.mktemp("scale")
    clips = [write_audio(root / f"s{i}.wav", 0.8, 16000, seed=i) for i in range(3)]
    lines = []
    for i in range(RECORDS):
        os.link(clips[i % 3], root / f"c{i:03d}.wav")
        lines.append(json.dumps({"audio_filepath": f"c{i:03d}.wav", "duration": 0.8, "text": f"clip {i}"}))
    (root / "train.jsonl").write_text("\n".join(lines) + "\n")
    return root / "train.jsonl"


def _keys() -> list[str]:
    return sorted(f"manifest/scale0/c{i:03d}" for i in range(RECORDS))


def test_ingest_of_a_byte_range_split_manifest_has_every_record_once(manifest, tmp_path, ray_session):
    out = str(tmp_path / "records")
    summary = run_ingest(IngestConfig(source="manifest", input_uri=str(manifest), output_uri=out,
                                      source_options={"shards": "4", "name": "scale0"}))
    assert summary["partitions"]["total"] == 4 and summary["records"] == RECORDS
    keys = read_table(out).column("key").to_pylist()
    assert sorted(keys) == _keys()


def _count_executions(monkeypatch, module) -> list[list[str]]:
    """Record the partitions of every Ray Data execution ``module`` starts (its ``source_dataset`` calls)."""
    executions: list[list[str]] = []
    real = module.source_dataset

    def counting(source, partitions=None, limit=None):
        executions.append(list(partitions))
        return real(source, partitions, limit)

    monkeypatch.setattr(module, "source_dataset", counting)
    return executions


def _count_trims(monkeypatch) -> list[None]:
    """Record every C-heap trim the drivers' streams make (:mod:`uniaudio.core.native_heap`)."""
    from uniaudio.core import native_heap

    trims: list[None] = []
    real = native_heap.trim_free_heap
    monkeypatch.setattr(native_heap, "trim_free_heap", lambda: trims.append(None) or real())
    return trims


def test_ingest_in_passes_writes_what_one_pass_writes(manifest, tmp_path, monkeypatch, ray_session):
    """Passes (one Ray Data execution each) of a fixed number of partitions, or sized in records from the
    partitions finished so far, give the same records and markers as one pass."""
    import uniaudio.pipelines.ingest as ingest
    from uniaudio.pipelines import passes

    monkeypatch.setattr(passes, "FIRST_PASS_PARTITIONS", 1)  # 4 partitions of 3 records
    executions = _count_executions(monkeypatch, ingest)
    trims = _count_trims(monkeypatch)
    runs = {"fixed": {"partitions_per_pass": 1}, "records": {"records_per_pass": 6}, "one": {"partitions_per_pass": 4}}
    tables = {}
    for name, options in runs.items():
        out = str(tmp_path / f"records-{name}")
        summary = run_ingest(IngestConfig(source="manifest", input_uri=str(manifest), output_uri=out,
                                          source_options={"shards": "4", "name": "scale0"}, **options))
        assert summary["records"] == RECORDS and summary["partitions"]["complete"] == 4
        tables[name] = sorted(read_table(out).to_pylist(), key=lambda r: r["key"])
    assert [len(p) for p in executions] == [1, 1, 1, 1] + [1, 2, 1] + [4]
    assert len(trims) >= len(executions)  # the driver's heap is trimmed at least as each stream ends
    assert tables["fixed"] == tables["one"] and tables["records"] == tables["one"]
    with pytest.raises(ValueError, match="partitions_per_pass"):
        IngestConfig(source="manifest", input_uri="x", partitions_per_pass=0)
    with pytest.raises(ValueError, match="records_per_pass"):
        IngestConfig(source="manifest", input_uri="x", records_per_pass=0)


def test_build_in_passes_writes_what_one_pass_writes(manifest, tmp_path, monkeypatch, ray_session):
    """``shards build`` in passes sized in records (one partition each here: one Ray Data execution each,
    codec and writer actors started anew) stores the same samples, tokens included, as one pass with the
    driver writing."""
    import uniaudio.pipelines.build as build
    from uniaudio.pipelines import passes
    from uniaudio.pipelines.tokenize_stage import TokenizeStageConfig

    monkeypatch.setattr(passes, "FIRST_PASS_PARTITIONS", 1)  # 2 partitions of 6 records
    executions = _count_executions(monkeypatch, build)
    trims = _count_trims(monkeypatch)
    stores = {}
    for name, options in (("passes", {"records_per_pass": 6, "shard_writers": 1}), ("one", {"partitions_per_pass": 2})):
        out = str(tmp_path / f"tokens-{name}")
        summary = run_build(BuildConfig(
            source="manifest", input_uri=str(manifest), output_uri=out,
            source_options={"shards": "2", "name": "scale0"}, limits=ShardLimits(max_samples=5),
            tokenize=TokenizeStageConfig(window_mode="segment"), **options))
        assert summary["partitions"]["done"] == 2 and validate_store(out) == []
        stores[name] = {s.key: (s.reason.tobytes(), s.recon.tobytes()) for s in iter_store(out)}
    assert [len(p) for p in executions] == [1, 1, 2]
    assert len(trims) >= len(executions)  # the driver's heap is trimmed at least as each stream ends
    assert sorted(stores["passes"]) == _keys() and stores["passes"] == stores["one"]
    with pytest.raises(ValueError, match="partitions_per_pass"):
        BuildConfig(source="manifest", input_uri="x", output_uri="y", partitions_per_pass=0)


def test_build_commits_shards_while_a_partition_streams_and_resumes_exactly_once(manifest, tmp_path, monkeypatch,
                                                                                 ray_session):
    out = tmp_path / "tokens"
    config = BuildConfig(source="manifest", input_uri=str(manifest), output_uri=str(out),
                         source_options={"name": "scale0"}, limits=ShardLimits(max_samples=2))
    real_write, written = TokenStoreWriter.write, []

    def write(self, sample):
        written.append(sample.key)
        if len(written) == 5:  # shards of 2: two committed, the partition (all 12 lines) still streaming
            committed = sorted(p.name for p in out.glob("shard-*.tar"))
            assert committed == ["shard-000000.tar", "shard-000001.tar"]
            assert not list((out / "_progress").glob("*.json"))  # no marker before the partition is in
            raise RuntimeError("simulated crash")
        return real_write(self, sample)

    monkeypatch.setattr(TokenStoreWriter, "write", write)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_build(config)
    monkeypatch.setattr(TokenStoreWriter, "write", real_write)
    summary = run_build(config)
    keys = [s.key for s in iter_store(str(out))]
    assert sorted(keys) == _keys() and len(keys) == len(set(keys))
    assert summary["partitions"]["done"] == 1 and validate_store(str(out)) == []
