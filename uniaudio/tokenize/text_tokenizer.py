"""The text tokenizer: LLaMA-3.2's byte-level BPE, loaded from a local folder, with the UniAudio specials.

Contract:

* :meth:`TextTokenizer.load` reads ``tokenizer.json`` from a Hugging Face tokenizer folder (or the file
  itself; a local path or ``s3://`` URI, so Ray workers on other nodes can load it too) with the
  ``tokenizers`` library; nothing is downloaded. Get the folder on a connected machine
  with ``huggingface-cli download meta-llama/Llama-3.2-1B --include "tokenizer*" --local-dir DIR``.
* :meth:`encode` returns ids **without** ``<|begin_of_text|>``/``<|end_of_text|>`` (the tokenizer's own
  post-processor is not applied), and special-token strings inside the text are encoded as plain text,
  so a document can never inject a special id; the sequence format (:mod:`uniaudio.model.sequence`) wraps every text
  segment in them. :meth:`decode` keeps special tokens. For a byte-level BPE without normaliser (LLaMA-3.2)
  ``decode(encode(t)) == t`` for every string, and decoding a concatenation of consecutive pieces of
  ``encode(t)`` gives back the text those pieces cover.
* :attr:`specials` is the one config of text special ids, :class:`~uniaudio.core.token_space.TextTokens`:
  ``special_base`` is the id of ``<|begin_of_text|>`` (128000 for LLaMA-3.2; ``<|end_of_text|>`` must follow
  it), and the role markers of the released modified tokenizer are offsets from it (``<think>`` 128002,
  ``<transcription>`` 128011, ``<caption>`` 128015, ``<text_pad_token>`` 128020, ...), which are the
  reserved special tokens of the stock LLaMA-3.2 vocabulary.

* :meth:`encode` / :meth:`encode_batch` go through a :class:`~uniaudio.tokenize.piece_cache.PieceCache`
  (a memo of ids per word and per pre-tokenized piece, for plain ASCII text) when the tokenizer's pipeline
  is one it reproduces exactly (LLaMA-3.2's and the default's are): the same ids, 3–8× cheaper on corpus
  text; other text and other pipelines go to the ``tokenizers`` library.

:func:`train_tiny_tokenizer` builds a small tokenizer in the same arrangement for tests and the demo.

Without a folder (``TextTokenizer.load(None)``) the **default tokenizer** is used: a byte-level BPE of 2048
pieces trained by the project (with :func:`train_tiny_tokenizer`, on the project's own documentation) and
shipped as package data in ``uniaudio/tokenize/default_text_tokenizer/tokenizer.json``, in the same
special-id arrangement (``<|begin_of_text|>`` = 2048), so every command works without extra files.
Being byte-level without normaliser, it round-trips every string exactly, like LLaMA-3.2's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tokenizers import Tokenizer

from uniaudio.core import storage
from uniaudio.core.token_space import TextTokens
from uniaudio.tokenize.piece_cache import PieceCache

__all__ = ["BEGIN_OF_TEXT", "DEFAULT_TOKENIZER_DIR", "END_OF_TEXT", "TextTokenizer", "train_tiny_tokenizer"]

BEGIN_OF_TEXT = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
DEFAULT_TOKENIZER_DIR = Path(__file__).with_name("default_text_tokenizer")
_FETCH_HINT = 'huggingface-cli download meta-llama/Llama-3.2-1B --include "tokenizer*" --local-dir DIR'


@dataclass(frozen=True)
class TextTokenizer:
    """A loaded tokenizer, its special ids, and where it came from (``path``, ``sha256`` of the file);
    ``pieces`` is its :class:`~uniaudio.tokenize.piece_cache.PieceCache` when it has one (same ids, faster)."""

    tokenizer: Tokenizer
    specials: TextTokens
    path: str
    sha256: str
    pieces: PieceCache | None = field(default=None, compare=False, repr=False)

    @classmethod
    def load(cls, path: str | Path | None, specials: TextTokens | None = None) -> TextTokenizer:
        """Load ``path`` (folder or ``s3://`` prefix holding ``tokenizer.json``, or the file); ``None``: the
        default tokenizer shipped with the package (:data:`DEFAULT_TOKENIZER_DIR`).

        ``specials`` defaults to the LLaMA-3.2 arrangement anchored at the vocabulary's
        ``<|begin_of_text|>``. Raises ``FileNotFoundError`` (with the download command) when there is no
        ``tokenizer.json``, ``ValueError`` when the special tokens do not fit the vocabulary.
        """
        uri = str(DEFAULT_TOKENIZER_DIR if path is None else path)
        file = uri if uri.endswith(".json") else storage.join(uri, "tokenizer.json")
        if not storage.exists(file):
            msg = f"no tokenizer.json at {path}; fetch one on a connected machine with: {_FETCH_HINT}"
            raise FileNotFoundError(msg)
        data = storage.read_bytes(file)
        tokenizer = Tokenizer.from_str(data.decode("utf-8"))
        tokenizer.encode_special_tokens = True  # "<|end_of_text|>" written in a document stays plain text
        bos, eos = tokenizer.token_to_id(BEGIN_OF_TEXT), tokenizer.token_to_id(END_OF_TEXT)
        if bos is None or eos is None:
            raise ValueError(f"{file}: the vocabulary has no {BEGIN_OF_TEXT} / {END_OF_TEXT} tokens (not LLaMA-3)")
        specials = specials or TextTokens(special_base=bos)
        vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        if (specials.begin_of_text, specials.end_of_text) != (bos, eos):
            raise ValueError(
                f"{file}: {BEGIN_OF_TEXT}/{END_OF_TEXT} are ids {bos}/{eos}, but the special-id config says "
                f"{specials.begin_of_text}/{specials.end_of_text}"
            )
        if specials.max_id >= vocab_size:
            raise ValueError(f"{file}: special ids go up to {specials.max_id}, the vocabulary has {vocab_size} ids")
        pieces = PieceCache.for_tokenizer(json.loads(data), tokenizer)
        return cls(tokenizer, specials, file, hashlib.sha256(data).hexdigest(), pieces)

    @property
    def bos_id(self) -> int:
        return self.specials.begin_of_text

    @property
    def eos_id(self) -> int:
        return self.specials.end_of_text

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without begin/end-of-text."""
        ids = self.pieces.encode(text) if self.pieces is not None else None
        return ids if ids is not None else self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` for many texts at once: the piece cache where it applies, the rest in one call
        to the ``tokenizers`` thread pool (no character offsets)."""
        out = [self.pieces.encode(t) for t in texts] if self.pieces is not None else [None] * len(texts)
        rest = [i for i, ids in enumerate(out) if ids is None]
        if rest:
            encoded = self.tokenizer.encode_batch_fast([texts[i] for i in rest], add_special_tokens=False)
            for i, enc in zip(rest, encoded, strict=True):
                out[i] = enc.ids
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``; special tokens are kept as their strings."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    @property
    def fingerprint(self) -> str:
        """Identity of the vocabulary: the first 16 hex digits of the ``tokenizer.json`` sha256."""
        return self.sha256[:16]

    def describe(self) -> dict[str, object]:
        """Provenance for store indexes: file, checksum, fingerprint, vocabulary size, begin/end-of-text ids."""
        return {"path": self.path, "sha256": self.sha256, "fingerprint": self.fingerprint,
                "vocab_size": self.vocab_size,
                "bos_id": self.bos_id, "eos_id": self.eos_id}


def train_tiny_tokenizer(texts: Iterable[str], out_dir: str | Path, vocab_size: int = 300) -> Path:
    """Train a small byte-level BPE in LLaMA-3.2's arrangement and save it as a tokenizer folder.

    The BPE vocabulary is followed by ``<|begin_of_text|>``, ``<|end_of_text|>`` and
    ``<|reserved_special_token_N|>`` fillers up to the highest marker offset, as in LLaMA-3.2 (where the
    BPE part has 128000 ids). For tests and demos on machines that cannot download LLaMA-3.2.
    """
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    reserved = TextTokens().max_id - TextTokens().special_base - 1
    fillers = [f"<|reserved_special_token_{i}|>" for i in range(reserved)]
    tokenizer.add_special_tokens([BEGIN_OF_TEXT, END_OF_TEXT, *fillers])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "tokenizer.json"))
    return out
