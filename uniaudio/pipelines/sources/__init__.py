"""Corpus sources: one module per corpus, each a :class:`~uniaudio.pipelines.sources.base.Source`.

Modules are imported on first use so that ``uniaudio --help`` does not pay for h5py, pyarrow
readers or ``datasets``.
"""

from __future__ import annotations

import importlib

from uniaudio.pipelines.sources.base import Source, SourceError

# source name → module under uniaudio.pipelines.sources
SOURCE_MODULES = {
    "emilia": "emilia",
    "mls": "mls",
    "librispeech": "librispeech",
    "librilight": "librilight",
    "wenetspeech": "wenetspeech",
    "audioset": "audioset",
    "audiocaps": "audiocaps",
    "wavcaps": "wavcaps",
    "musiccaps": "musiccaps",
    "msd": "msd",
    "laion-audio": "laion_audio",
    "capspeech": "capspeech",
    "manifest": "manifest",
    "hf": "hf",
    "records": "records",
}

__all__ = ["SOURCE_MODULES", "Source", "SourceError", "get_source", "source_names"]


def source_names() -> list[str]:
    return list(SOURCE_MODULES)


def get_source(name: str) -> type[Source]:
    """The source class registered under ``name``; ``ValueError`` lists the known names."""
    if name not in SOURCE_MODULES:
        raise ValueError(f"unknown source {name!r}; known sources: {', '.join(SOURCE_MODULES)}")
    module = importlib.import_module(f"uniaudio.pipelines.sources.{SOURCE_MODULES[name]}")
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Source) and getattr(obj, "name", None) == name:
            return obj
    raise RuntimeError(f"module {module.__name__} defines no Source named {name!r}")
