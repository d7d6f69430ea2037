"""`uniaudio eval`: finite numbers on a tiny trained model, worse scores on a store with shuffled labels,
the same totals in process and on two Ray workers, and the CLI's table and JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from uniaudio.cli.main import app
from uniaudio.core.shard_file import ShardLimits
from uniaudio.eval.runner import EvalConfig, EvalError, run_eval
from uniaudio.model.checkpoint import save_checkpoint
from uniaudio.model.config import preset
from uniaudio.model.losses import compute_loss
from uniaudio.model.network import UniAudioModel
from uniaudio.model.sequence import build_sequence, collate
from uniaudio.sentences.sentence import Sentence, SentenceSegment
from uniaudio.sentences.store import SentenceStoreWriter
from uniaudio.tokenize.text_tokenizer import TextTokenizer

TEXTS = ["the cat sat", "a dog ran far", "birds sing now", "rain on the roof", "hello world", "good morning"]


def _sentences(tok: TextTokenizer, shuffle: bool = False, seed: int = 0) -> list[Sentence]:
    rng = np.random.default_rng(seed)
    out = []
    for i, text in enumerate(TEXTS):
        reason = rng.integers(0, 64, (8, 4)).astype(np.uint16)
        recon = rng.integers(0, 128, (8, 10)).astype(np.uint16)
        ids = tok.encode(text)
        if shuffle:  # the labels (scored segments) no longer follow from the inputs
            ids = [int(i) for i in rng.permutation(ids)]
            recon = rng.permuted(recon, axis=1).astype(np.uint16)
            reason = rng.permuted(reason, axis=1).astype(np.uint16)

        def seg(modality: str, role: str, loss: bool, _i: int = i, **kw) -> SentenceSegment:
            return SentenceSegment(modality, role, loss, source_key=f"src/u{_i}", **kw)

        prompt = SentenceSegment("text", "prompt", False, text="transcribe", ids=tuple(tok.encode("transcribe")))
        out.append(Sentence(f"asr/u{i}", "asr", None, [
            prompt, seg("audio", "audio", False, reason=reason, recon=recon),
            seg("text", "transcription", True, text=text, ids=tuple(ids))]))
        out.append(Sentence(f"tts/u{i}", "tts", None, [
            SentenceSegment("text", "prompt", False, text="speak", ids=tuple(tok.encode("speak"))),
            seg("text", "transcription", False, text=TEXTS[i], ids=tuple(tok.encode(TEXTS[i]))),
            seg("audio", "audio", True, reason=reason, recon=recon)]))
    return out


def _write(uri: str, sentences: list[Sentence], tok: TextTokenizer) -> str:
    with SentenceStoreWriter(uri, limits=ShardLimits(max_samples=4)) as writer:
        for s in sentences:
            writer.write(s)
        writer.close(tokenizer=tok.describe(), codec_fingerprint="test")
    return uri


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained to fit the store (plain PyTorch, a few dozen steps), and both stores."""
    root = tmp_path_factory.mktemp("eval")
    cfg = preset("tiny")
    tok = TextTokenizer.load(None, specials=cfg.tokens.text)
    good = _sentences(tok)
    store = _write(str(root / "store"), good, tok)
    shuffled = _write(str(root / "shuffled"), _sentences(tok, shuffle=True), tok)
    torch.manual_seed(0)
    model = UniAudioModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = collate([build_sequence(s.to_model_segments(), cfg.tokens) for s in good])
    for _ in range(60):
        loss = compute_loss(model(batch), batch, cfg.loss, cfg.tokens.audio).total
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_checkpoint(model, str(root / "model"))
    return str(root / "model"), store, shuffled


def test_token_metrics_finite_and_shuffled_store_scores_worse(trained):
    model, store, shuffled = trained
    good = run_eval(EvalConfig(kind="tokens", model_dir=model, data=store))
    bad = run_eval(EvalConfig(kind="tokens", model_dir=model, data=shuffled))
    assert good["sentences"] == bad["sentences"] == 2 * len(TEXTS)
    for stream in ("text", "reason", "recon"):
        g = good[stream] if stream == "text" else good[stream]["all"]
        b = bad[stream] if stream == "text" else bad[stream]["all"]
        assert g["count"] > 0 and math.isfinite(g["perplexity"]) and math.isfinite(b["perplexity"])
        assert g["perplexity"] < b["perplexity"], stream
        assert g["accuracy"] >= b["accuracy"], stream
    assert len(good["reason"]["codebooks"]) == 8


def test_ray_workers_give_the_same_totals(trained):
    model, store, _ = trained
    local = run_eval(EvalConfig(kind="tokens", model_dir=model, data=store))
    split = run_eval(EvalConfig(kind="tokens", model_dir=model, data=store, workers=2))
    assert split["sentences"] == local["sentences"]
    assert split["text"]["count"] == local["text"]["count"]
    assert split["recon"]["all"]["ce_sum"] == pytest.approx(local["recon"]["all"]["ce_sum"], rel=1e-4)


def test_asr_and_tts(trained):
    model, store, shuffled = trained
    asr = run_eval(EvalConfig(kind="asr", model_dir=model, data=store, tasks=("asr",), max_new_tokens=16))
    assert asr["utterances"] == len(TEXTS) and asr["skipped"] == 0
    assert math.isfinite(asr["wer"]) and math.isfinite(asr["cer"]) and asr["wer"] >= 0
    assert {e["reference"] for e in asr["examples"]} <= set(TEXTS)
    bad = run_eval(EvalConfig(kind="asr", model_dir=model, data=shuffled, tasks=("asr",), max_new_tokens=16))
    assert asr["cer"] <= bad["cer"]

    tts = run_eval(EvalConfig(kind="tts", model_dir=model, data=store, tasks=("tts",), limit=2))
    assert tts["generations"] == 2 and 0 <= tts["valid_rate"] <= 1 and 0 <= tts["stop_rate"] <= 1
    assert all(i["generated_s"] >= 0 for i in tts["items"])


def test_cli_table_json_and_errors(trained, tmp_path):
    model, store, _ = trained
    runner = CliRunner()
    out = tmp_path / "tokens.json"
    result = runner.invoke(app, ["eval", "tokens", "--model", model, "--data", store, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "perplexity" in result.output and "reasoning cb0" in result.output
    assert json.loads(out.read_text())["sentences"] == 2 * len(TEXTS)
    missing = runner.invoke(app, ["eval", "tokens", "--model", model, "--data", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no index.json" in missing.output
    with pytest.raises(EvalError, match="unknown evaluation"):
        EvalConfig(kind="bleu", model_dir=model, data=store)


def test_tts_with_codec_and_external_asr(trained, tmp_path):
    from uniaudio.testing.asr_model import save_tiny_ctc_asr

    model, store, _ = trained
    asr_dir = str(save_tiny_ctc_asr(tmp_path / "asr"))
    r = run_eval(EvalConfig(kind="tts", model_dir=model, data=store, tasks=("tts",), limit=3, codec="tiny",
                            asr_model=asr_dir, wav_dir=str(tmp_path / "wav")))
    decoded = [i for i in r["items"] if i["decoded_s"] is not None]
    assert decoded, "no generation could be decoded"
    assert all(i["reference_text"] in TEXTS and isinstance(i["hypothesis"], str) for i in decoded)
    assert r["asr"]["utterances"] == len(decoded)
    assert math.isfinite(r["asr"]["wer"]) and r["asr"]["wer"] >= 0 and math.isfinite(r["asr"]["cer"])
    assert len(list((tmp_path / "wav").glob("*.wav"))) == len(decoded)

    with pytest.raises(EvalError, match="needs --codec"):
        EvalConfig(kind="tts", model_dir=model, data=store, asr_model=asr_dir)
    with pytest.raises(EvalError, match="no config.json"):
        run_eval(EvalConfig(kind="tts", model_dir=model, data=store, tasks=("tts",), limit=1, codec="tiny",
                            asr_model=str(tmp_path)))
