"""Fixtures for sentence-store tests: a tiny LLaMA-arranged text tokenizer and a small text corpus."""

from __future__ import annotations

import pytest

from uniaudio.tokenize.text_tokenizer import train_tiny_tokenizer

# Documents of very different lengths; two without text (skipped by the builder).
DOCUMENTS = [
    ("doc-long", "Once upon a time, in a land of many words, " * 12 + "the end."),
    ("doc-unicode", "Grüße aus Köln — 東京の音楽 🎵\n\nA second paragraph with\ttabs and  double  spaces. " * 3),
    ("doc-short", "Hi."),
    ("doc-none", None),
    ("doc-empty", ""),
    ("doc-mid", "Speech, sound and music: one audio language model trained on text too. " * 2),
]


@pytest.fixture(scope="session")
def text_tokenizer_dir(tmp_path_factory):
    corpus = [t for _, t in DOCUMENTS if t] * 5
    return str(train_tiny_tokenizer(corpus, tmp_path_factory.mktemp("text-tokenizer"), vocab_size=300))
