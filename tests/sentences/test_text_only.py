"""Text-only sentences: a text corpus (datasets and JSON Lines) cut to --max-tokens, exact round trip."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict

import pytest
from typer.testing import CliRunner

from tests.sentences.conftest import DOCUMENTS
from uniaudio.cli.main import app
from uniaudio.core.token_space import TokenLayout
from uniaudio.model.sequence import build_sequence
from uniaudio.sentences.build import BuildRequest, build_sentences
from uniaudio.sentences.documents import TextInput
from uniaudio.sentences.store import iter_sentences, read_index
from uniaudio.sentences.text_only import chunk_ids
from uniaudio.tokenize.text_tokenizer import TextTokenizer

MAX = 32
WITH_TEXT = [(d, t) for d, t in DOCUMENTS if t]


def _hf_corpus(tmp_path) -> str:
    from datasets import Dataset

    ds = Dataset.from_dict({"doc_id": [d for d, _ in DOCUMENTS], "content": [t for _, t in DOCUMENTS]})
    ds.select(range(3)).to_parquet(str(tmp_path / "corpus" / "train-00000-of-00002.parquet"))
    ds.select(range(3, 6)).to_parquet(str(tmp_path / "corpus" / "train-00001-of-00002.parquet"))
    return str(tmp_path / "corpus")


def _text(uri: str, **kw) -> dict:
    from dataclasses import asdict

    return asdict(TextInput(uri, **kw))


def test_chunk_ids_cover_every_id_once_and_keep_characters_whole():
    assert chunk_ids(list(range(95)), 30) == [(0, 30), (30, 60), (60, 90), (90, 95)]
    assert chunk_ids([], 30) == []
    # ids 1 and 2 share character 1 (one multi-byte character in two byte tokens): no cut between them
    offsets = [(0, 1), (1, 2), (1, 2), (2, 3)]
    assert chunk_ids([0, 1, 2, 3], 2, offsets) == [(0, 1), (1, 3), (3, 4)]


def test_corpus_chunks_decode_back_to_the_source(tmp_path, text_tokenizer_dir, ray_session):
    store = str(tmp_path / "store")
    summary = build_sentences(BuildRequest(
        "text-only", store, text=(_text(_hf_corpus(tmp_path), text_column="content", id_column="doc_id"),),
        tokenizer=text_tokenizer_dir, max_tokens=MAX, shard_samples=10))
    tok = TextTokenizer.load(text_tokenizer_dir)
    layout = TokenLayout(text=tok.specials)
    docs: dict[str, list] = defaultdict(list)
    for s in iter_sentences(store):
        docs[s.meta["document"]].append(s)
        assert s.num_tokens == len(build_sequence(s.to_model_segments(), layout)) <= MAX
        (seg,) = s.segments
        assert seg.loss and seg.role == "text" and tok.decode(seg.ids) == seg.text
    assert list(docs) == [d for d, _ in WITH_TEXT]
    for doc_id, text in WITH_TEXT:
        assert "".join(s.segments[0].text for s in docs[doc_id]) == text  # exact round trip, unicode included
        assert [s.key for s in docs[doc_id]] == [f"text/corpus/{doc_id}/{i:05d}" for i in range(len(docs[doc_id]))]
    assert len(docs["doc-long"]) > 2
    assert summary.skipped == {"document without text": 2}
    index = read_index(store)
    assert index["tasks"]["text-only"]["samples"] == summary.sentences and index["tokenizer"]["sha256"] == tok.sha256


def test_default_tokenizer_and_jsonl_with_limit(tmp_path, ray_session):
    folder = tmp_path / "olmo" / "part"
    folder.mkdir(parents=True)
    with gzip.open(folder / "shard-0.json.gz", "wt", encoding="utf-8") as f:
        for _, text in WITH_TEXT:
            f.write(json.dumps({"text": text}) + "\n")
    store = str(tmp_path / "store")
    summary = build_sentences(BuildRequest("text-only", store, text=(_text(str(tmp_path / "olmo")),), limit=3))
    assert summary.sentences == 3
    index = read_index(store)
    assert index["tokenizer"]["vocab_size"] == TextTokenizer.load(None).vocab_size
    assert [s.key for s in iter_sentences(store)][0] == "text/olmo/part/shard-0_0/00000"


def test_cli_text_only_takes_text_option(tmp_path, text_tokenizer_dir, ray_session):
    corpus = _hf_corpus(tmp_path)
    store = str(tmp_path / "store")
    args = ["sentences", "build", "text-only", store, "--text", corpus, "--tokenizer", text_tokenizer_dir,
            "--text-column", "content", "--max-tokens", str(MAX)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "document without text" in result.output
    missing = CliRunner().invoke(app, [*args[:-4], "--text-column", "body", "--overwrite"])
    assert missing.exit_code == 2 and "no column(s) body" in missing.output
    nothing = CliRunner().invoke(app, ["sentences", "build", "text-only", str(tmp_path / "n")])
    assert nothing.exit_code == 2 and "--text" in nothing.output
    with pytest.raises(ValueError, match="--limit"):
        BuildRequest("text-only", store, limit=0)
