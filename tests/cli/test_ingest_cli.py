"""`uniaudio sources list` and `uniaudio ingest` through typer's CliRunner, on the real manifest source."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as pads
from typer.testing import CliRunner

from uniaudio.cli.main import app
from uniaudio.pipelines.sources import get_source, source_names
from uniaudio.testing.corpora import build_corpus

runner = CliRunner()


def test_sources_list_names_every_source_and_its_layouts():
    result = runner.invoke(app, ["sources", "list"])
    assert result.exit_code == 0, result.output
    for name in source_names():
        assert name in result.output
        assert get_source(name).layouts[0][:40] in result.output


def test_ingest_then_rerun_resumes(tmp_path, ray_session):
    corpus = build_corpus("manifest", tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["ingest", "manifest", str(corpus / "kaldi"), str(out), "--min-duration", "0.5"])
    assert result.exit_code == 0, result.output
    assert "records by split" in result.output and "rejects by reason" in result.output
    assert "missing_file" in result.output

    records = pads.dataset(str(out / "records"), format="parquet").to_table()
    rejects = pads.dataset(str(out / "rejects"), format="parquet").to_table()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == records.num_rows == 3  # utt1..utt3; utt4's recording is missing
    assert rejects.column("reason").to_pylist() == ["missing_file"]

    again = runner.invoke(app, ["ingest", "manifest", str(corpus / "kaldi"), str(out)])
    assert again.exit_code == 0, again.output
    assert "already done" in again.output
    assert pads.dataset(str(out / "records"), format="parquet").to_table().num_rows == 3


def test_dry_run_counts_metadata_and_decodes_nothing(tmp_path, ray_session):
    corpus = build_corpus("manifest", tmp_path)
    for path in (corpus / "audio").iterdir():  # nothing here can be decoded any more
        path.write_bytes(b"\x00" * 64)
    out = tmp_path / "out"
    args = ["ingest", "manifest", str(corpus / "kaldi"), str(out)]
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and not out.exists()
    assert "│ total │       3 │ 0.0009 │" in dry.output.replace("[bold]", "")  # 3 records, 3.25 s of segments

    real = runner.invoke(app, args)
    assert real.exit_code == 0, real.output
    assert json.loads((out / "summary.json").read_text())["rejects_by_reason"]["undecodable"] == 3


def test_limit_and_options(tmp_path, ray_session):
    corpus = build_corpus("manifest", tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["ingest", "manifest", str(corpus / "nemo"), str(out), "--limit", "2",
                                 "-o", "name=mine", "--window", "0.5"])
    assert result.exit_code == 0, result.output
    keys = sorted(pads.dataset(str(out / "records"), format="parquet").to_table().column("key").to_pylist())
    # the first two manifest lines, 1 s each, in 0.5 s windows
    assert len(keys) == 4 and all(key.startswith("manifest/mine/") and "/w00" in key for key in keys)
    assert json.loads((out / "summary.json").read_text())["partitions"]["partial"] == 1


def test_bad_arguments(tmp_path):
    result = runner.invoke(app, ["ingest", "nope", str(tmp_path), str(tmp_path / "o")])
    assert result.exit_code != 0 and "unknown source" in result.output
    result = runner.invoke(app, ["ingest", "manifest", str(tmp_path / "empty"), str(tmp_path / "o"), "-o", "x"])
    assert result.exit_code != 0 and "KEY=VALUE" in result.output
    Path(tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["ingest", "manifest", str(tmp_path / "empty"), str(tmp_path / "o")])
    assert result.exit_code == 2 and "error" in result.output
