"""`shards build` inputs (issue 14, items 5 and 6): only finished ingest parts, refused setting changes,
normalised URIs, and the one key rule at ingest and build (a bad key is a reject, never a crash)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import replace

import pyarrow.dataset as pads
import pytest
from ray import cloudpickle

from uniaudio.core import storage
from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.audio_stage import AudioStageConfig
from uniaudio.pipelines.build import BuildConfig, BuildSettingsChanged, run_build
from uniaudio.pipelines.ingest import IngestConfig, OutputLayout, read_table, run_ingest
from uniaudio.pipelines.records import AudioRecord, Reject
from uniaudio.pipelines.token_store import iter_store, validate_store

from .test_ingest import GOOD, ToySource, build_toy

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers get BadKeySource by value

LONG_KEY = "toy/" + "x" * 70  # last component too long for a ustar member name


class BadKeySource(ToySource):
    """The toy corpus plus, per partition, one record whose key breaks the key rule (a custom source)."""

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        yield from super().read_partition(partition)
        if partition == "train.tsv":
            yield AudioRecord(key=LONG_KEY, source=self.name, audio_uri=storage.join(self.input_uri, "audio/a.wav"))


def _ingest(src: str, out: str, source: ToySource | None = None, **kw) -> dict:
    return run_ingest(IngestConfig(source="toy", input_uri=src, output_uri=out, **kw), source=source or ToySource(src))


def _build(records: str, tokens: str, **kw) -> dict:
    return run_build(BuildConfig(source="records", input_uri=records, output_uri=tokens,
                                 limits=ShardLimits(max_samples=2), **kw))


def _store_keys(uri: str) -> list[str]:
    return sorted(s.key for s in iter_store(uri))


def test_records_builds_only_finished_parts_and_picks_up_the_rest(tmp_path, ray_session):
    src, records, tokens = build_toy(str(tmp_path / "toy")), str(tmp_path / "records"), str(tmp_path / "tokens")
    _ingest(src, records, limit=6)  # test.tsv complete, train.tsv cut short after a and b
    assert sorted(read_table(records).column("key").to_pylist()) == ["toy/a", "toy/b", "toy/t0", "toy/t1"]
    first = _build(records, tokens)
    assert _store_keys(tokens) == ["toy/t0", "toy/t1"]  # the partial part is not built (nor marked done)
    assert first["partitions"]["total"] == 1

    _ingest(src, records)  # finish the ingest: train.tsv is redone whole
    second = _build(records, tokens)
    assert second["partitions"] == {"total": 2, "done": 2, "skipped": 1}  # test.tsv's part is unchanged
    keys = _store_keys(tokens)
    assert keys == sorted(GOOD) and len(keys) == len(set(keys))
    assert validate_store(tokens) == []


def test_changed_setting_is_refused_unless_force(tmp_path, ray_session):
    src, records, tokens = build_toy(str(tmp_path / "toy")), str(tmp_path / "records"), str(tmp_path / "tokens")
    _ingest(src, records)
    _build(records, tokens)
    windowed = replace(AudioStageConfig(), window_s=0.5)
    with pytest.raises(BuildSettingsChanged, match=r"stage\.window_s: None → 0\.5.*--force"):
        _build(records, tokens, stage=windowed)
    assert _store_keys(tokens) == sorted(GOOD)  # untouched
    _build(records, tokens, stage=windowed, force=True)
    assert "toy/a/w000" in _store_keys(tokens) and "toy/a" not in _store_keys(tokens)

    # a store from before build-settings.json: accepted only when its done-markers carry the same settings
    settings = f"{tokens}/build-settings.json"
    storage.remove(settings)
    assert _build(records, tokens, stage=windowed)["partitions"]["skipped"] == 2
    assert storage.exists(settings)
    storage.remove(settings)
    with pytest.raises(BuildSettingsChanged, match="other or unknown settings"):
        _build(records, tokens)


def test_uris_are_normalised_before_fingerprinting(tmp_path, monkeypatch):
    (tmp_path / "x").mkdir()
    monkeypatch.chdir(tmp_path)
    spellings = ["./x", str(tmp_path / "x"), "x/", f"file://{tmp_path}/x"]
    fingerprints = {BuildConfig(source="records", input_uri=u, output_uri="o").fingerprint() for u in spellings}
    assert len(fingerprints) == 1
    assert len({IngestConfig(source="toy", input_uri=u).fingerprint() for u in spellings}) == 1
    s3 = {BuildConfig(source="records", input_uri=u, output_uri="o").fingerprint() for u in ("s3://b/x", "s3://b/x/")}
    assert len(s3) == 1


def test_a_bad_key_is_a_reject_at_ingest_and_at_build(tmp_path, ray_session):
    src, records, tokens = build_toy(str(tmp_path / "toy")), str(tmp_path / "records"), str(tmp_path / "tokens")
    summary = _ingest(src, records, source=BadKeySource(src))
    assert summary["rejects_by_reason"]["invalid_key"] == 1
    bad = [r for r in read_table(records, "rejects").to_pylist() if r["key"] == LONG_KEY]
    assert bad and "ustar" in bad[0]["detail"]
    assert sorted(read_table(records).column("key").to_pylist()) == sorted(GOOD)

    # an ingest output written before the rule (or by hand) holding such a key: build rejects it too
    layout = OutputLayout(records)
    [marker_uri] = [u for u in storage.glob(layout.progress, "*.json")
                    if json.loads(storage.read_bytes(u))["partition"] == "train.tsv"]
    marker = json.loads(storage.read_bytes(marker_uri))
    part = storage.join(records, "records", marker["parts"]["records"][0]["name"])
    table = pads.dataset(part, format="parquet").to_table().to_pylist()
    table.append({**table[0], "key": LONG_KEY})
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    from uniaudio.pipelines.records import RECORD_SCHEMA

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(table, schema=RECORD_SCHEMA), sink)
    data = sink.getvalue().to_pybytes()
    storage.atomic_write_bytes(part, data)
    marker["parts"]["records"][0]["sha1"] = hashlib.sha1(data).hexdigest()[:16]
    storage.atomic_write_bytes(marker_uri, json.dumps(marker).encode())

    built = _build(records, tokens)
    assert built["rejects_by_reason"] == {"invalid_key": 1}
    assert _store_keys(tokens) == sorted(GOOD) and validate_store(tokens) == []
