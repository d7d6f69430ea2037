"""Text-only sentences (paper B.2 data type 1): a text corpus tokenized and cut to the context length.

Pipeline (Ray Data, one block per input file): read documents (:mod:`uniaudio.sentences.documents`) →
``--limit`` documents → tokenize and chunk (tasks; the tokenizer is loaded once per worker process) →
the driver writes the sentence store (:mod:`uniaudio.sentences.store`) in input order, so a re-run
gives the same shards.

Chunking contract (:func:`chunk_ids`): a document's ids (LLaMA-3.2, no begin/end of text) are cut into
consecutive pieces of at most ``context_length - 2`` ids, so each piece wrapped in
``<|begin_of_text|> … <|end_of_text|>`` by the sequence format fits the context. Nothing is dropped or
overlapped: the concatenation of a document's pieces is its full id sequence, and decoding it gives
back the document text exactly (LLaMA-3.2's byte-level BPE is lossless). Sentence keys are
``text/<corpus>/<document id>/<chunk:05d>``; the ``text_only`` task puts the loss on all text.
Documents whose text is null or empty are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from uniaudio.core.keys import make_key
from uniaudio.core.ray_runtime import RayConfig, ensure_ray
from uniaudio.core.shard_file import ShardLimits
from uniaudio.sentences.documents import DocumentFile, TextInput, iter_documents, list_document_files
from uniaudio.sentences.store import Sentence, SentenceStoreWriter
from uniaudio.tokenize.text_tokenizer import TextTokenizer

__all__ = ["TextOnlyOptions", "TextOnlySummary", "build_text_only", "chunk_ids"]

TASK = "text_only"


@dataclass(frozen=True)
class TextOnlyOptions:
    """How to tokenize, cut and shard: tokenizer folder, context length, document limit, shard size."""

    tokenizer: str
    context_length: int = 1024
    limit: int | None = None
    shard_samples: int = 4096
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.context_length < 3:
            raise ValueError(f"context_length must be >= 3 (begin, one id, end), got {self.context_length}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.shard_samples < 1:
            raise ValueError(f"shard_samples must be >= 1, got {self.shard_samples}")


@dataclass
class TextOnlySummary:
    """Counts of one build: documents read, skipped (no text), sentences and tokens written, shards."""

    documents: int = 0
    skipped_documents: int = 0
    sentences: int = 0
    tokens: int = 0
    shards: int = 0


def chunk_ids(ids: list[int], context_length: int) -> list[list[int]]:
    """Consecutive pieces of ``ids`` of at most ``context_length - 2`` ids each (none for no ids)."""
    size = context_length - 2
    return [ids[start : start + size] for start in range(0, len(ids), size)]


@lru_cache(maxsize=2)
def _tokenizer(path: str) -> TextTokenizer:
    return TextTokenizer.load(path)


def _read_file(item: dict[str, Any], text_input: TextInput) -> Iterator[dict[str, Any]]:
    doc = DocumentFile(uri=item["uri"], file_id=item["file_id"], kind=item["kind"])
    for doc_id, text in iter_documents(doc, text_input):
        yield {"document": doc_id, "text": text}


def _chunk_batch(batch: pa.Table, tokenizer: str, context_length: int, corpus: str) -> pa.Table:
    """One output row per sentence, plus one row with ``chunks == 0`` per skipped document."""
    tok = _tokenizer(tokenizer)
    docs = batch.column("document").to_pylist()
    texts = batch.column("text").to_pylist()
    encoded = iter(tok.encode_batch([t for t in texts if t]))
    out: dict[str, list] = {"key": [], "document": [], "chunk": [], "chunks": [], "ids": []}
    for doc_id, text in zip(docs, texts, strict=True):
        pieces = chunk_ids(next(encoded), context_length) if text else []
        rows = [(make_key("text", corpus, doc_id, f"{i:05d}"), i, piece) for i, piece in enumerate(pieces)]
        for key, i, piece in rows or [("", 0, [])]:
            out["key"].append(key)
            out["document"].append(doc_id)
            out["chunk"].append(i)
            out["chunks"].append(len(pieces))
            out["ids"].append(piece)
    return pa.table({**{k: v for k, v in out.items() if k != "ids"},
                     "ids": pa.array(out["ids"], type=pa.list_(pa.int32()))})


def build_text_only(
    text_input: TextInput,
    output_uri: str,
    options: TextOnlyOptions,
    ray_config: RayConfig | None = None,
    on_progress: Callable[[TextOnlySummary], None] | None = None,
) -> TextOnlySummary:
    """Build a text-only sentence store at ``output_uri``; returns the counts (also in ``index.json``).

    Inputs and the tokenizer are checked on the driver before any Ray work (``ValueError`` for a missing
    column, ``FileNotFoundError`` for a missing tokenizer, ``SourceError`` for an unresolvable dataset).
    """
    import ray.data

    corpus, files = list_document_files(text_input)
    tokenizer = TextTokenizer.load(options.tokenizer)
    ensure_ray(ray_config)
    items = [{"uri": f.uri, "file_id": f.file_id, "kind": f.kind} for f in files]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds.context.execution_options.preserve_order = True
    ds = ds.flat_map(_read_file, fn_kwargs={"text_input": text_input})
    if options.limit is not None:
        ds = ds.limit(options.limit)
    ds = ds.map_batches(
        _chunk_batch,
        batch_format="pyarrow",
        batch_size=64,
        fn_kwargs={"tokenizer": tokenizer.path, "context_length": options.context_length, "corpus": corpus},
    )
    summary = TextOnlySummary()
    limits = ShardLimits(max_samples=options.shard_samples)
    with SentenceStoreWriter(output_uri, limits, overwrite=options.overwrite) as writer:
        for row in ds.iter_rows():
            if row["chunks"] == 0:
                summary.skipped_documents += 1
            else:
                summary.documents += int(row["chunk"] == row["chunks"] - 1)
                sentence = Sentence(
                    key=row["key"],
                    text=np.asarray(row["ids"], dtype=np.int32),
                    meta={"task": TASK, "source": corpus, "document": row["document"],
                          "chunk": int(row["chunk"]), "chunks": int(row["chunks"])},
                )
                writer.write(sentence)
                summary.sentences += 1
                summary.tokens += sentence.tokens
            if on_progress is not None:
                on_progress(summary)
        summary.shards = len(writer.shards)
        writer.close(
            task=TASK,
            input={**asdict(text_input), "files": len(files)},
            tokenizer=tokenizer.describe(),
            context_length=options.context_length,
            totals=asdict(summary),
        )
    return summary
