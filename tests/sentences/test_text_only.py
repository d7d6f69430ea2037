"""Text-only sentences: a text corpus built with ``datasets`` (and as JSON Lines), cut to the context length.

The central property: for every document, decoding its sentences' ids in chunk order gives the source
text back exactly, and every sentence fits the context once wrapped in begin/end of text.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.sentences.conftest import DOCUMENTS
from uniaudio.cli.main import app
from uniaudio.sentences.documents import TextInput
from uniaudio.sentences.store import iter_sentences, read_index
from uniaudio.sentences.text_only import TextOnlyOptions, build_text_only, chunk_ids
from uniaudio.tokenize.text_tokenizer import TextTokenizer

CONTEXT = 32
WITH_TEXT = [(d, t) for d, t in DOCUMENTS if t]


def _hf_corpus(tmp_path, layout: str) -> str:
    """The corpus as a datasets ``save_to_disk`` folder (2 shards) or a folder of parquet files."""
    from datasets import Dataset

    ds = Dataset.from_dict({"doc_id": [d for d, _ in DOCUMENTS], "content": [t for _, t in DOCUMENTS]})
    if layout == "save_to_disk":
        ds.save_to_disk(str(tmp_path / "corpus"), num_shards=2)
    else:
        ds.select(range(3)).to_parquet(str(tmp_path / "corpus" / "train-00000-of-00002.parquet"))
        ds.select(range(3, 6)).to_parquet(str(tmp_path / "corpus" / "train-00001-of-00002.parquet"))
    return str(tmp_path / "corpus")


def _by_document(store: str) -> dict[str, list]:
    docs: dict[str, list] = defaultdict(list)
    for sentence in iter_sentences(store):
        docs[sentence.meta["document"]].append(sentence)
    return docs


def test_chunk_ids_cover_every_id_once():
    ids = list(range(95))
    pieces = chunk_ids(ids, context_length=32)
    assert [len(p) for p in pieces] == [30, 30, 30, 5]
    assert [i for p in pieces for i in p] == ids
    assert chunk_ids([], 32) == [] and chunk_ids([7], 3) == [[7]]


@pytest.mark.parametrize("layout", ["save_to_disk", "parquet"])
def test_hf_corpus_chunks_decode_back_to_the_source(layout, tmp_path, text_tokenizer_dir, ray_session, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    corpus = _hf_corpus(tmp_path, layout)
    store = str(tmp_path / "store")
    options = TextOnlyOptions(tokenizer=text_tokenizer_dir, context_length=CONTEXT, shard_samples=10)
    summary = build_text_only(TextInput(corpus, text_column="content", id_column="doc_id"), store, options)

    tok = TextTokenizer.load(text_tokenizer_dir)
    docs = _by_document(store)
    assert sorted(docs) == sorted(d for d, _ in WITH_TEXT)
    n_sentences = 0
    for doc_id, text in WITH_TEXT:
        sentences = docs[doc_id]
        assert [s.meta["chunk"] for s in sentences] == list(range(len(sentences)))
        assert {s.meta["chunks"] for s in sentences} == {len(sentences)}
        assert [s.key for s in sentences] == [f"text/corpus/{doc_id}/{i:05d}" for i in range(len(sentences))]
        ids = np.concatenate([s.text for s in sentences])
        assert ids.dtype == np.int32
        assert ids.tolist() == tok.encode(text)
        assert tok.decode(ids.tolist()) == text
        assert all(s.tokens <= CONTEXT for s in sentences) and all(s.tokens == CONTEXT for s in sentences[:-1])
        assert {s.meta["task"] for s in sentences} == {"text_only"}
        n_sentences += len(sentences)
    assert len(docs["doc-long"]) > 2  # the long document really was cut
    in_store = [s.meta["document"] for s in iter_sentences(store)]
    assert list(dict.fromkeys(in_store)) == [d for d, _ in WITH_TEXT]  # input order, whatever the parallelism

    index = read_index(store)
    assert (summary.documents, summary.skipped_documents, summary.sentences) == (4, 2, n_sentences)
    assert index["totals"] == {"documents": 4, "skipped_documents": 2, "sentences": n_sentences,
                               "tokens": summary.tokens, "shards": summary.shards}
    assert summary.tokens == sum(s.tokens for ss in docs.values() for s in ss)
    assert [s["name"] for s in index["shards"]] == [f"shard-{i:06d}.tar" for i in range(summary.shards)]
    assert sum(s["samples"] for s in index["shards"]) == n_sentences and summary.shards == -(-n_sentences // 10)
    assert index["tokenizer"]["sha256"] == tok.sha256 and index["context_length"] == CONTEXT


def test_sentences_fit_the_model_sequence_format(tmp_path, text_tokenizer_dir, ray_session):
    from uniaudio.core.token_space import TextTokens, TokenLayout
    from uniaudio.model.sequence import TextSegment, build_sequence, parse_sequence

    corpus = _hf_corpus(tmp_path, "parquet")
    store = str(tmp_path / "store")
    options = TextOnlyOptions(tokenizer=text_tokenizer_dir, context_length=CONTEXT)
    build_text_only(TextInput(corpus, text_column="content", id_column="doc_id"), store, options)
    tok = TextTokenizer.load(text_tokenizer_dir)
    layout = TokenLayout(text=TextTokens(special_base=tok.bos_id))
    for sentence in iter_sentences(store):
        seq = build_sequence([TextSegment(tuple(sentence.text.tolist()), role="text", loss=True)], layout)
        assert len(seq) == sentence.tokens <= CONTEXT
        assert seq.tokens[0, -1] == tok.bos_id and seq.tokens[-1, -1] == tok.eos_id
        assert bool(seq.loss_mask[:, -1].all())  # text_only: loss on all text
        assert list(parse_sequence(seq, layout)[0].ids) == sentence.text.tolist()


def test_jsonl_gz_with_limit_and_positional_ids(tmp_path, text_tokenizer_dir, ray_session):
    folder = tmp_path / "olmo" / "part"
    folder.mkdir(parents=True)
    with gzip.open(folder / "shard-0.json.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"text": WITH_TEXT[0][1], "source": "web"}) + "\n")
        f.write(json.dumps({"source": "web"}) + "\n")  # no text: skipped, counted
        for _, text in WITH_TEXT[1:]:
            f.write(json.dumps({"text": text, "source": "web"}) + "\n")
    store = str(tmp_path / "store")
    options = TextOnlyOptions(tokenizer=text_tokenizer_dir, context_length=CONTEXT, limit=3)
    summary = build_text_only(TextInput(str(tmp_path / "olmo")), store, options)
    assert (summary.documents, summary.skipped_documents) == (2, 1)
    docs = _by_document(store)
    assert sorted(docs) == ["part/shard-0_0", "part/shard-0_2"]  # the first three lines, in file order
    tok = TextTokenizer.load(text_tokenizer_dir)
    for line, (_, text) in zip((0, 2), WITH_TEXT[:2], strict=True):
        sentences = docs[f"part/shard-0_{line}"]
        assert sentences[0].key == f"text/olmo/part/shard-0_{line}/00000"
        assert tok.decode(np.concatenate([s.text for s in sentences]).tolist()) == text


def test_store_is_readable_with_webdataset(tmp_path, text_tokenizer_dir, ray_session):
    import webdataset as wds

    store = tmp_path / "store"
    options = TextOnlyOptions(tokenizer=text_tokenizer_dir, context_length=CONTEXT)
    build_text_only(TextInput(_hf_corpus(tmp_path, "parquet"), text_column="content"), str(store), options)
    ours = {s.key: s for s in iter_sentences(str(store))}
    samples = list(wds.WebDataset(str(store / "shard-000000.tar"), shardshuffle=False).decode())
    assert [s["__key__"] for s in samples] == list(ours)
    for sample in samples:
        assert np.array_equal(sample["text.npy"], ours[sample["__key__"]].text)
        assert sample["json"]["tokens"] == sample["text.npy"].size + 2


def test_missing_text_column_lists_columns(tmp_path, text_tokenizer_dir):
    corpus = _hf_corpus(tmp_path, "save_to_disk")
    options = TextOnlyOptions(tokenizer=text_tokenizer_dir)
    with pytest.raises(ValueError, match=r"no column\(s\) text; columns: doc_id, content"):
        build_text_only(TextInput(corpus), str(tmp_path / "store"), options)


def test_context_length_must_leave_room_for_text():
    with pytest.raises(ValueError, match="context_length must be >= 3"):
        TextOnlyOptions(tokenizer="x", context_length=2)


def test_cli_builds_and_refuses_to_overwrite(tmp_path, text_tokenizer_dir, ray_session):
    corpus = _hf_corpus(tmp_path, "parquet")
    store = str(tmp_path / "store")

    def args(text_column: str = "content") -> list[str]:
        return ["sentences", "build", "text-only", corpus, store, "--tokenizer", text_tokenizer_dir,
                "--text-column", text_column, "--context-length", str(CONTEXT), "--name", "mini"]

    runner = CliRunner()
    result = runner.invoke(app, args())
    assert result.exit_code == 0, result.output
    assert "4 documents" in result.output and "skipped 2 empty document(s)" in result.output
    assert all(s.key.startswith("text/mini/") for s in iter_sentences(store))

    again = runner.invoke(app, args())
    assert again.exit_code == 2 and "already holds a sentence store" in again.output
    assert runner.invoke(app, [*args(), "--overwrite"]).exit_code == 0

    missing = runner.invoke(app, [*args("body"), "--overwrite"])
    assert missing.exit_code == 2 and "no column(s) body; columns: doc_id, content" in missing.output
