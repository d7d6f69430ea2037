"""A writer killed mid-shard leaves no visible partial shard, and re-running completes the store."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.token_store import TokenStoreWriter, iter_store, validate_store
from uniaudio.testing.tokens import TEST_CODEC, random_sample

KEYS = [f"src/k{i:02d}" for i in range(23)]

WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from uniaudio.pipelines.token_store import TokenStoreWriter
    from uniaudio.core.shard_file import ShardLimits
    from uniaudio.testing.tokens import TEST_CODEC, random_sample
    store, kill_after = sys.argv[1], int(sys.argv[2])
    w = TokenStoreWriter(store, TEST_CODEC, ShardLimits(max_samples=5))
    for i in range(23):
        key = f"src/k{i:02d}"
        if key in w.committed_keys:
            continue
        w.write(random_sample(key, 1.0, seed=i))
        if i == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    w.close()
    """
)


def _run_writer(store, kill_after: int) -> int:
    return subprocess.run([sys.executable, "-c", WRITER, str(store), str(kill_after)]).returncode


def test_killed_writer_leaves_no_partial_shard_and_rerun_completes(tmp_path):
    store = tmp_path / "store"
    assert _run_writer(store, kill_after=12) != 0  # killed while shard 2 (samples 10..14) was open
    visible = sorted(p.name for p in store.iterdir() if not p.name.startswith("."))
    assert visible == ["_journal", "shard-000000.tar", "shard-000001.tar"]  # no index, no shard-000002.tar
    assert validate_store(str(store))[0].message.startswith(f"{store / 'index.json'} does not exist")
    assert [s.key for s in iter_store(str(store), allow_partial=True)] == KEYS[:10]

    assert _run_writer(store, kill_after=-1) == 0  # re-run resumes
    assert validate_store(str(store)) == []
    assert [s.key for s in iter_store(str(store))] == KEYS
    assert not [p for p in store.iterdir() if p.name.startswith(".")]  # staging leftovers cleaned


def test_shard_without_journal_entry_is_rewritten(tmp_path):
    store = tmp_path / "store"
    with TokenStoreWriter(str(store), TEST_CODEC, ShardLimits(max_samples=2)) as w:
        for i in range(4):
            w.write(random_sample(f"src/k{i:02d}", 1.0, seed=i))
    # a crash after a shard upload but before its journal entry: the shard must not count
    (store / "_journal" / "shard-000001.json").unlink()
    (store / "index.json").unlink()
    w = TokenStoreWriter(str(store), TEST_CODEC, ShardLimits(max_samples=2))
    assert not (store / "shard-000001.tar").exists()
    assert len(w.committed_keys) == 2 and "src/k00" in w.committed_keys and "src/k01" in w.committed_keys
    assert "src/k02" not in w.committed_keys
    for i in range(2, 4):
        w.write(random_sample(f"src/k{i:02d}", 1.0, seed=i))
    w.close()
    assert validate_store(str(store)) == []
    assert [s.key for s in iter_store(str(store))] == [f"src/k{i:02d}" for i in range(4)]


def test_resuming_with_another_codec_is_refused(tmp_path):
    with TokenStoreWriter(str(tmp_path), TEST_CODEC) as w:
        w.write(random_sample("src/a", 1.0))
    other = {**TEST_CODEC, "fingerprint": "different"}
    with pytest.raises(ValueError, match="fingerprint"):  # a store must not mix codecs
        TokenStoreWriter(str(tmp_path), other)
