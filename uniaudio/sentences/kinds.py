"""Imports every module that registers sentence builders, so :func:`~.registry.kinds` lists them all.

Builders of optional heavy stages (``mixture``, ``variation``) register only when their module imports;
a module that is absent is simply not a kind.
"""

from __future__ import annotations

import importlib

from uniaudio.sentences import strategies, tasks, text_only  # noqa: F401 - registration side effects

for _name in ("mixture", "variation"):
    try:
        importlib.import_module(f"uniaudio.sentences.{_name}")
    except ModuleNotFoundError as e:
        if e.name != f"uniaudio.sentences.{_name}":
            raise
