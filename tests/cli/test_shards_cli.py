"""`uniaudio shards validate|stats|inspect` and the root help, through typer's CliRunner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from uniaudio.cli.main import app

from ..pipelines.token_store.store_helpers import write_store

runner = CliRunner()


def test_root_help_lists_command_groups():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("sources", "ingest", "shards", "codec", "model", "sentences"):
        assert group in result.output


def test_validate_exit_codes(tmp_path):
    store = tmp_path / "store"
    write_store(str(store), n=6, per_shard=4)
    ok = runner.invoke(app, ["shards", "validate", str(store)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output and "6 samples" in ok.output

    index = json.loads((store / "index.json").read_text())
    index["shards"][0]["samples"] = 99
    (store / "index.json").write_text(json.dumps(index))
    (store / "shard-000001.tar").unlink()
    bad = runner.invoke(app, ["shards", "validate", str(store)])
    assert bad.exit_code == 1
    assert "2 problem(s)" in bad.output
    assert "shard-000000.tar: holds 4 samples, index says 99" in bad.output
    assert "shard-000001.tar: listed in index.json but missing" in bad.output


def test_stats_table_json_and_plot(tmp_path):
    store = tmp_path / "store"
    write_store(str(store), n=4, per_shard=10, source="alpha")
    write_store(str(tmp_path / "other"), n=1)
    plot = tmp_path / "durations.png"
    result = runner.invoke(app, ["shards", "stats", str(store), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "alpha" in result.output and "TOTAL" in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    as_json = runner.invoke(app, ["shards", "stats", str(store), "--json"])
    numbers = json.loads(as_json.output)
    durations = [1.0 + 0.37 * i for i in range(4)]
    assert numbers["alpha"]["samples"] == 4
    assert numbers["alpha"]["hours"] == round(sum(durations) / 3600, 6)
    assert numbers["alpha"]["reason_tokens"] == sum(8 * (int(d * 5) + 1) for d in durations)
    assert numbers["alpha"]["recon_tokens"] == sum(8 * (int(d * 12.5) + 1) for d in durations)


def test_inspect_prints_metadata_and_tokens(tmp_path):
    store = tmp_path / "store"
    write_store(str(store), n=3)
    result = runner.invoke(app, ["shards", "inspect", str(store), "src/utt_001"])
    assert result.exit_code == 0, result.output
    assert '"text": "words 1"' in result.output
    assert "reason uint16 (8, 7)" in result.output and "recon uint16 (8, 18)" in result.output
    missing = runner.invoke(app, ["shards", "inspect", str(store), "src/nope"])
    assert missing.exit_code == 1 and "not found" in missing.output


def test_build_then_rerun_skips(tmp_path):
    from uniaudio.testing.corpora import build_corpus

    corpus = build_corpus("librispeech", tmp_path / "corpora")
    out = tmp_path / "tokens"
    args = ["shards", "build", "librispeech", str(corpus), str(out), "--codec", "tiny", "--max-shard-samples", "1"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "store: 2 shards, 2 samples" in first.output and "missing_file" in first.output
    assert runner.invoke(app, ["shards", "validate", str(out)]).exit_code == 0
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "(1 skipped as already done)" in second.output and "this run: 0 samples" in second.output


def test_build_rejects_unknown_source_and_options(tmp_path):
    bad = runner.invoke(app, ["shards", "build", "nope", str(tmp_path), str(tmp_path / "o")])
    assert bad.exit_code == 2 and "unknown source 'nope'" in bad.output
    opt = runner.invoke(app, ["shards", "build", "librispeech", str(tmp_path), str(tmp_path / "o"), "-o", "x=1"])
    assert opt.exit_code == 2 and "unknown option(s) ['x']" in opt.output
