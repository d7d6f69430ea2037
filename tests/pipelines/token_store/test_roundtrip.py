"""Token store round trips: local and S3 (moto), plain iterator, webdataset, tar, Ray Data."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import numpy as np
import pytest
import webdataset as wds

from uniaudio.core import storage
from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.token_store import (
    DuplicateKeyError,
    TokenStoreWriter,
    iter_store,
    read_index,
    read_store_ray,
    validate_store,
)
from uniaudio.testing.tokens import TEST_CODEC, random_sample

from .store_helpers import write_store


def _expected(keys):
    return {k: random_sample(k, duration_s=1.0 + 0.37 * i, seed=i, text=f"words {i}") for i, k in enumerate(keys)}


def _assert_same(samples, keys):
    expected = _expected(keys)
    got = {s.key: s for s in samples}
    assert sorted(got) == sorted(keys)
    for key, exp in expected.items():
        assert np.array_equal(got[key].reason, exp.reason)
        assert got[key].reason.dtype == np.uint16
        assert np.array_equal(got[key].recon, exp.recon)
        assert got[key].meta == exp.meta


def test_local_round_trip_and_index(local_store):
    store, keys = local_store
    assert sorted(p.name for p in store.glob("shard-*.tar")) == [f"shard-00000{i}.tar" for i in range(3)]
    index = read_index(str(store))
    assert [s.samples for s in index.shards] == [5, 5, 2]
    assert index.totals["samples"] == 12
    assert index.codec["fingerprint"] == TEST_CODEC["fingerprint"]
    assert index.totals["duration_s"] == pytest.approx(sum(1.0 + 0.37 * i for i in range(12)), abs=1e-3)
    assert index.shards[0].sources == {"src": 5}
    _assert_same(iter_store(str(store)), keys)
    assert validate_store(str(store)) == []


def test_members_adjacent_and_readable_with_tar_and_numpy(local_store):
    store, _ = local_store
    names = subprocess.run(["tar", "tf", str(store / "shard-000000.tar")], check=True, capture_output=True,
                           text=True).stdout.split()
    assert names[:3] == ["src/utt_000.reason.npy", "src/utt_000.recon.npy", "src/utt_000.json"]
    with tarfile.open(store / "shard-000000.tar") as tar:
        arr = np.load(io.BytesIO(tar.extractfile("src/utt_000.recon.npy").read()), allow_pickle=False)
        meta = json.loads(tar.extractfile("src/utt_000.json").read())
    assert arr.shape == (8, int(1.0 * 12.5) + 1) and meta["origin"]["audio_uri"].endswith("utt_000.wav")


def test_plain_webdataset_library_reads_the_store(local_store):
    store, keys = local_store
    urls = [str(p) for p in sorted(store.glob("shard-*.tar"))]
    rows = list(wds.WebDataset(urls, shardshuffle=False))
    assert [r["__key__"] for r in rows] == keys
    first = rows[0]
    assert set(first) >= {"reason.npy", "recon.npy", "json"}
    assert np.load(io.BytesIO(first["reason.npy"]), allow_pickle=False).dtype == np.uint16


def test_ray_dataset_reads_the_store(local_store, ray_session):
    store, keys = local_store
    rows = read_store_ray(str(store)).take_all()
    assert sorted(r["key"] for r in rows) == keys
    row = next(r for r in rows if r["key"] == keys[3])
    exp = _expected(keys)[keys[3]]
    assert np.array_equal(np.asarray(row["reason"]), exp.reason)
    assert json.loads(row["json"])["text"] == "words 3"


def test_s3_round_trip(s3_bucket, ray_session):
    uri = f"{s3_bucket}/tokens/run1"
    keys = write_store(uri, n=7, per_shard=3)
    assert [u.rsplit("/", 1)[-1] for u in storage.glob(uri, "shard-*.tar")] == [
        "shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    _assert_same(iter_store(uri), keys)
    assert validate_store(uri) == []
    assert sorted(r["key"] for r in read_store_ray(uri).take_all()) == keys


def test_byte_cap_closes_shards(tmp_path):
    limits = ShardLimits(max_samples=1000, max_bytes=4096)
    with TokenStoreWriter(str(tmp_path), TEST_CODEC, limits) as w:
        for i in range(6):
            w.write(random_sample(f"a/k{i}", 10.0, seed=i))
    index = read_index(str(tmp_path))
    assert len(index.shards) > 1
    assert all(s.bytes < 4096 + 8192 for s in index.shards)
    assert index.totals["samples"] == 6


def test_duplicate_and_dotted_keys_are_refused(tmp_path):
    with TokenStoreWriter(str(tmp_path), TEST_CODEC) as w:
        w.write(random_sample("a/k1", 1.0))
        with pytest.raises(DuplicateKeyError, match="a/k1"):
            w.write(random_sample("a/k1", 1.0))
    with pytest.raises(ValueError, match="no dots"):
        random_sample("a/k1.wav", 1.0)


def test_extra_fields_round_trip(tmp_path):
    feats = np.random.default_rng(0).standard_normal((13, 16)).astype(np.float16)
    with TokenStoreWriter(str(tmp_path), TEST_CODEC) as w:
        w.write(random_sample("a/k1", 1.0, extras={"wavlm": feats}))
    (sample,) = iter_store(str(tmp_path))
    assert np.array_equal(sample.extras["wavlm"], feats)
    assert validate_store(str(tmp_path)) == []
