"""Packing training samples into rows of the context length.

:func:`plan_rows` decides which samples share a row (first-fit decreasing over their lengths, ties broken by
input order, so the plan is a pure function of its input); :func:`pack` builds the :class:`Batch`
(:func:`~uniaudio.model.sequence.collate_packed`: per-sample positions and document ids, block-causal
attention); :func:`packing_efficiency` is the share of computed steps that hold a real token.
"""

from __future__ import annotations

from collections.abc import Sequence

from uniaudio.model.sequence import Batch, TokenSequence, collate_packed


def plan_rows(lengths: Sequence[int], length: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into rows of at most ``length`` steps (first-fit decreasing; within a
    row the indices keep ascending order). A sample longer than ``length`` raises ``ValueError`` naming it."""
    if length < 1:
        raise ValueError(f"plan_rows: length must be >= 1, got {length}")
    too_long = [(i, n) for i, n in enumerate(lengths) if n > length]
    if too_long:
        i, n = too_long[0]
        raise ValueError(f"plan_rows: sample {i} has {n} steps, more than the row length {length} "
                         f"({len(too_long)} such sample(s)); cut or drop it before packing")
    rows: list[list[int]] = []
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda j: (-lengths[j], j)):
        for r, room in enumerate(free):
            if lengths[i] <= room:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(length - lengths[i])
    return [sorted(row) for row in rows]


def pack(sequences: Sequence[TokenSequence], length: int) -> Batch:
    """All ``sequences`` packed into as few rows of ``length`` steps as :func:`plan_rows` finds."""
    plan = plan_rows([len(s) for s in sequences], length)
    return collate_packed([[sequences[i] for i in row] for row in plan], length)


def packing_efficiency(batch: Batch) -> float:
    """Real steps / computed steps (rows × row length) of ``batch``."""
    return float((batch.document_ids >= 0).float().mean())
