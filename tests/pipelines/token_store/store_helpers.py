"""Building and tampering with small token stores for the store tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.token_store import TokenStoreWriter
from uniaudio.testing.tokens import TEST_CODEC, random_sample


def write_store(uri: str, n: int = 12, per_shard: int = 5, source: str = "src") -> list[str]:
    keys = [f"{source}/utt_{i:03d}" for i in range(n)]
    with TokenStoreWriter(uri, TEST_CODEC, ShardLimits(max_samples=per_shard)) as writer:
        for i, key in enumerate(keys):
            writer.write(random_sample(key, duration_s=1.0 + 0.37 * i, seed=i, text=f"words {i}"))
    return keys


def reindex(store: Path) -> None:
    """Make index.json's sizes and hashes agree with the tars again (isolates one injected fault)."""
    index_path = store / "index.json"
    index = json.loads(index_path.read_text())
    for shard in index["shards"]:
        data = (store / shard["name"]).read_bytes()
        shard["bytes"] = len(data)
        shard["sha256"] = hashlib.sha256(data).hexdigest()
    index_path.write_text(json.dumps(index))
