"""KeySet: the compact key set behind exactly-once writes (membership as a Python set would answer it)."""

from __future__ import annotations

import random

import pytest

from uniaudio.core.key_set import KeySet


@pytest.mark.parametrize("buffer", [1, 7, 65_536])
def test_membership_matches_a_python_set_across_merges(buffer):
    rng = random.Random(buffer)
    keys = [f"src/{rng.randrange(5000):05d}/utt-{i % 300}" for i in range(4000)]
    expected: set[str] = set()
    found = KeySet(keys[:500], buffer=buffer)
    expected.update(keys[:500])
    for key in keys[500:]:
        assert (key in found) == (key in expected), key
        found.add(key)
        expected.add(key)
        assert key in found
    assert len(found) == len(expected)
    probes = [f"src/{i:05d}/utt-{j}" for i in range(0, 5000, 37) for j in (0, 299, 300)]
    assert [p in found for p in probes] == [p in expected for p in probes]
    assert 17 not in found and "" not in found


def test_buffer_must_be_positive():
    with pytest.raises(ValueError, match="buffer"):
        KeySet(buffer=0)
