"""The demo's report: what every stage produced, read back from the stages' own outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

from uniaudio.demo.plots import plot_eval, plot_losses, plot_sentence_counts, plot_sources, plot_token_lengths
from uniaudio.demo.report import Figure, Heading, Paragraph, Report, Table
from uniaudio.demo.run import SENTENCE_KINDS, STAGE_KINDS, DemoRun, read_json

__all__ = ["write_report"]


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _token_stores(run: DemoRun, report: Report, figs: Path) -> None:
    from uniaudio.pipelines.token_store import read_index

    rows, plot_rows = [], []
    for store in sorted(p for p in run.path("tokens").iterdir() if (p / "index.json").is_file()):
        t = read_index(str(store)).totals
        tokens = t["reason_tokens"] + t["recon_tokens"]
        rows.append([store.name, str(t["samples"]), f"{t['duration_s'] / 3600:.4f}", str(t["reason_tokens"]),
                     str(t["recon_tokens"])])
        plot_rows.append((store.name, t["duration_s"] / 3600, tokens))
    report.add(Heading("Token stores (`shards build`, tiny ReasoningCodec)"),
               Table(["store", "samples", "hours", "reasoning tokens", "reconstruction tokens"], rows),
               Figure(str(plot_sources(plot_rows, figs / "sources.png").relative_to(run.root)),
                      "audio and tokens per source"))


def _sentence_stores(run: DemoRun, report: Report, figs: Path) -> None:
    from uniaudio.sentences.store import iter_sentences, read_index

    rows, counts, lengths = [], {}, {}
    for kind in SENTENCE_KINDS:
        uri = run.path("sentences", kind)
        if not (uri / "index.json").is_file():
            rows.append([kind, "-", "-", "not built"])
            continue
        index = read_index(str(uri))
        totals = index["totals"]
        skipped = index.get("skipped") or {}
        counts[kind] = totals["samples"]
        lengths[kind] = [s.num_tokens for s in iter_sentences(str(uri))]
        rows.append([kind, str(totals["samples"]), str(totals["tokens"]),
                     ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) or "-"])
    report.add(Heading("Sentence stores (`sentences build`: 12 tasks, 5 auditory-sentence strategies)"),
               Paragraph("`mixture` and `variation` make new audio (mixes and demucs stems; pitch, speed and gain "
                         "renditions) and tokenize it with the same tiny codec on Ray workers."),
               Table(["kind", "sentences", "tokens", "skipped records"], rows),
               Figure(str(plot_sentence_counts(counts, figs / "sentences.png").relative_to(run.root)),
                      "sentences per task and strategy"),
               Figure(str(plot_token_lengths(lengths, figs / "lengths.png", run.config.max_tokens)
                          .relative_to(run.root)), "sentence lengths per kind"))


def _training(run: DemoRun, report: Report, figs: Path) -> None:
    curves, rows = {}, []
    for stage in STAGE_KINDS:
        metrics = run.path("train", f"stage{stage}", "metrics.jsonl")
        lines = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()] if metrics.is_file() else []
        curves[f"stage {stage}"] = [(m["step"], m["loss"]) for m in lines if "loss" in m]
        if lines:
            first, last = lines[0], lines[-1]
            rows.append([str(stage), str(last["step"]), _fmt(first["loss"]), _fmt(last["loss"]),
                         _fmt(last.get("tokens_per_s"), 0), _fmt(last.get("packing_efficiency"))])
    report.add(Heading("Training (`train --stage 1..4`, tiny model, Ray Train + DeepSpeed)"),
               Table(["stage", "steps", "first loss", "last loss", "tokens/s", "packing"], rows),
               Figure(str(plot_losses(curves, figs / "losses.png").relative_to(run.root)), "loss per stage"))


def _evaluation(run: DemoRun, report: Report, figs: Path) -> None:
    rows = []
    per_codebook = {}
    for name in ("tokens-asr", "tokens-tts"):
        r = read_json(run.path("eval", f"{name}.json"))
        if r:
            rows.append([name, "text ppl " + _fmt(r["text"]["perplexity"], 2),
                         "reasoning ppl " + _fmt(r["reason"]["all"]["perplexity"], 2),
                         "reconstruction ppl " + _fmt(r["recon"]["all"]["perplexity"], 2)])
            per_codebook[f"{name} reasoning"] = [c["perplexity"] for c in r["reason"]["codebooks"]]
            per_codebook[f"{name} reconstruction"] = [c["perplexity"] for c in r["recon"]["codebooks"]]
    asr = read_json(run.path("eval", "asr.json"))
    if asr:
        rows.append(["asr", f"{asr['utterances']} utterances", "WER " + _fmt(asr["wer"]), "CER " + _fmt(asr["cer"])])
    tts = read_json(run.path("eval", "tts.json"))
    if tts:
        rows.append(["tts", f"{tts['generations']} generations", "valid " + _fmt(tts["valid_rate"]),
                     "duration ratio " + _fmt(tts["duration_ratio"])])
        if "asr" in tts:
            rows.append(["tts → external ASR (random tiny wav2vec 2.0)", f"{tts['asr']['utterances']} utterances",
                         "WER " + _fmt(tts["asr"]["wer"]), "CER " + _fmt(tts["asr"]["cer"])])
    report.add(Heading("Evaluation (`eval tokens|asr|tts` on the stage-4 checkpoint)"),
               Paragraph("A tiny model trained for a few dozen steps on a few dozen sentences: the numbers show "
                         "the evaluation runs end to end, not model quality."),
               Table(["evaluation", "", "", ""], rows))
    if per_codebook:
        report.add(Figure(str(plot_eval(per_codebook, figs / "eval.png").relative_to(run.root)),
                          "per-codebook perplexity"))


def write_report(run: DemoRun) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and their PNGs (``figures/``) into the demo's folder."""
    figs = run.path("figures")
    figs.mkdir(parents=True, exist_ok=True)
    report = Report("uniaudio demo")
    report.add(Paragraph(f"Every stage of the data flow on mini corpora in {run.root}: corpus → ingest → "
                         "shards build → sentences build → train stages 1–4 → eval."),
               Heading("Steps"),
               Table(["step", "status", "seconds"], [[s.name, s.status, _fmt(s.seconds, 1)] for s in run.steps]))
    _token_stores(run, report, figs)
    _sentence_stores(run, report, figs)
    _training(run, report, figs)
    _evaluation(run, report, figs)
    return report.write(run.root)
