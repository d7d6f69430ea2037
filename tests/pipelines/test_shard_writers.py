"""`shards build --shard-writers N` (issue 14, item 4): Ray actors write and upload the shards, the driver only
journals them; the store equals the driver-written one, a key in two shards is kept once, and a crash between
an actor's upload and the driver's journal entry resumes with every key exactly once."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.dataset as pads
import pytest

from uniaudio.core import storage
from uniaudio.core.shard_file import ShardLimits
from uniaudio.core.ustar import WRITER_SHARD_PATTERN
from uniaudio.pipelines import build as build_module
from uniaudio.pipelines.build import BuildConfig, run_build
from uniaudio.pipelines.ingest import IngestConfig, run_ingest
from uniaudio.pipelines.shard_writer_stage import ShardWriterStage, parse_shard_record
from uniaudio.pipelines.token_store import iter_store, read_index, validate_store
from uniaudio.pipelines.token_store.index import read_journal
from uniaudio.pipelines.token_store.reader import iter_shard
from uniaudio.pipelines.token_store.writer import (
    CodecMismatchError,
    DuplicateKeyError,
    TokenStoreWriter,
    rewrite_without,
)
from uniaudio.testing.tokens import TEST_CODEC

from .test_ingest import GOOD, ToySource, build_toy


def _records(tmp_path, extra_partitions: dict[str, str] | None = None) -> str:
    src, records = build_toy(str(tmp_path / "toy")), str(tmp_path / "records")
    for name, text in (extra_partitions or {}).items():
        (tmp_path / "toy" / name).write_text(text)
    run_ingest(IngestConfig(source="toy", input_uri=src, output_uri=records), source=ToySource(src))
    return records


def _build(records: str, tokens: str, max_samples: int = 2, **kw) -> dict:
    return run_build(BuildConfig(source="records", input_uri=records, output_uri=tokens,
                                 limits=ShardLimits(max_samples=max_samples), **kw))


def _rejects(uri: str) -> set[tuple[str, str]]:
    if not storage.glob(storage.join(uri, "rejects"), "*.parquet"):
        return set()
    table = pads.dataset(storage.join(uri, "rejects"), format="parquet").to_table()
    return {(r["key"], r["reason"]) for r in table.to_pylist()}


def test_writer_actors_build_what_the_driver_builds(tmp_path, ray_session):
    records = _records(tmp_path)
    by_driver, by_actors = str(tmp_path / "driver"), str(tmp_path / "actors")
    driver_summary = _build(records, by_driver)
    actors_summary = _build(records, by_actors, shard_writers=2)

    assert validate_store(by_actors) == []
    names = [s.name for s in read_index(by_actors).shards]
    assert names and all(WRITER_SHARD_PATTERN.match(n) for n in names)
    expected = {s.key: s for s in iter_store(by_driver)}
    got = {s.key: s for s in iter_store(by_actors)}
    assert sorted(got) == sorted(expected) == sorted(GOOD)
    for key, sample in got.items():
        assert np.array_equal(sample.reason, expected[key].reason) and np.array_equal(sample.recon, expected[key].recon)
        assert sample.meta == expected[key].meta
    assert _rejects(by_actors) == _rejects(by_driver)
    assert actors_summary["this_run"]["tokens"] == driver_summary["this_run"]["tokens"] > 0
    assert actors_summary["partitions"] == driver_summary["partitions"]

    again = _build(records, by_actors, shard_writers=2)  # nothing left to do
    assert again["partitions"]["skipped"] == again["partitions"]["total"]
    assert sorted(s.key for s in iter_store(by_actors)) == sorted(GOOD)


def test_a_key_in_two_shards_is_kept_once(tmp_path, ray_session):
    records = _records(tmp_path, {"again.tsv": "a\taudio/c.mp3\t1.0\n"})  # toy/a again, in another partition
    tokens = str(tmp_path / "tokens")
    summary = _build(records, tokens, max_samples=1, shard_writers=2)  # one sample per shard: two shards hold toy/a
    keys = [s.key for s in iter_store(tokens)]
    assert sorted(keys) == sorted(GOOD)
    assert ("toy/a", "duplicate_key") in _rejects(tokens)
    assert summary["rejects_by_reason"]["duplicate_key"] == 1
    assert validate_store(tokens) == []


def test_crash_before_the_driver_journals_then_resume(tmp_path, ray_session, monkeypatch):
    records, tokens = _records(tmp_path), str(tmp_path / "tokens")
    real = build_module._Driver.shard_records
    journaled_one = []

    def crash_after_the_first_shard(self, shard_records):
        if shard_records and not journaled_one:
            journaled_one.append(real(self, shard_records[:1]))
            shard_records = shard_records[1:]
        if shard_records:  # actors uploaded these shards; the driver dies before journaling them
            raise RuntimeError("simulated driver crash")

    monkeypatch.setattr(build_module._Driver, "shard_records", crash_after_the_first_shard)
    with pytest.raises(RuntimeError, match="simulated driver crash"):
        _build(records, tokens, max_samples=1, shard_writers=2)
    journaled = {e.shard.name for e in read_journal(tokens)}
    on_disk = {uri.rsplit("/", 1)[-1] for uri in storage.glob(tokens, "shard-*.tar")}
    assert journaled and on_disk - journaled  # uploaded but never journaled

    monkeypatch.setattr(build_module._Driver, "shard_records", real)
    _build(records, tokens, max_samples=1, shard_writers=2)
    keys = [s.key for s in iter_store(tokens)]
    assert sorted(keys) == sorted(GOOD) and len(keys) == len(set(keys))
    assert validate_store(tokens) == []
    on_disk = {uri.rsplit("/", 1)[-1] for uri in storage.glob(tokens, "shard-*.tar")}
    assert on_disk == {s.name for s in read_index(tokens).shards}


def _row(key: str, partition: str = "p0", seed: int = 0, **kw) -> dict:
    rng = np.random.default_rng(seed)
    reason, recon = rng.integers(0, 1024, (8, 5), dtype=np.uint16), rng.integers(0, 1024, (8, 13), dtype=np.uint16)
    row = {"partition": partition, "input_index": seed, "partition_size": 9, "fanout": 1, "key": key,
           "source": "toy", "split": None, "duration_s": 1.0, "reason": None, "detail": None,
           "codec": json.dumps(TEST_CODEC), "audio_uri": f"/corpus/{seed}.wav",
           "reason_tokens": reason.ravel().tolist(), "recon_tokens": recon.ravel().tolist(),
           "reason_frames": 5, "recon_frames": 13}
    return {**row, **kw}


def test_stage_commits_every_shard_it_opens(tmp_path):
    store = str(tmp_path / "store")
    stage = ShardWriterStage(store, max_samples=2, max_bytes=1 << 20, skip_keys=["toy/old"], writer_id="w1")
    rows = [_row("toy/a", seed=1), _row("toy/old", seed=2), _row("toy/b", seed=3), _row("toy/a", seed=4),
            _row("toy/" + "x" * 80, seed=5), _row("toy/rejected", seed=6, reason="too_short", detail="0.2 s"),
            _row("toy/c", partition="p1", seed=7)]
    out = stage.process_rows(rows)

    assert [o["shard"] for o in out] == ["shard-w1-000000.tar", None, "shard-w1-000000.tar", None, None, None,
                                         "shard-w1-000001.tar"]
    assert [o["reason"] for o in out] == [None, None, None, "duplicate_key", "invalid_key", "too_short", None]
    assert all("reason_tokens" not in o for o in out) and out[0]["tokens"] == 8 * (5 + 13)
    records = [json.loads(o["shard_record"]) for o in out if o["shard_record"]]
    assert [out.index(o) for o in out if o["shard_record"]] == [0, 6]  # on each shard's first row
    assert [r["keys"] for r in records] == [["toy/a", "toy/b"], ["toy/c"]]
    assert records[0]["notes"]["partitions"] == ["p0"] and records[1]["notes"]["partitions"] == ["p1"]
    assert records[0]["notes"]["codec_fingerprint"] == TEST_CODEC["fingerprint"]
    for record in records:  # committed whole: readable, and its entry matches the file
        uri = storage.join(store, record["shard"]["name"])
        assert [s.key for s in iter_shard(uri)] == record["keys"]
        assert record["shard"]["bytes"] == len(storage.read_bytes(uri))
    assert not list((tmp_path / "store").glob(".shard-*"))  # no staging file left


def test_stage_leaves_no_shard_when_a_row_breaks_midway(tmp_path):
    store = tmp_path / "store"
    stage = ShardWriterStage(str(store), max_samples=10, max_bytes=1 << 20, writer_id="w2")
    broken = _row("toy/b", seed=2, reason_frames=7)  # 40 tokens cannot be (8, 7)
    with pytest.raises(ValueError):
        stage.process_rows([_row("toy/a", seed=1), broken])
    assert not list(store.glob("*shard-*"))


def test_driver_records_and_repairs_writer_shards(tmp_path):
    from uniaudio.pipelines.shard_writer_stage import token_sample

    store = str(tmp_path / "store")
    with TokenStoreWriter(store, TEST_CODEC) as first:  # an earlier run's shard, holding toy/a
        first.write(token_sample(_row("toy/a", seed=9)))
    writer = TokenStoreWriter(store, TEST_CODEC)  # the driver opens its writer before any actor writes
    stage = ShardWriterStage(store, max_samples=10, max_bytes=1 << 20, writer_id="w3")
    out = stage.process_rows([_row("toy/a", seed=1), _row("toy/b", seed=2), _row("toy/c", seed=3)])
    record = parse_shard_record(out[0]["shard_record"])
    entry = record.shard

    with pytest.raises(DuplicateKeyError, match="toy/a"):
        writer.record(entry, record.keys, record.notes)
    with pytest.raises(CodecMismatchError):
        writer.record(entry, record.keys, {**record.notes, "codec_fingerprint": "other"})
    new_entry, keys = rewrite_without(store, entry.name, {"toy/a"})
    assert keys == ["toy/b", "toy/c"] and new_entry.samples == 2 and new_entry.name == entry.name
    writer.record(new_entry, keys, record.notes)

    lone = ShardWriterStage(store, max_samples=10, max_bytes=1 << 20, writer_id="w4").process_rows([_row("toy/b")])
    lone_name = json.loads(lone[0]["shard_record"])["shard"]["name"]
    assert rewrite_without(store, lone_name, {"toy/b"}) is None  # every sample dropped: no shard at all
    assert not storage.exists(storage.join(store, lone_name))

    writer.close()
    assert validate_store(store) == []
    assert sorted(s.key for s in iter_store(store)) == ["toy/a", "toy/b", "toy/c"]


def test_resume_gives_writer_actors_the_earlier_keys_of_their_partitions(tmp_path):
    """``skip_keys``: keys of earlier shards holding a partition of the pass, or not saying which they hold,
    read back from the journal (the driver keeps only their digests and partition lists)."""
    from uniaudio.pipelines.ingest import OutputLayout
    from uniaudio.pipelines.io_failures import PartitionFailures
    from uniaudio.pipelines.shard_writer_stage import token_sample

    store = str(tmp_path / "store")
    with TokenStoreWriter(store, TEST_CODEC) as writer:
        writer.write(token_sample(_row("toy/old", seed=9)))  # the driver's own shard: no partitions noted
        stage = ShardWriterStage(store, max_samples=10, max_bytes=1 << 20, writer_id="w5")
        for rows in ([_row("toy/a", "p0", 1), _row("toy/b", "p0", 2)], [_row("toy/c", "p1", 3)]):
            record = parse_shard_record(stage.process_rows(rows)[0]["shard_record"])
            writer.record(record.shard, record.keys, record.notes)
    config = BuildConfig(source="manifest", input_uri=str(tmp_path / "corpus"), output_uri=store)
    driver = build_module._Driver(config, OutputLayout(store), None, config.make_source(), PartitionFailures())
    assert all(k in driver.committed_keys for k in ("toy/old", "toy/a", "toy/b", "toy/c"))
    assert "toy/d" not in driver.committed_keys
    assert driver.skip_keys(["p0"]) == ["toy/a", "toy/b", "toy/old"]
    assert driver.skip_keys(["p1", "p9"]) == ["toy/c", "toy/old"]
    assert driver.skip_keys(["p9"]) == ["toy/old"]
