"""Ingest runner: records/rejects parts, markers, summary, resume, kill-and-rerun, limit, dry run, S3."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow.dataset as pads
import pytest
from ray import cloudpickle

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines import ingest
from uniaudio.pipelines.audio_stage import AudioFilterConfig, AudioStageConfig
from uniaudio.pipelines.ingest import IngestConfig, OutputLayout, dry_run, read_records, read_table, run_ingest
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources import Source
from uniaudio.testing.archives import tar_bytes
from uniaudio.testing.audio import encode_audio, synth
from uniaudio.testing.corpora import CORPORA, build_corpus

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers get ToySource by value


class ToySource(Source):
    """Partitions = ``*.tsv`` files; lines ``id<TAB>path[:member]<TAB>duration``; paths relative to the input."""

    name = "toy"
    layouts: ClassVar[tuple[str, ...]] = ("<dir>/*.tsv",)

    def partitions(self) -> list[str]:
        return sorted(uri.rsplit("/", 1)[-1] for uri in storage.glob(self.input_uri, "*.tsv"))

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        text = storage.read_bytes(storage.join(self.input_uri, partition)).decode()
        for number, line in enumerate(text.splitlines(), 1):
            fields = line.split("\t")
            if len(fields) != 3:
                yield Reject(f"toy/{partition[:-4]}/line{number}", self.name, RejectReason.MALFORMED_METADATA,
                             f"{partition}:{number}: expected 3 fields")
                continue
            ident, path, duration = fields
            path, _, member = path.partition(":")
            yield AudioRecord(key=make_key(self.name, ident), source=self.name,
                              audio_uri=storage.join(self.input_uri, path), member=member or None,
                              duration_s=float(duration), split=partition[:-4])


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    return tar_bytes(members.items())


def build_toy(root: str) -> str:
    """A toy corpus at ``root`` (local dir or s3:// prefix); returns ``root``.

    train.tsv: 3 good clips, a missing file, an undecodable file, a malformed line.
    test.tsv: 2 clips in a tar, one absent tar member, one clip that is too short.  empty.tsv: nothing.
    """
    files = {
        "audio/a.wav": encode_audio(synth(1.0, 16000, seed=1), 16000, "wav"),
        "audio/b.flac": encode_audio(synth(1.5, 44100, channels=2, seed=2), 44100, "flac"),
        "audio/c.mp3": encode_audio(synth(1.0, 24000, seed=3), 24000, "mp3"),
        "audio/bad.flac": b"fLaC" + b"\x00junk" * 40,
        "audio/short.wav": encode_audio(synth(0.2, 16000, seed=4), 16000, "wav"),
        "shard.tar": _tar_bytes({f"t{i}.opus": encode_audio(synth(1.0, 48000, seed=i), 48000, "opus")
                                 for i in range(2)}),
        "train.tsv": "a\taudio/a.wav\t1.0\nb\taudio/b.flac\t1.5\nc\taudio/c.mp3\t1.0\n"
                     "gone\taudio/gone.wav\t2.0\nbad\taudio/bad.flac\t3.0\nthis line is broken\n",
        "test.tsv": "t0\tshard.tar:t0.opus\t1.0\nt1\tshard.tar:t1.opus\t1.0\nt9\tshard.tar:t9.opus\t1.0\n"
                    "short\taudio/short.wav\t0.2\n",
        "empty.tsv": "",
    }
    for rel, data in files.items():
        storage.atomic_write_bytes(storage.join(root, rel), data.encode() if isinstance(data, str) else data)
    return root


GOOD = {"toy/a", "toy/b", "toy/c", "toy/t0", "toy/t1"}
REJECTED = {"toy/gone": "missing_file", "toy/bad": "undecodable", "toy/train/line6": "malformed_metadata",
            "toy/t9": "missing_file", "toy/short": "too_short"}


def _ingest(src: str, out: str, **kw) -> dict:
    config = IngestConfig(source="toy", input_uri=src, output_uri=out, **kw)
    return run_ingest(config, source=ToySource(src))


def _keys(out: str, kind: str = "records") -> list[str]:
    return sorted(read_table(out, kind).column("key").to_pylist())


def test_ingest_writes_records_rejects_markers_and_summary(tmp_path, ray_session):
    src, out = build_toy(str(tmp_path / "toy")), str(tmp_path / "out")
    seen = []
    summary = run_ingest(IngestConfig(source="toy", input_uri=src, output_uri=out),
                         on_partition=lambda p, t: seen.append((p, t.records)), source=ToySource(src))

    records = pads.dataset(str(tmp_path / "out" / "records"), format="parquet").to_table()
    rejects = pads.dataset(str(tmp_path / "out" / "rejects"), format="parquet").to_table()
    assert set(records.column("key").to_pylist()) == GOOD
    assert "audio" not in records.column_names  # no waveforms in the records
    assert dict(zip(rejects.column("key").to_pylist(), rejects.column("reason").to_pylist(), strict=True)) == REJECTED
    details = dict(zip(rejects.column("key").to_pylist(), rejects.column("detail").to_pylist(), strict=True))
    assert "gone.wav" in details["toy/gone"] and "t9.opus" in details["toy/t9"] and "bad.flac" in details["toy/bad"]

    by_key = {r.key: r for r in read_records(out)}
    assert by_key["toy/b"].duration_s == pytest.approx(1.5) and by_key["toy/b"].sample_rate == 44100
    assert by_key["toy/t0"].member == "t0.opus" and by_key["toy/t0"].sample_rate == 48000

    assert summary["records"] == 5 and summary["rejects"] == 5
    assert summary["seconds"] == pytest.approx(5.5)
    assert summary["rejects_by_reason"] == {"malformed_metadata": 1, "missing_file": 2, "too_short": 1,
                                            "undecodable": 1}
    assert summary["splits"]["train"]["records"] == 3 and summary["splits"]["test"]["rejects"] == 2
    assert summary["partitions"] == {"total": 3, "complete": 3, "partial": 0, "skipped": 0}
    assert json.loads(storage.read_bytes(OutputLayout(out).summary)) == summary
    assert sorted(p for p, _ in seen) == ["empty.tsv", "test.tsv", "train.tsv"]
    markers = sorted(Path(tmp_path / "out" / "_progress").glob("*.json"))
    assert len(markers) == 3 and all(json.loads(m.read_text())["complete"] for m in markers)
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_rerun_resumes_and_kill_then_rerun_has_no_duplicates(tmp_path, ray_session):
    src, out = build_toy(str(tmp_path / "toy")), str(tmp_path / "out")
    first = _ingest(src, out)
    again = _ingest(src, out)
    assert again["partitions"]["skipped"] == 3
    assert _keys(out) == sorted(GOOD) and again["records"] == first["records"]

    # a run killed while writing train.tsv: its marker never landed, its parts may or may not have
    layout = OutputLayout(out)
    storage.remove(layout.marker("train.tsv"))
    storage.remove(layout.part("records", "train.tsv"))
    resumed = _ingest(src, out)
    assert resumed["partitions"] == {"total": 3, "complete": 3, "partial": 0, "skipped": 2}
    assert _keys(out) == sorted(GOOD) and _keys(out, "rejects") == sorted(REJECTED)

    # marker gone but parts still there (killed between parts and marker): redone, overwritten, not doubled
    storage.remove(layout.marker("test.tsv"))
    _ingest(src, out)
    assert _keys(out) == sorted(GOOD) and _keys(out, "rejects") == sorted(REJECTED)

    # other settings: markers are not trusted and every partition is redone
    changed = _ingest(src, out, stage=AudioStageConfig(keep_audio=False, filters=AudioFilterConfig(min_duration_s=1.2)))
    assert changed["partitions"]["skipped"] == 0
    assert _keys(out) == ["toy/b"]


def test_limit_caps_rows_and_marks_the_cut_partition_partial(tmp_path, ray_session):
    src, out = build_toy(str(tmp_path / "toy")), str(tmp_path / "out")
    # partitions in sorted order: empty.tsv (0 rows), test.tsv (4 rows), train.tsv (6 rows)
    summary = _ingest(src, out, limit=6)
    assert _keys(out) == ["toy/a", "toy/b", "toy/t0", "toy/t1"]
    assert summary["partitions"] == {"total": 3, "complete": 1, "partial": 1, "skipped": 0}
    rest = _ingest(src, out)
    assert rest["partitions"]["skipped"] == 1
    assert _keys(out) == sorted(GOOD) and rest["records"] == 5


def test_duplicate_keys_in_a_partition_are_rejected(tmp_path, ray_session):
    src = build_toy(str(tmp_path / "toy"))
    for name in ("train.tsv", "test.tsv", "empty.tsv"):
        (tmp_path / "toy" / name).unlink()
    (tmp_path / "toy" / "dup.tsv").write_text("d\taudio/a.wav\t1.0\nd\taudio/c.mp3\t1.0\n")
    out = str(tmp_path / "out")
    summary = _ingest(src, out)
    assert _keys(out) == ["toy/d"] and summary["rejects_by_reason"] == {"duplicate_key": 1}


def test_windows_are_records(tmp_path, ray_session):
    src, out = build_toy(str(tmp_path / "toy")), str(tmp_path / "out")
    stage = AudioStageConfig(keep_audio=False, window_s=0.5, filters=AudioFilterConfig(min_duration_s=0.5))
    _ingest(src, out, stage=stage)
    keys = _keys(out)
    assert [k for k in keys if k.startswith("toy/b/")] == ["toy/b/w000", "toy/b/w001", "toy/b/w002"]
    b = {r.key: r for r in read_records(out)}
    assert [b[f"toy/b/w00{i}"].offset_s for i in range(3)] == [0.0, 0.5, 1.0]


def test_dry_run_decodes_nothing_and_writes_nothing(tmp_path, ray_session):
    src, out = build_toy(str(tmp_path / "toy")), str(tmp_path / "out")
    # every audio file is garbage now: a decoding run would reject them all
    for path in (tmp_path / "toy" / "audio").iterdir():
        path.write_bytes(b"not audio at all")
    config = IngestConfig(source="toy", input_uri=src, output_uri=out,
                          stage=AudioStageConfig(keep_audio=False, filters=AudioFilterConfig(min_duration_s=0.5)))
    summary = dry_run(config, source=ToySource(src))
    assert summary["dry_run"] and not Path(out).exists()
    # metadata rows: 9 records with durations, 1 malformed line; short.wav is too short by its metadata
    assert summary["records"] == 8 and summary["hours"] == pytest.approx(11.5 / 3600)
    assert summary["rejects_by_reason"] == {"malformed_metadata": 1, "too_short": 1}
    real = run_ingest(config, source=ToySource(src))
    assert real["records"] == 2  # the two opus clips in the untouched tar
    assert real["rejects_by_reason"]["undecodable"] == 5


def test_s3_to_s3(s3_bucket, ray_session):
    src, out = build_toy(f"{s3_bucket}/corpus"), f"{s3_bucket}/ingested"
    summary = _ingest(src, out)
    assert summary["records"] == 5
    fs, path = storage.pyarrow_filesystem(f"{out}/records")
    records = pads.dataset(path, format="parquet", filesystem=fs).to_table()
    assert set(records.column("key").to_pylist()) == GOOD
    assert records.column("audio_uri").to_pylist()[0].startswith(f"{s3_bucket}/corpus/")
    assert _keys(out, "rejects") == sorted(REJECTED)
    assert storage.exists(f"{out}/summary.json")
    assert _ingest(src, out)["partitions"]["skipped"] == 3


def test_real_manifest_source_end_to_end(tmp_path, ray_session):
    corpus = build_corpus("manifest", tmp_path)
    out = str(tmp_path / "out")
    summary = run_ingest(IngestConfig(source="manifest", input_uri=str(corpus / "nemo"), output_uri=out))
    records = list(read_records(out))
    assert records and all(r.duration_s and r.sample_rate for r in records)
    assert summary["records"] == len(records)
    assert {"missing_file", "malformed_metadata"} <= set(summary["rejects_by_reason"])
    first_part = next(r for r in records if r.audio_uri.endswith("a.wav"))
    assert (first_part.offset_s, first_part.duration_s) == (0.5, 1.0)  # the NeMo segment was cut


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_every_fixture_corpus_ingests(name, tmp_path, ray_session):
    """Each real source over its fixture corpus: records with measured audio, every drop explained."""
    corpus = build_corpus(name, tmp_path / "corpus")
    out = str(tmp_path / "out")
    summary = run_ingest(IngestConfig(source=name, input_uri=str(corpus), output_uri=out))
    records = list(read_records(out))
    assert summary["records"] == len(records) > 0
    assert all(r.duration_s and r.duration_s >= 0.5 and r.sample_rate for r in records)
    reasons = {reason.value for reason in RejectReason}
    rejects = read_table(out, "rejects").to_pylist()
    assert len(rejects) == summary["rejects"] and all(r["reason"] in reasons and r["detail"] for r in rejects)
    assert dry_run(IngestConfig(source=name, input_uri=str(corpus)))["records"] >= len(records)


def test_config_validation():
    with pytest.raises(ValueError, match="keep_audio"):
        IngestConfig(source="toy", input_uri="x", stage=AudioStageConfig(keep_audio=True))
    with pytest.raises(ValueError, match="limit"):
        IngestConfig(source="toy", input_uri="x", limit=0)
    assert ingest.partition_hash("a/b.tsv") == ingest.partition_hash("a/b.tsv") != ingest.partition_hash("a/c.tsv")
