"""Text-only sentences (paper B.2 data type 1): text corpora tokenized and cut to ``--max-tokens``.

The ``text-only`` builder reads ``--text`` corpora (JSON Lines, Parquet/Arrow, ``save_to_disk`` folders or
cached Hugging Face datasets, :mod:`uniaudio.sentences.documents`); one unit per document file. A
document's ids (no begin/end of text) are cut into consecutive pieces of at most ``max_tokens - 2`` ids
(:func:`chunk_ids`), each a sentence of one unmarked ``text`` segment in the loss, so it fits once wrapped
in ``<|begin_of_text|> … <|end_of_text|>``. A cut never splits a character's bytes (it moves back to the
previous id whose character span ends there), so each piece decodes to a slice of the document and the
pieces' texts concatenate to the document exactly. Keys are ``text/<corpus>/<document id>/<chunk:05d>``;
documents with null or empty text are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from uniaudio.core.keys import make_key
from uniaudio.sentences.documents import DocumentFile, TextInput, iter_documents, list_document_files
from uniaudio.sentences.registry import BuildContext, BuildOptions, SentenceBuilder, Skip, register
from uniaudio.sentences.sentence import Sentence, SentenceSegment
from uniaudio.sentences.sources import InputShard, SourceSample

__all__ = ["TextOnlyBuilder", "chunk_ids"]


def chunk_ids(ids: list[int], size: int, offsets: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """``[start, end)`` id ranges of consecutive pieces of at most ``size`` ids covering ``ids`` once.

    With ``offsets`` (character span of each id), a cut is moved back while the id before it and the id
    after it share a character (a multi-byte character split over byte-level tokens).
    """
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    out, start = [], 0
    while start < len(ids):
        end = min(start + size, len(ids))
        if offsets is not None:
            while start + 1 < end < len(ids) and offsets[end - 1][1] > offsets[end][0]:
                end -= 1
        out.append((start, end))
        start = end
    return out


@register
class TextOnlyBuilder(SentenceBuilder):
    kind = "text-only"
    needs_tokens = False

    def units(self, shards: list[InputShard], options: BuildOptions) -> list[dict[str, Any]]:
        units = []
        for i, text in enumerate(options.extra.get("text") or []):
            text_input = TextInput(**text)
            corpus, files = list_document_files(text_input)
            for j, f in enumerate(files):
                units.append({"id": f"text{i}-{j}", "document_file": asdict(f), "text_input": asdict(text_input),
                              "corpus": corpus})
        if not units:
            raise ValueError("text-only needs at least one --text corpus")
        return units

    def build_unit(self, unit: dict[str, Any], samples: list[SourceSample],
                   ctx: BuildContext) -> Iterator[Sentence | Skip]:
        text_input = TextInput(**unit["text_input"])
        tok = ctx.tokenizer.tokenizer
        for doc_id, text in iter_documents(DocumentFile(**unit["document_file"]), text_input):
            if not text:
                yield Skip(f"{unit['corpus']}/{doc_id}", "document without text")
                continue
            enc = tok.encode(text, add_special_tokens=False)
            pieces = chunk_ids(enc.ids, ctx.max_tokens - 2, enc.offsets)
            for n, (a, b) in enumerate(pieces):
                ids = enc.ids[a:b]
                seg = SentenceSegment("text", "text", True, text=ctx.tokenizer.decode(ids), ids=tuple(ids))
                yield Sentence(make_key("text", unit["corpus"], doc_id, f"{n:05d}"), self.kind, None, [seg],
                               meta={"document": doc_id, "chunk": n, "chunks": len(pieces)})
