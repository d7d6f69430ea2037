"""`uniaudio demo` end to end at a reduced size: every stage runs, the report names every stage, and a second
run reuses what is complete."""

from __future__ import annotations

from typer.testing import CliRunner

from uniaudio.cli.main import app


def test_demo_end_to_end_and_resume(tmp_path):
    runner = CliRunner()
    workdir = tmp_path / "demo"
    args = ["demo", "--workdir", str(workdir), "--train-steps", "2", "--train-workers", "1"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    report = (workdir / "report.md").read_text()
    for stage in ("Token stores", "Sentence stores", "Training", "Evaluation", "shards build", "sentences build",
                  "train stage 4", "eval tokens-asr"):
        assert stage in report, stage
    assert "not built" not in report
    assert (workdir / "report.html").read_text().startswith("<!doctype html>")
    for png in ("sources", "sentences", "lengths", "losses", "eval"):
        assert (workdir / "figures" / f"{png}.png").stat().st_size > 1000
    for stage in range(1, 5):
        assert (workdir / "train" / f"stage{stage}" / "model.safetensors").is_file()

    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "reused from an earlier run" in second.output
    assert "sentences build asr: reused" in second.output and "train stage 4: reused" in second.output
