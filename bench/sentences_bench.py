"""Sentence assembly cost: token-level kinds (``speech-text``, ``asr``) against reading the token stores alone.

Writes a synthetic speech token store (random tokens, 2–12 s clips, speakers and transcripts), then in one
run measures, per input shard and in this process:

* the baseline: reading every shard with the token store reader (what any builder must do);
* read + assemble: the same read plus the builder's ``build_unit`` and the encoding of each sentence's
  tar members (exactly a Ray worker's work for one unit);

and reports sentences/s and the overhead of assembly over the read (goal: under 50 %). With ``--ray`` it
also times the whole ``sentences build`` (Ray Data + the driver's writer) end to end.

    python bench/sentences_bench.py --samples 4000 [--ray]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.token_store import TokenStoreWriter
from uniaudio.sentences.registry import BuildContext, BuildOptions, get_builder
from uniaudio.sentences.sources import list_input_shards, read_input_shard
from uniaudio.testing.tokens import TEST_CODEC, random_sample

WORDS = ["the", "a", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "speech", "sound", "music", "model",
         "audio", "language"]


def make_store(uri: str, n: int, shard_samples: int) -> None:
    rng = np.random.default_rng(0)
    with TokenStoreWriter(uri, TEST_CODEC, ShardLimits(max_samples=shard_samples)) as writer:
        for i in range(n):
            duration = float(rng.uniform(2, 12))
            text = " ".join(rng.choice(WORDS, size=int(duration * 2.5)))
            writer.write(random_sample(f"librispeech/utt{i:07d}", duration, seed=i, text=text,
                                       speaker=f"spk{i // 20}"))


def time_units(store: str, kind: str | None) -> tuple[float, int, int]:
    """Seconds, samples read and sentences made over every shard (kind None: read only)."""
    shards = list_input_shards([store])
    samples = sentences = 0
    t0 = time.perf_counter()
    if kind is None:
        for shard in shards:
            samples += len(read_input_shard(shard))
        return time.perf_counter() - t0, samples, 0
    builder = get_builder(kind)
    options = BuildOptions(kind=kind)
    for unit in builder.units(shards, options):
        read = [s for shard in unit["shards"] for s in read_input_shard(shard)]
        samples += len(read)
        ctx = BuildContext(options, unit["id"])
        for item in builder.build_unit(unit, read, ctx):
            if hasattr(item, "members"):
                item.members()
                sentences += 1
    return time.perf_counter() - t0, samples, sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--shard-samples", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="also time the full Ray build end to end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = f"{tmp}/speech"
        make_store(store, args.samples, args.shard_samples)
        time_units(store, None)  # warm the page cache and imports
        get_builder("asr")
        rows = {}
        for kind in (None, "asr", "speech-text"):
            best = min((time_units(store, kind) for _ in range(args.repeats)), key=lambda r: r[0])
            rows[kind or "read only (baseline)"] = best
        base = rows["read only (baseline)"][0]
        print(f"{args.samples} samples in {args.samples // args.shard_samples} shards; best of {args.repeats}")
        print(f"{'what':<24}{'s':>8}{'samples/s':>12}{'sentences/s':>13}{'overhead':>10}")
        for name, (sec, samples, sentences) in rows.items():
            over = f"{(sec / base - 1) * 100:+.0f} %" if sentences else "-"
            print(f"{name:<24}{sec:>8.2f}{samples / sec:>12,.0f}{sentences / sec:>13,.0f}{over:>10}")
        if args.ray:
            from uniaudio.sentences.build import BuildRequest, build_sentences

            for kind in ("asr", "speech-text"):
                t0 = time.perf_counter()
                summary = build_sentences(BuildRequest(kind, f"{tmp}/out-{kind}", tokens=(store,)))
                sec = time.perf_counter() - t0
                print(f"Ray build {kind:<14}{sec:>8.2f}{args.samples / sec:>12,.0f}{summary.sentences / sec:>13,.0f}")


if __name__ == "__main__":
    main()
