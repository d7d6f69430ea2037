"""Tiny fixture corpora, one module per source, each in the layout its source reads.

Every module exposes ``build(root: Path) -> Path``: it writes a deterministic miniature of the corpus
(real layouts and traps from docs/dataset-formats.md, a few seconds of synthetic audio) under ``root``
and returns the directory to pass as ``INPUT_URI``. Modules are imported on first use.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from uniaudio.pipelines.sources import SOURCE_MODULES

__all__ = ["CORPORA", "build_all", "build_corpus"]

#: source name → fixture module under ``uniaudio.testing.corpora`` (named like the source's module).
#: ``hf`` and ``records`` read ``datasets`` and ingest outputs, which tests make with those tools.
CORPORA: dict[str, str] = {name: module for name, module in SOURCE_MODULES.items() if name not in ("hf", "records")}


def build_corpus(name: str, root: Path) -> Path:
    """Write the fixture corpus of source ``name`` under ``root``; returns its input directory."""
    if name not in CORPORA:
        raise ValueError(f"no fixture corpus for {name!r}; known: {', '.join(CORPORA)}")
    module = importlib.import_module(f"{__name__}.{CORPORA[name]}")
    return module.build(Path(root))


def build_all(root: Path) -> dict[str, Path]:
    """Every fixture corpus, each in ``root/<module>``; returns source name → input directory."""
    return {name: build_corpus(name, Path(root) / module) for name, module in CORPORA.items()}
