"""Passes sized in records (:mod:`uniaudio.pipelines.passes`): the plan alone; the pipelines' use of it is
in tests/pipelines/test_scale.py."""

from __future__ import annotations

import pytest

from uniaudio.pipelines.passes import FIRST_PASS_PARTITIONS, Passes, PassSize

PARTITIONS = [f"p{i:03d}" for i in range(100)]


def _sizes(passes: Passes, rows_per_partition: int) -> list[int]:
    """Pass sizes when every partition finishes with ``rows_per_partition`` rows."""
    sizes = []
    for batch in passes:
        sizes.append(len(batch))
        for _ in batch:
            passes.finished(rows_per_partition)
    return sizes


def test_a_fixed_number_of_partitions_ignores_records():
    assert _sizes(Passes(PARTITIONS, PassSize(records=1, partitions=30)), 1000) == [30, 30, 30, 10]


def test_passes_after_the_first_hold_about_records_per_pass():
    sizes = _sizes(Passes(PARTITIONS, PassSize(records=1000)), rows_per_partition=100)
    assert sizes[0] == FIRST_PASS_PARTITIONS and set(sizes[1:-1]) == {10} and sum(sizes) == len(PARTITIONS)


def test_partitions_finished_by_earlier_runs_size_the_first_pass():
    passes = Passes(PARTITIONS, PassSize(records=1000), known=[250, 250])
    assert next(iter(passes)) == PARTITIONS[:4]


def test_a_partition_larger_than_a_pass_is_a_pass_of_its_own_and_empty_ones_do_not_divide_by_zero():
    assert set(_sizes(Passes(PARTITIONS, PassSize(records=10)), rows_per_partition=5000)[1:]) == {1}
    assert _sizes(Passes(PARTITIONS, PassSize(records=40)), rows_per_partition=0)[:2] == [FIRST_PASS_PARTITIONS, 40]


def test_every_partition_is_in_exactly_one_pass_in_order():
    passes = Passes(PARTITIONS, PassSize(records=7))
    seen = []
    for rows, batch in enumerate(passes):
        seen += batch
        for _ in batch:
            passes.finished(rows + 1)  # partitions growing from pass to pass: passes shrink
    assert seen == PARTITIONS


@pytest.mark.parametrize(("records", "partitions", "message"), [(0, None, "records_per_pass"),
                                                                  (10, 0, "partitions_per_pass")])
def test_sizes_below_one_are_refused(records, partitions, message):
    with pytest.raises(ValueError, match=message):
        PassSize(records, partitions)
