"""A tiny random wav2vec 2.0 CTC model with its processor, saved as a Hugging Face folder, for tests of
``uniaudio eval tts --asr-model`` (real transformers classes; transcripts are noise, scores are finite)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["save_tiny_ctc_asr"]

_LETTERS = "abcdefghijklmnopqrstuvwxyz'"


def save_tiny_ctc_asr(out_dir: str | Path, seed: int = 0) -> Path:
    """Write the model, feature extractor (16 kHz) and character tokenizer to ``out_dir``; returns it."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: i + 3 for i, c in enumerate(_LETTERS)}}
    (out / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(out / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                                     word_delimiter_token="|")
    features = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True,
                                        return_attention_mask=False)
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(out)
    config = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, pad_token_id=0)
    torch.manual_seed(seed)
    Wav2Vec2ForCTC(config).save_pretrained(out)
    return out
