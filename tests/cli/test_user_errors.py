"""Issue 14 item 8: user mistakes get a message and exit status 2, real bugs keep their traceback;
``--force`` refuses unsafe targets; ``shards inspect`` reads only the shard holding the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from uniaudio.cli.main import app
from uniaudio.pipelines import build
from uniaudio.pipelines.output_guard import UnsafeForceError, check_force_target
from uniaudio.testing.corpora import build_corpus

from ..pipelines.token_store.store_helpers import write_store

runner = CliRunner()


@pytest.fixture(scope="module")
def kaldi(tmp_path_factory) -> str:
    return str(build_corpus("manifest", tmp_path_factory.mktemp("corpus")) / "kaldi")


def _refused(result, *needles: str) -> None:
    """Exit 2 with a message (no exception escaped, no traceback printed) containing ``needles``."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    text = " ".join(result.output.replace("│", " ").split())  # rich's error box, unwrapped
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text, text


@pytest.mark.parametrize("command", ["ingest", "shards build"])
@pytest.mark.parametrize(
    ("options", "needles"),
    [
        (["--window", "0"], ["--window", "must be positive"]),
        (["--min-window", "1"], ["--min-window", "needs --window"]),
        (["--min-duration", "5", "--max-duration", "1"], ["--min-duration 5.0 exceeds --max-duration 1.0"]),
    ],
)
def test_inconsistent_audio_options_are_a_message(command, options, needles, kaldi, tmp_path):
    out = tmp_path / "out"
    _refused(runner.invoke(app, [*command.split(), "manifest", kaldi, str(out), *options]), *needles)
    assert not out.exists()  # refused before anything ran


@pytest.mark.parametrize("command", ["ingest", "shards build"])
@pytest.mark.parametrize("option", ["--records-per-pass", "--partitions-per-pass"])
def test_pass_sizes_below_one_are_a_message(command, option, kaldi, tmp_path):
    out = tmp_path / "out"
    _refused(runner.invoke(app, [*command.split(), "manifest", kaldi, str(out), option, "0"]),
             option, "greater than or equal to 1")
    assert not out.exists()


@pytest.mark.parametrize("command", ["stats", "inspect", "validate"])
def test_shards_commands_on_a_missing_store_are_a_message(command, tmp_path):
    args = ["shards", command, str(tmp_path / "nowhere")] + (["src/utt_000"] if command == "inspect" else [])
    _refused(runner.invoke(app, args), "no token store at", "nowhere")


def test_force_refuses_an_output_holding_the_input(kaldi):
    corpus = str(Path(kaldi).parent)
    result = runner.invoke(app, ["shards", "build", "manifest", kaldi, corpus, "--force"])
    _refused(result, "--force would delete the input")
    assert Path(kaldi).is_dir() and any(Path(kaldi).iterdir())  # nothing deleted


def test_force_refuses_a_directory_that_is_not_a_store(kaldi, tmp_path):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("years of work")
    result = runner.invoke(app, ["shards", "build", "manifest", kaldi, str(out), "--force"])
    _refused(result, "chapter1.tex", "which no uniaudio output holds")
    assert (out / "chapter1.tex").read_text() == "years of work"


def test_force_refuses_a_bucket_root_and_roots(kaldi):
    with pytest.raises(UnsafeForceError, match="whole bucket"):
        check_force_target("s3://my-bucket", kaldi)
    with pytest.raises(UnsafeForceError, match="whole bucket"):
        check_force_target("s3://my-bucket/", kaldi)
    with pytest.raises(UnsafeForceError, match="give the output directory itself"):
        check_force_target("/", kaldi)
    with pytest.raises(UnsafeForceError, match="input"):
        check_force_target(str(Path(kaldi).parent / "."), kaldi)


def test_inspect_reads_only_the_shard_holding_the_key(tmp_path):
    store = tmp_path / "store"
    keys = write_store(str(store), n=6, per_shard=2)  # shard-000000..000002, two samples each
    for other in ("shard-000000.tar", "shard-000002.tar"):
        (store / other).write_bytes(b"\x00" * 1024)  # unreadable: reading it would fail the command
    result = runner.invoke(app, ["shards", "inspect", str(store), keys[3]])
    assert result.exit_code == 0, result.output
    assert keys[3] in result.output and "reason" in result.output


def test_a_bug_inside_shards_build_keeps_its_traceback(kaldi, tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise ValueError("an internal bug, not a user mistake")

    monkeypatch.setattr(build, "check_settings", broken)
    result = runner.invoke(app, ["shards", "build", "manifest", kaldi, str(tmp_path / "out")])
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError) and "internal bug" in str(result.exception)
    assert "error:" not in result.output  # not reported as if the user had made a mistake


def test_a_negative_shard_writer_count_is_a_message(kaldi, tmp_path):
    result = runner.invoke(app, ["shards", "build", "manifest", kaldi, str(tmp_path / "out"), "--shard-writers", "-1"])
    _refused(result, "--shard-writers")
