"""A normal run's console shows uniaudio's progress and summary, not Ray's own lines (issue 9).

Runs the real ``uniaudio`` executable in a fresh process (its own embedded Ray), as a user would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from uniaudio.testing.corpora import build_corpus

RAY_LINE = re.compile(r"core_worker\.cc|raylet|\bWARNING\b|\(\w+ pid=\d+\)|^\[\d{4}-\d\d-\d\d .* [EWI] \d+ \d+\]", re.M)


def test_shards_build_console_has_no_ray_lines(tmp_path):
    corpus = build_corpus("librispeech", tmp_path / "corpora")
    out = tmp_path / "tokens"
    exe = Path(sys.executable).with_name("uniaudio")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAY_ADDRESS"))}
    done = subprocess.run([str(exe), "shards", "build", "librispeech", str(corpus), str(out), "--codec", "tiny"],
                          capture_output=True, text=True, env=env, timeout=600)
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    assert not RAY_LINE.search(console), console
    log = out / "_logs" / "ray.log"
    assert log.is_file()
    assert f"Ray's own log lines: {log}" in console.replace("\n", "")
