"""`uniaudio train --ray-address` against the real Ray head of conftest.py (shared with the jobs tests): a
two-step stage-3 run of the tiny model on one CPU worker of the head, checkpointed and consolidated.

The command runs as a subprocess given the head's address; its driver must show up as a job of the head's
cluster, and its training worker in the head's own session logs.
"""

from __future__ import annotations

import json

from uniaudio.model.checkpoint import load_checkpoint
from uniaudio.testing.sentence_stores import write_random_store
from uniaudio.train.checkpoints import find_checkpoint, read_train_state
from uniaudio.train.metrics import read_metrics

SETS = ("context=96", "batch.rows=2", "batch.tokens_per_step=192", "steps=2", "log_every=1", "max_failures=0")


def test_train_runs_on_the_head(ray_head, tmp_path):
    from pathlib import Path

    from ray.job_submission import JobSubmissionClient

    store = write_random_store(str(tmp_path / "text"), "text-only", 4, 4)
    out = tmp_path / "run"
    result = ray_head.uniaudio("train", "--stage", "3", "--data", store, "--output", str(out), "--workers", "1",
                               "--ray-address", ray_head.gcs_address, *[a for s in SETS for a in ("--set", s)])
    assert result.returncode == 0, result.stdout + result.stderr + ray_head.log()
    assert "stage 3 done: step 2" in result.stdout
    assert [r["step"] for r in read_metrics(str(out))] == [1, 2]
    assert read_train_state(Path(find_checkpoint(str(out))))["step"] == 2
    assert load_checkpoint(str(out)).config.name == "tiny"
    # the command's driver was a job of the head's cluster, its worker a process of the head's session
    drivers = [j for j in JobSubmissionClient(ray_head.api_url).list_jobs()
               if j.type.value == "DRIVER" and str(out) in (j.entrypoint or "")]
    assert len(drivers) == 1 and drivers[0].status.value == "SUCCEEDED"
    worker = json.loads((out / "_workers" / "rank0000.json").read_text())
    assert any(p.name.endswith(f"-{worker['pid']}.out") for p in ray_head.temp_dir.rglob("worker-*"))
