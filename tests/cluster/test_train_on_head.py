"""`uniaudio train --ray-address` against a real Ray head (see conftest.py): a short stage-3 run of the tiny
model on one CPU worker of the head, consolidated at the end."""

from __future__ import annotations

import json

from uniaudio.model.checkpoint import load_checkpoint
from uniaudio.testing.sentence_stores import write_random_store


def test_train_runs_on_the_head(ray_head, tmp_path):
    store = write_random_store(str(tmp_path / "text"), "text-only", 6, 3)
    out = tmp_path / "run"
    sets = ["context=96", "batch.rows=2", "batch.tokens_per_step=192", "steps=2", "log_every=1"]
    result = ray_head.uniaudio("train", "--stage", "3", "--data", store, "--output", str(out), "--workers", "1",
                               "--ray-address", ray_head.gcs_address, *[a for s in sets for a in ("--set", s)])
    assert result.returncode == 0, result.stdout + result.stderr + ray_head.log()
    assert "stage 3 done: step 2" in result.stdout
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert load_checkpoint(str(out)).config.name == "tiny"
    # the run went to the head: its Ray session holds the training worker's logs, ours holds none of them
    worker = json.loads((out / "_workers" / "rank0000.json").read_text())
    assert any(str(worker["pid"]) in p.name for p in ray_head.temp_dir.rglob("worker-*"))
