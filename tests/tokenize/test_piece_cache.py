"""The piece cache gives the ``tokenizers`` library's ids exactly, for GPT-2- and LLaMA-3-style pipelines."""

from __future__ import annotations

import json
import random

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from uniaudio.tokenize.piece_cache import LLAMA3_PATTERN, PieceCache, ascii_pattern
from uniaudio.tokenize.text_tokenizer import BEGIN_OF_TEXT, END_OF_TEXT, TextTokenizer

WORDS = ["the", "The", "speech", "sound", "don't", "it's", "we'll", "I'M", "you've", "they'D", "12", "2048", "3.5",
         "x86_64", "e-mail", "(hello)", "--", "...", "!?", "a", "Zebra", "naïve", "café", "日本語", "🙂", "'s", "'"]
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "\r\n", " \n ", "\x0b", "\x0c", "   \t", "", "\x1f", "\x00"]


def random_texts(n: int, seed: int) -> list[str]:
    """Words and separators at random; every other text with single spaces only (the by-word path)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        parts = []
        for _ in range(rng.randint(0, 14)):
            word = rng.choice(WORDS) + (rng.choice(WORDS) if rng.random() < 0.2 else "")
            parts += [word, " " if i % 2 else rng.choice(SEPARATORS)]
        out.append("".join(parts).strip(" ") if i % 2 else "".join(parts))
    return out + ["", " ", "  ", "\n\n", "a  b", " leading", "trailing ", "x\t\ty", "'''", "123456789", "a 1 b",
                  "it 's", "x ( y", "don't 12345 ...end"]


def _train(pre_tokenizer, ignore_merges: bool) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(random_texts(300, seed=1) * 3, trainer)
    tokenizer.add_special_tokens([BEGIN_OF_TEXT, END_OF_TEXT])
    tokenizer.encode_special_tokens = True
    return tokenizer


PIPELINES = {
    "gpt2-byte-level": lambda: _train(pre_tokenizers.ByteLevel(add_prefix_space=False), ignore_merges=False),
    "llama3-split": lambda: _train(pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), ignore_merges=True),
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_same_ids_as_the_library(name: str) -> None:
    tokenizer = PIPELINES[name]()
    cache = PieceCache.for_tokenizer(json.loads(tokenizer.to_str()), tokenizer)
    assert cache is not None
    fast = 0
    for text in random_texts(3000, seed=7):
        expected = tokenizer.encode(text, add_special_tokens=False).ids
        got = cache.encode(text)
        if got is not None:
            fast += 1
            assert got == expected, repr(text)
        else:  # outside the fast path: non-ASCII or control characters
            assert not text.isascii() or any(ord(c) < 9 or 13 < ord(c) < 32 or ord(c) == 127 for c in text)
    assert fast > 800  # many of these texts take the fast path
    assert cache.by_word and len(cache._after_space) > 100  # many of them word by word
    # the second pass reads the memo only
    for text in random_texts(300, seed=7):
        got = cache.encode(text)
        assert got is None or got == tokenizer.encode(text, add_special_tokens=False).ids


def test_text_tokenizer_uses_it_and_keeps_the_library_ids() -> None:
    tok = TextTokenizer.load(None)  # the shipped default tokenizer
    assert tok.pieces is not None
    texts = random_texts(500, seed=3) + [f"plain {END_OF_TEXT} text", "naïve café"]
    expected = [e.ids for e in tok.tokenizer.encode_batch(texts, add_special_tokens=False)]
    assert tok.encode_batch(texts) == expected
    assert [tok.encode(t) for t in texts] == expected
    assert all(tok.decode(ids) == t for t, ids in zip(texts, expected, strict=True))


def test_memo_stays_bounded() -> None:
    tokenizer = PIPELINES["gpt2-byte-level"]()
    cache = PieceCache.for_tokenizer(json.loads(tokenizer.to_str()), tokenizer, max_pieces=50)
    for text in random_texts(200, seed=11):
        got = cache.encode(text)
        assert got is None or got == tokenizer.encode(text, add_special_tokens=False).ids
        assert len(cache._memo) <= 50


def test_pipelines_it_cannot_reproduce_get_no_cache() -> None:
    tokenizer = PIPELINES["gpt2-byte-level"]()
    config = json.loads(tokenizer.to_str())
    assert PieceCache.for_tokenizer({**config, "normalizer": {"type": "NFC"}}, tokenizer) is None
    assert PieceCache.for_tokenizer({**config, "model": {**config["model"], "dropout": 0.1}}, tokenizer) is None
    added = [*config["added_tokens"], {**config["added_tokens"][0], "content": "word", "special": False}]
    assert PieceCache.for_tokenizer({**config, "added_tokens": added}, tokenizer) is None
    prefixed = {**config, "pre_tokenizer": {**config["pre_tokenizer"], "add_prefix_space": True}}
    assert PieceCache.for_tokenizer(prefixed, tokenizer) is None
    assert PieceCache.for_tokenizer({**config, "pre_tokenizer": {"type": "Whitespace"}}, tokenizer) is None


def test_ascii_pattern_rewrites_letter_and_number_classes_only() -> None:
    assert ascii_pattern(r" ?\p{L}+|[^\s\p{L}\p{N}]+").pattern == r" ?[A-Za-z]+|[^\sA-Za-z0-9]+"
    assert ascii_pattern(r"\p{M}+") is None  # another Unicode class
    assert ascii_pattern(r"\p{L}++") is None  # possessive
    assert ascii_pattern(r"(?>a)") is None  # atomic group
    assert ascii_pattern(r"(\p{L})+") is None  # a capturing group
    assert ascii_pattern(r"[") is None
