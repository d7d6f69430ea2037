"""The one key rule (core/keys.py): make_key always returns keys the stores accept."""

from __future__ import annotations

import pytest

from uniaudio.core.keys import MAX_KEY_LEN, check_key, key_problem, make_key
from uniaudio.core.ustar import tar_header
from uniaudio.pipelines.records import AudioRecord


def _storable(key: str) -> None:
    check_key(key)
    for field in ("reason.npy", "distill_wavlm.npy", "json"):
        tar_header(f"{key}.{field}", 1)  # fits ustar


def test_verbatim_ids_stay_readable_and_unmarked():
    key = make_key("audioset", "--PJHxphWEs_30000")
    assert key == "audioset/--PJHxphWEs_30000" and key.original is None
    assert make_key("mls", "en", "a.b c") == "mls/en/a_b_c"
    assert make_key("m", "dir/sub/utt") == "m/dir/sub/utt"


@pytest.mark.parametrize("ids", [
    ("https://example.com/a/b.wav",),       # a URL in an HF id column: '//' is an empty component
    ("",), ("   ",), ("///",),
    ("x" * 300,),                          # one long id
    ("d" * 120, "e" * 120),                # long directory part
    ("ok", "y" * 90),                      # last component too long for a ustar name
    ("ä" * 80, "ü"),
])
def test_unusable_ids_are_mapped_deterministically(ids):
    key = make_key("hf", *ids)
    _storable(key)
    assert key.original == tuple(ids)
    assert make_key("hf", *ids) == key  # stable across runs
    assert len(key) <= MAX_KEY_LEN


def test_mapped_ids_differ_and_keep_a_readable_prefix():
    a = make_key("hf", "https://example.com/a/one.wav")
    b = make_key("hf", "https://example.com/a/two.wav")
    assert a != b and a.startswith("hf/https_example_com")
    assert make_key("hf", "x" * 300).startswith("hf/xxxx")


def test_original_id_lands_in_record_metadata():
    record = AudioRecord(key=make_key("hf", "ds", "https://h/x.wav"), source="hf", audio_uri="/a.wav", meta={"k": 1})
    assert record.meta == {"k": 1, "original_id": ["ds", "https://h/x.wav"]}
    assert type(record.key) is str
    plain = AudioRecord(key=make_key("hf", "ds", "x"), source="hf", audio_uri="/a.wav")
    assert plain.meta == {}


def test_check_key_names_the_reason():
    assert key_problem("a//b") is not None
    assert "ustar" in key_problem("a/" + "b" * 70)
    with pytest.raises(ValueError, match="invalid sample key"):
        check_key("a.b")
    with pytest.raises(ValueError, match="namespace"):
        make_key("bad/source", "x")
