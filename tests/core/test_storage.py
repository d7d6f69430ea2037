"""URI storage on local paths and on the moto S3 server."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uniaudio.core import storage


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue("s3_bucket") + "/root"


def test_write_read_list_glob_remove(root):
    storage.atomic_write_bytes(storage.join(root, "a", "x.json"), b"{}")
    storage.atomic_write_bytes(storage.join(root, "a", "b", "y.bin"), b"\x00" * 10)
    storage.atomic_write_bytes(storage.join(root, "a", "x.json"), b'{"v": 2}')  # overwrite
    assert storage.read_bytes(storage.join(root, "a", "x.json")) == b'{"v": 2}'
    assert storage.size(storage.join(root, "a", "b", "y.bin")) == 10
    assert [u.rsplit("/", 1)[-1] for u in storage.list_dir(storage.join(root, "a"))] == ["b", "x.json"]
    found = storage.glob(root, "**/*.bin")
    assert found == [storage.join(root, "a", "b", "y.bin")]
    assert all(u.startswith("s3://") for u in found) == root.startswith("s3://")
    storage.remove(storage.join(root, "a", "b"))
    assert not storage.exists(storage.join(root, "a", "b", "y.bin"))
    assert storage.list_dir(storage.join(root, "nothing-here")) == []


def test_local_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "d" / "f.txt"
    storage.atomic_write_bytes(str(target), b"hello")
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_staging_file_is_moved_whole(root):
    dest = storage.join(root, "shard.tar")
    with storage.local_staging_file(dest, suffix=".tar") as tmp:
        tmp.write_bytes(b"payload")
        assert not storage.exists(dest)  # nothing visible until the upload/rename
        storage.atomic_upload(tmp, dest)
    assert storage.read_bytes(dest) == b"payload"


def test_pyarrow_filesystem_reads_what_fsspec_wrote(root):
    table = pa.table({"k": ["a", "b"], "v": [1, 2]})
    uri = storage.join(root, "t.parquet")
    with storage.open_uri(uri, "wb") as f:
        pq.write_table(table, f)
    fs, path = storage.pyarrow_filesystem(uri)
    assert pq.read_table(path, filesystem=fs).equals(table)


def test_s3_options_come_from_env_and_overrides(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    opts = storage.S3Options.from_env()
    assert (opts.endpoint_url, opts.region, opts.access_key) == ("http://127.0.0.1:9", "eu-west-1", "id")
    assert opts.merged(region="us-west-2").region == "us-west-2"
    assert opts.as_env()["AWS_SECRET_ACCESS_KEY"] == "secret"


def test_join_and_scheme_helpers():
    assert storage.join("s3://b/p/", "x", "/y") == "s3://b/p/x/y"
    assert storage.strip_scheme("s3://b/k") == "b/k"
    assert storage.strip_scheme("file:///tmp/x") == "/tmp/x"
    assert storage.is_remote("s3://b") and not storage.is_remote("/tmp/x")
