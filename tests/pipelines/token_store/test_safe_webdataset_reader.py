"""Issue 14 item 9: the WebDataset reader documented in docs/formats.md (run verbatim from the doc) reads a
token store, and never unpickles a member: a shard carrying a ``.pyd`` payload is read without running it."""

from __future__ import annotations

import io
import pickle
import re
import tarfile
from pathlib import Path

import numpy as np
import webdataset as wds

from uniaudio.pipelines.token_store import iter_store

from .store_helpers import write_store

DOC = Path(__file__).resolve().parents[3] / "docs" / "formats.md"
UNPICKLED: list[str] = []


def _record_unpickling(what: str) -> str:
    UNPICKLED.append(what)
    return what


class _Payload:
    """What a tampered shard could carry: unpickling it calls a function (here it only leaves a trace)."""

    def __reduce__(self):
        return (_record_unpickling, ("payload ran",))


def _documented_reader() -> dict:
    text = DOC.read_text()
    block = re.search(r"<!-- safe-webdataset-reader -->\s*```python\n(.*?)```", text, re.S)
    assert block, "the safe reader is missing from docs/formats.md"
    code = "\n".join(line[2:] if line.startswith("  ") else line for line in block.group(1).splitlines())
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - the documented code, verbatim
    return namespace


def _append_member(shard: Path, name: str, data: bytes) -> None:
    with tarfile.open(shard, "a", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def test_documented_reader_reads_a_store_and_never_unpickles(tmp_path):
    store = tmp_path / "store"
    keys = write_store(str(store), n=4, per_shard=2)
    expected = {s.key: s for s in iter_store(str(store))}
    last_shard = store / "shard-000001.tar"
    _append_member(last_shard, f"{keys[-1]}.evil.pyd", pickle.dumps(_Payload()))  # adjacent to the last sample

    read_token_store = _documented_reader()["read_token_store"]
    UNPICKLED.clear()
    items = list(read_token_store(sorted(str(p) for p in store.glob("shard-*.tar"))))
    assert UNPICKLED == []  # the payload was carried as bytes and dropped
    assert [item["__key__"] for item in items] == keys
    for item in items:
        want = expected[item["__key__"]]
        assert item["reason"].dtype == np.uint16 and np.array_equal(item["reason"], want.reason)
        assert np.array_equal(item["recon"], want.recon)
        assert item["meta"] == want.meta
        assert "evil" not in item and "evil.pyd" not in item

    # What the documented reader avoids: the library's default decoders unpickle the same member.
    list(wds.WebDataset([str(last_shard)], shardshuffle=False, empty_check=False).decode())
    assert UNPICKLED == ["payload ran"]
    # (uniaudio's own reader refuses the unknown member outright: StoreReadError.)
