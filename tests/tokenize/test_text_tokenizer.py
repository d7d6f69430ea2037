"""The text tokenizer on a tiny byte-level BPE trained here in LLaMA-3.2's special-token arrangement."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from uniaudio.core.token_space import TextTokens
from uniaudio.tokenize.text_tokenizer import BEGIN_OF_TEXT, END_OF_TEXT, TextTokenizer, train_tiny_tokenizer

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Grüße aus Köln — 東京の音楽 🎵 and more words, words, words.",
    "Speech, sound and music: one audio language model.",
] * 10


@pytest.fixture(scope="module")
def text_tok_dir(tmp_path_factory):
    return train_tiny_tokenizer(CORPUS, tmp_path_factory.mktemp("text-tok"), vocab_size=320)


def test_special_ids_follow_the_llama_arrangement(text_tok_dir):
    tok = TextTokenizer.load(text_tok_dir)
    base = tok.tokenizer.token_to_id(BEGIN_OF_TEXT)
    assert (tok.bos_id, tok.eos_id) == (base, base + 1) == (tok.specials.special_base, base + 1)
    assert tok.specials.marker_ids("transcription") == (base + 11, base + 12)
    assert tok.specials.marker_ids("caption") == (base + 15, base + 16)
    assert tok.specials.text_pad == base + 20 == tok.vocab_size - 1
    assert TextTokens().begin_of_text == 128000 and TextTokens().end_of_text == 128001  # LLaMA-3.2 defaults


@pytest.mark.parametrize(
    "text",
    ["", "hello", "  leading and trailing spaces  ", "Grüße — 東京 🎵\n\nnew\tlines", "unseen: ζωή ☃ ﬁ"],
)
def test_round_trip_is_exact(text_tok_dir, text):
    tok = TextTokenizer.load(text_tok_dir)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.bos_id not in ids and tok.eos_id not in ids


def test_pieces_of_an_encoding_decode_back_when_concatenated(text_tok_dir):
    tok = TextTokenizer.load(text_tok_dir)
    text = CORPUS[1] * 3
    ids = tok.encode(text)
    pieces = [ids[i : i + 7] for i in range(0, len(ids), 7)]
    assert tok.decode([i for piece in pieces for i in piece]) == text
    assert tok.encode_batch([text, "x"]) == [ids, tok.encode("x")]


def test_special_strings_in_text_stay_text(text_tok_dir):
    tok = TextTokenizer.load(text_tok_dir)
    text = f"a document that quotes {END_OF_TEXT} and {BEGIN_OF_TEXT}"
    ids = tok.encode(text)
    assert max(ids) < tok.bos_id
    assert tok.decode(ids) == text
    assert tok.encode_batch([text]) == [ids]


def test_same_ids_as_transformers_autotokenizer(text_tok_dir, tmp_path):
    """The folder format is the Hugging Face one: transformers loads it and agrees on every id."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    hf_dir = tmp_path / "hf-tok"
    PreTrainedTokenizerFast(
        tokenizer_file=str(text_tok_dir / "tokenizer.json"), bos_token=BEGIN_OF_TEXT, eos_token=END_OF_TEXT
    ).save_pretrained(str(hf_dir))
    auto = AutoTokenizer.from_pretrained(str(hf_dir))
    ours = TextTokenizer.load(hf_dir)
    for text in CORPUS[:3]:
        assert auto.encode(text, add_special_tokens=False) == ours.encode(text)
    assert auto.convert_tokens_to_ids([BEGIN_OF_TEXT, END_OF_TEXT]) == [ours.bos_id, ours.eos_id]
    assert json.loads((hf_dir / "tokenizer_config.json").read_text())["bos_token"] == BEGIN_OF_TEXT


def test_missing_tokenizer_names_the_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no tokenizer.json at .*huggingface-cli download meta-llama"):
        TextTokenizer.load(tmp_path)


def test_vocabulary_without_llama_specials_is_refused(tmp_path):
    bare = Tokenizer(models.BPE())
    bare.pre_tokenizer = pre_tokenizers.ByteLevel()
    bare.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match="no <\\|begin_of_text\\|>"):
        TextTokenizer.load(tmp_path)


def test_special_config_must_match_the_vocabulary(text_tok_dir):
    with pytest.raises(ValueError, match="but the special-id config says 128000/128001"):
        TextTokenizer.load(text_tok_dir, specials=TextTokens())
    base = TextTokenizer.load(text_tok_dir).bos_id
    with pytest.raises(ValueError, match="special ids go up to"):
        TextTokenizer.load(text_tok_dir, specials=TextTokens(special_base=base, markers={"x": (0, 99)}))


def test_loads_from_s3_like_a_folder(text_tok_dir, s3_bucket):
    from uniaudio.core import storage

    storage.atomic_write_bytes(f"{s3_bucket}/tok/tokenizer.json", (text_tok_dir / "tokenizer.json").read_bytes())
    remote, local = TextTokenizer.load(f"{s3_bucket}/tok"), TextTokenizer.load(text_tok_dir)
    assert remote.sha256 == local.sha256 and remote.path == f"{s3_bucket}/tok/tokenizer.json"
    assert remote.encode(CORPUS[1]) == local.encode(CORPUS[1])


@pytest.mark.parametrize(
    "text",
    ["", "hello", "  leading and trailing spaces  ", "Grüße — 東京 🎵\n\nnew\tlines", "unseen: ζωή ☃ ﬁ",
     "<|begin_of_text|> is text here", "\x00 control \r\n bytes"],
)
def test_default_tokenizer_is_shipped_and_round_trips_exactly(text):
    from importlib import resources

    shipped = resources.files("uniaudio.tokenize").joinpath("default_text_tokenizer/tokenizer.json")
    assert shipped.is_file()
    tok = TextTokenizer.load(None)
    assert tok.decode(tok.encode(text)) == text
    assert tok.bos_id == tok.tokenizer.token_to_id(BEGIN_OF_TEXT) == 2048 and tok.eos_id == 2049
    assert tok.specials.marker_ids("transcription") == (2048 + 11, 2048 + 12) and tok.vocab_size == 2069
    assert tok.bos_id not in tok.encode(text)
    assert len(tok.fingerprint) == 16 and tok.describe()["fingerprint"] == tok.fingerprint
