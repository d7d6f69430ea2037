"""Imports every module that registers sentence builders, so :func:`~.registry.kinds` lists them all.

Token-level kinds: the tasks, ``text-only``, ``segment``, ``speech-text``, ``audio-caption-interleave``.
Audio-level kinds (new audio tokenized by the codec): ``mixture``, ``variation``.
"""

from __future__ import annotations

from uniaudio.sentences import mixture, strategies, tasks, text_only, variation  # noqa: F401 - registration side effects
