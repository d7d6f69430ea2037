"""A memo of BPE ids per pre-tokenized piece: the ``tokenizers`` library's ids for plain ASCII text, faster.

A byte-level BPE splits text into pieces with a regular expression (GPT-2's inside ``ByteLevel``, or a
``Split`` before it as in LLaMA-3) and runs BPE on each piece alone, so the ids of a text are the
concatenation of its pieces' ids. Corpus text repeats its words: :class:`PieceCache` splits the text with
the same expression in Python and looks each piece up in a dict, asking the library only for pieces it has
not seen (the library's per-call cost, its ``Encoding`` objects and thread pool, dominate short texts).

Contract:

* :meth:`PieceCache.for_tokenizer` returns a cache only for a pipeline it reproduces exactly: no
  normaliser; ``ByteLevel(use_regex=True)`` or ``Split(Regex, "Isolated")`` + ``ByteLevel(use_regex=False)``,
  both without prefix space; a BPE model without dropout; only special added tokens (which the project's
  tokenizer encodes as plain text). Otherwise None, and callers use the library for everything.
* :meth:`PieceCache.encode` returns the ids, or None for text it does not handle: anything outside
  printable ASCII and ``\\t\\n\\v\\f\\r``, where Python's and the library's notions of letters, digits and
  whitespace could differ. Only the pattern's ``\\p{L}``/``\\p{N}`` are rewritten (as ASCII classes),
  which is exact on that alphabet. ``tests/tokenize/test_piece_cache.py`` checks the ids against the
  library on random text for both pipelines.
* Words: for GPT-2's and LLaMA-3's expressions (:data:`WORD_SAFE_PATTERNS`) a text of words separated by
  single spaces is looked up word by word (a word and the space before it), one dict lookup per word
  instead of the expression's scan. Exact because in both expressions a space before a non-space
  character starts a piece, no other piece holds a space, and the only lookahead is on runs of
  whitespace: each word's pieces are those of the word alone. Other texts go piece by piece.
* Memory is bounded: past ``max_pieces`` entries a memo is emptied and refilled.
"""

from __future__ import annotations

import re
from itertools import chain
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["GPT2_PATTERN", "LLAMA3_PATTERN", "WORD_SAFE_PATTERNS", "PieceCache", "ascii_pattern"]

#: The expression ``ByteLevel(use_regex=True)`` splits with (the ``tokenizers`` library's, GPT-2's).
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
#: LLaMA-3's pre-tokenizer expression (a ``Split`` before ``ByteLevel(use_regex=False)``).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
#: Expressions whose pieces never cross a single space (module docstring, "Words").
WORD_SAFE_PATTERNS = frozenset({GPT2_PATTERN, LLAMA3_PATTERN})
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")  # ASCII outside printable and \t\n\v\f\r
_CLASSES = {r"\p{L}": "A-Za-z", r"\p{N}": "0-9"}
_UNSUPPORTED = re.compile(r"\\[pP]|[+*?}]\+|\(\?>")


def ascii_pattern(pattern: str) -> re.Pattern[str] | None:
    """``pattern`` with ``\\p{L}``/``\\p{N}`` as ASCII classes, compiled by ``re``; None when it uses
    anything ``re`` may not read the library's way (other ``\\p``/``\\P`` classes, possessive
    quantifiers, atomic groups) or does not compile."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        name = pattern[i : i + 5]
        if name in _CLASSES:
            out.append(_CLASSES[name] if in_class else f"[{_CLASSES[name]}]")
            i += 5
        elif pattern[i] == "\\":
            out.append(pattern[i : i + 2])
            i += 2
        else:
            in_class = (in_class or pattern[i] == "[") and not (in_class and pattern[i] == "]")
            out.append(pattern[i])
            i += 1
    text = "".join(out)
    if _UNSUPPORTED.search(text):
        return None
    try:
        compiled = re.compile(text)
    except re.error:
        return None
    return compiled if compiled.groups == 0 else None  # findall must give whole matches


class PieceCache:
    """Ids of plain ASCII text from a memo of piece → ids (see the module docstring)."""

    def __init__(self, splitter: re.Pattern[str], tokenizer: Tokenizer, max_pieces: int = 200_000,
                 by_word: bool = False) -> None:
        self.splitter = splitter
        self.tokenizer = tokenizer
        self.max_pieces = max_pieces
        self.by_word = by_word
        self._memo: dict[str, list[int]] = {}  # piece -> ids
        self._first: dict[str, list[int]] = {}  # a text's first word -> ids
        self._after_space: dict[str, list[int]] = {}  # a later word (with the space before it) -> ids

    @classmethod
    def for_tokenizer(cls, config: dict[str, Any], tokenizer: Tokenizer,
                      max_pieces: int = 200_000) -> PieceCache | None:
        """A cache for ``tokenizer``, whose parsed ``tokenizer.json`` is ``config``; None when its pipeline
        is not one the cache reproduces."""
        if config.get("normalizer") is not None:
            return None
        model = config.get("model") or {}
        if model.get("type") != "BPE" or model.get("dropout") not in (None, 0, 0.0):
            return None
        if any(not t.get("special") for t in config.get("added_tokens") or []):
            return None
        pattern = _split_pattern(config.get("pre_tokenizer") or {})
        splitter = ascii_pattern(pattern) if pattern is not None else None
        if splitter is None:
            return None
        return cls(splitter, tokenizer, max_pieces, by_word=pattern in WORD_SAFE_PATTERNS)

    def encode(self, text: str) -> list[int] | None:
        """The ids of ``text``, or None when it is outside the fast path (non-ASCII or control characters)."""
        if not text.isascii():
            return None
        if text.isprintable():
            if self.by_word and text and text[0] != " " and text[-1] != " " and "  " not in text:
                words = text.split(" ")
                after_space = self._after_space
                try:
                    ids = self._first[words[0]].copy()
                    for word in words[1:]:
                        ids += after_space[word]
                    return ids
                except KeyError:  # a word not seen yet
                    return self._encode_words(words)
        elif _CONTROL.search(text):
            return None
        pieces = self.splitter.findall(text)
        try:
            ids = list(chain.from_iterable(map(self._memo.__getitem__, pieces)))
        except KeyError:  # a piece not seen yet
            return self._encode_filling(text)
        return ids if sum(map(len, pieces)) == len(text) else self._encode_filling(text)

    def _encode_filling(self, text: str) -> list[int]:
        """:meth:`encode` that asks the library for unseen pieces and keeps text between matches."""
        ids, end = [], 0
        for match in self.splitter.finditer(text):
            if match.start() > end:  # text between matches is a piece of its own ("Isolated")
                ids += self._piece(text[end : match.start()])
            ids += self._piece(match.group())
            end = match.end()
        if end < len(text):
            ids += self._piece(text[end:])
        return ids

    def _encode_words(self, words: list[str]) -> list[int]:
        """Ids of single-space-separated ``words``, filling the word memos (each word by its pieces)."""
        ids: list[int] = []
        for i, word in enumerate(words):
            memo = self._after_space if i else self._first
            got = memo.get(word)
            if got is None:
                if len(memo) >= self.max_pieces:
                    memo.clear()
                got = memo[word] = self._encode_filling(" " + word if i else word)
            ids += got
        return ids

    def _piece(self, piece: str) -> list[int]:
        got = self._memo.get(piece)
        if got is None:
            if len(self._memo) >= self.max_pieces:
                self._memo.clear()
            got = self._memo[piece] = self.tokenizer.encode(piece, add_special_tokens=False).ids
        return got


def _split_pattern(pre: dict[str, Any]) -> str | None:
    """The splitting expression of a byte-level pre-tokenizer config, or None when not reproducible."""
    if pre.get("type") == "ByteLevel":
        return GPT2_PATTERN if pre.get("use_regex", True) and not pre.get("add_prefix_space") else None
    if pre.get("type") != "Sequence":
        return None
    steps = pre.get("pretokenizers") or []
    if len(steps) != 2:
        return None
    split, byte_level = steps
    if (split.get("type") != "Split" or split.get("behavior") != "Isolated" or split.get("invert")
            or "Regex" not in (split.get("pattern") or {})):
        return None
    if byte_level.get("type") != "ByteLevel" or byte_level.get("use_regex") or byte_level.get("add_prefix_space"):
        return None
    return split["pattern"]["Regex"]
