"""Sentence assembly cost: token-level kinds (``speech-text``, ``asr``) against reading the token stores alone.

Writes a synthetic speech token store (random tokens, 2–12 s clips, 20 utterances per speaker, transcripts
of ~2.7 words/s drawn from the word frequencies of the project's docs with 3 % made-up words), then in
one run measures, per input shard and in this process:

* the baseline: reading every shard with the token store reader (what any builder must do);
* read + assemble: the same read plus the builder's ``build_unit``, each sentence's length check and the
  encoding of its tar members (exactly a Ray worker's work for one unit);

and reports sentences/s and the overhead of assembly over the read (goal: under 50 %) two ways: against
the separate read-only passes, and as assembly time / read time within the same passes (each unit's read
is clocked apart from its assembly: no difference of two noisy totals; median and range over the
passes). Also the text tokenizer alone on the same transcripts (one batch per shard, as the builders
encode them), with the project's memo and as the ``tokenizers`` library alone. The kinds are timed
round-robin (read, asr, speech-text, tokenizer, read, ...) and the best of ``--repeats`` is kept, in
wall-clock and in process CPU time; the load average is printed with the figures. With ``--ray`` it also
times the whole ``sentences build`` (Ray Data + the driver's writer) end to end.

With ``--mixture N`` it also writes speech and sound token stores of N synthetic clips each (2–6 s, real audio
files tokenized by the ``tiny`` codec, ``segment`` windows) and, in the same run, times the ``mixture`` builder
over every unit (read a and b through their origins, mix, tokenize c, assemble, encode members) against the
codec alone tokenizing the very waveforms the builder gave it, in the same batches; it reports audio-seconds
(of new audio, c) per second for both.

    python bench/sentences_bench.py --samples 4000 [--ray] [--mixture 24] [--no-token-level]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from uniaudio.core.shard_file import ShardLimits
from uniaudio.pipelines.token_store import TokenStoreWriter
from uniaudio.sentences.registry import BuildContext, BuildOptions, get_builder
from uniaudio.sentences.sentence import Sentence
from uniaudio.sentences.sources import list_input_shards, read_input_shard
from uniaudio.testing.tokens import TEST_CODEC, random_sample


def transcript_model(seed: int = 0):
    """A transcript sampler: words drawn by their frequency in the project's own documentation (natural
    English, Zipf-like), 3 % of them replaced by a made-up word (names, rare words: pieces the tokenizer's
    memo has not seen), capitalized, ending in a full stop."""
    import re
    from collections import Counter
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    counts = Counter(w.lower() for f in sorted(docs.rglob("*.md")) for w in re.findall(r"[A-Za-z']+", f.read_text()))
    words = sorted(counts)
    weights = np.array([counts[w] for w in words], dtype=float)
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))

    def transcript(n_words: int) -> str:
        drawn = [words[i] for i in rng.choice(len(words), size=max(1, n_words), p=weights / weights.sum())]
        drawn = [w if rng.random() > 0.03 else "".join(rng.choice(letters, size=int(rng.integers(4, 11))))
                 for w in drawn]
        return " ".join(drawn).capitalize() + "."

    return transcript


def make_store(uri: str, n: int, shard_samples: int) -> None:
    rng = np.random.default_rng(0)
    transcript = transcript_model()
    with TokenStoreWriter(uri, TEST_CODEC, ShardLimits(max_samples=shard_samples)) as writer:
        for i in range(n):
            duration = float(rng.uniform(2, 12))
            text = transcript(int(duration * 2.7))  # ~2.7 words/s, as read speech
            writer.write(random_sample(f"librispeech/utt{i:07d}", duration, seed=i, text=text, speaker=f"spk{i // 20}"))


@dataclass
class Timing:
    """One timed pass: wall-clock and process CPU seconds, samples read, sentences made, and of the pass's
    time the part spent reading (``read_wall``/``read_cpu``: in an assembling pass, each unit's read is
    clocked apart from its assembly)."""

    wall: float
    cpu: float
    samples: int
    sentences: int
    read_wall: float = 0.0
    read_cpu: float = 0.0

    @property
    def assembly_over_read(self) -> float:
        """Assembly time / read time within this pass (wall-clock)."""
        return (self.wall - self.read_wall) / self.read_wall


class _Clock:
    def __enter__(self) -> _Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def time_units(store: str, kind: str | None) -> Timing:
    """One pass over every shard: read only (kind None), or read + ``build_unit`` + each sentence's length
    check and tar members, as :func:`uniaudio.sentences.build._run_unit` does on a worker."""
    shards = list_input_shards([store])
    samples = sentences = 0
    with _Clock() as clock:
        if kind is None:
            for shard in shards:
                samples += len(read_input_shard(shard))
        else:
            builder = get_builder(kind)
            options = BuildOptions(kind=kind)
            read_wall = read_cpu = 0.0
            for unit in builder.units(shards, options):
                with _Clock() as reading:
                    read = [s for shard in unit["shards"] for s in read_input_shard(shard)]
                read_wall, read_cpu = read_wall + reading.wall, read_cpu + reading.cpu
                samples += len(read)
                ctx = BuildContext(options, unit["id"])
                for item in builder.build_unit(unit, read, ctx):
                    if isinstance(item, Sentence):
                        if item.num_tokens > options.max_tokens:  # the worker's length check
                            raise ValueError(f"{item.key}: over --max-tokens")
                        item.members()
                        sentences += 1
    if kind is None:
        return Timing(clock.wall, clock.cpu, samples, sentences, clock.wall, clock.cpu)
    return Timing(clock.wall, clock.cpu, samples, sentences, read_wall, read_cpu)


def time_text_encoding(store: str, library: bool = False) -> Timing:
    """The text tokenizer alone on every transcript of the store, one batch per shard as the builders encode
    them (the transcripts are read before the clock starts); ``library``: the ``tokenizers`` library's own
    batch call, without the project's piece memo (:mod:`uniaudio.tokenize.piece_cache`)."""
    tokenizer = BuildContext(BuildOptions(kind="asr"), "bench").tokenizer
    batches = [[s.meta["text"] for s in read_input_shard(shard)] for shard in list_input_shards([store])]
    with _Clock() as clock:
        for batch in batches:
            if library:
                tokenizer.tokenizer.encode_batch_fast(batch, add_special_tokens=False)
            else:
                tokenizer.encode_batch(batch)
    return Timing(clock.wall, clock.cpu, sum(map(len, batches)), 0)


def make_audio_stores(root: str, n: int, config) -> list[str]:
    """Speech and sound token stores of ``n`` synthetic clips each, whose origins are real wav files."""
    from pathlib import Path

    from uniaudio.pipelines.token_store.sample import TokenSample, sample_metadata
    from uniaudio.pipelines.tokenize_stage import load_tokenizer, stage_codec_meta
    from uniaudio.sentences.audio_render import read_origin_audio
    from uniaudio.testing.audio import write_audio

    meta, codec = stage_codec_meta(config), load_tokenizer(config)
    rng = np.random.default_rng(1)
    stores = []
    for source in ("librispeech", "audiocaps"):
        uri = f"{root}/{source}"
        with TokenStoreWriter(uri, meta, ShardLimits(max_samples=max(1, n // 4))) as writer:
            for i in range(n):
                seconds = round(float(rng.uniform(2, 6)), 2)
                path = write_audio(Path(root, "corpus", source, f"{i:05d}.wav"), seconds, 24000, seed=i,
                                   f0=float(rng.uniform(100, 900)))
                md = sample_metadata(key=f"{source}/c{i:05d}", source=source, duration_s=seconds, codec=meta,
                                     audio_uri=str(path))
                enc = codec.encode([read_origin_audio(md)])[0]
                writer.write(TokenSample(key=md["key"], reason=enc.reason, recon=enc.recon, meta=md))
        stores.append(uri)
    return stores


def bench_mixture(root: str, n: int) -> None:
    """``mixture`` (whole unit work, in process) vs the codec alone on the same waveforms, audio-seconds/s."""
    from uniaudio.pipelines.tokenize_stage import TokenizeStageConfig
    from uniaudio.sentences.audio_render import CodecHandle, codec_extra, codec_handle
    from uniaudio.sentences.sources import codec_of_inputs

    config = TokenizeStageConfig(codec="tiny", window_mode="segment")
    stores = make_audio_stores(root, n, config)
    codec = codec_of_inputs(stores)
    options = BuildOptions(kind="mixture", extra=codec_extra(config))
    builder = get_builder("mixture")
    builder.check(options, codec)
    handle = codec_handle(BuildContext(options, "warm-up", codec["fingerprint"]))  # loaded once, outside the timing
    calls: list[list[np.ndarray]] = []
    real_encode = CodecHandle.encode

    def recording(handle, waves, keys=None):
        calls.append([np.array(w, copy=True) for w in waves])
        return real_encode(handle, waves, keys)

    CodecHandle.encode = recording
    try:
        shards = list_input_shards(stores)
        sentences = 0
        t0 = time.perf_counter()
        for unit in builder.units(shards, options):
            read = [s for shard in unit["shards"] for s in read_input_shard(shard)]
            for item in builder.build_unit(unit, read, BuildContext(options, unit["id"], codec["fingerprint"])):
                if hasattr(item, "members"):
                    item.members()
                    sentences += 1
        t_mix = time.perf_counter() - t0
    finally:
        CodecHandle.encode = real_encode
    t0 = time.perf_counter()
    for waves in calls:
        handle.encode(waves)
    t_codec = time.perf_counter() - t0
    seconds = sum(len(w) for waves in calls for w in waves) / 24000
    print(f"mixture: {n} speech + {n} sound clips; {sentences} sentences, {seconds:.1f} s of mixed audio tokenized "
          f"in {len(calls)} codec calls (tiny codec, segment windows, CPU)")
    print(f"{'what':<28}{'s':>8}{'audio-s/s':>11}")
    print(f"{'codec alone (same waves)':<28}{t_codec:>8.2f}{seconds / t_codec:>11.2f}")
    print(f"{'mixture (whole unit work)':<28}{t_mix:>8.2f}{seconds / t_mix:>11.2f}   "
          f"({(t_mix / t_codec - 1) * 100:+.0f} % over the codec)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--shard-samples", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="also time the full Ray build end to end")
    parser.add_argument("--mixture", type=int, default=0, metavar="N",
                        help="also time mixture vs the codec alone over N speech + N sound clips")
    parser.add_argument("--no-token-level", action="store_true", help="skip the token-level figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.mixture:
            bench_mixture(f"{tmp}/mixture", args.mixture)
        if args.no_token_level:
            return
        store = f"{tmp}/speech"
        make_store(store, args.samples, args.shard_samples)
        time_units(store, None)  # warm the page cache and imports
        time_units(store, "asr")
        load_before = os.getloadavg()
        runs = {"read only (baseline)": lambda: time_units(store, None),
                "asr": lambda: time_units(store, "asr"),
                "speech-text": lambda: time_units(store, "speech-text"),
                "text tokenizer alone": lambda: time_text_encoding(store),
                "  (library, no memo)": lambda: time_text_encoding(store, library=True)}
        rows: dict[str, Timing] = {}
        passes: dict[str, list[Timing]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                result = run()
                passes[name].append(result)
                best = rows.setdefault(name, Timing(**vars(result)))
                best.wall, best.cpu = min(best.wall, result.wall), min(best.cpu, result.cpu)
        load_after = os.getloadavg()
        base = rows["read only (baseline)"]
        print(f"{args.samples} samples in {args.samples // args.shard_samples} shards; best of {args.repeats}, "
              f"round-robin; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
        print(f"{'what':<24}{'wall s':>8}{'samples/s':>11}{'sentences/s':>13}{'vs read':>9}"
              f"{'CPU s':>8}{'vs read':>9}")
        for name, t in rows.items():
            if name.startswith("read"):
                vs_wall = vs_cpu = "-"
            elif t.sentences:  # overhead of read + assembly over the read alone
                vs_wall, vs_cpu = f"{(t.wall / base.wall - 1) * 100:+.0f} %", f"{(t.cpu / base.cpu - 1) * 100:+.0f} %"
            else:  # the tokenizer alone: its time as a share of the read's
                vs_wall, vs_cpu = f"{t.wall / base.wall * 100:.0f} %", f"{t.cpu / base.cpu * 100:.0f} %"
            rate = f"{t.sentences / t.wall:,.0f}" if t.sentences else "-"
            print(f"{name:<24}{t.wall:>8.2f}{t.samples / t.wall:>11,.0f}{rate:>13}{vs_wall:>9}{t.cpu:>8.2f}{vs_cpu:>9}")
        print("assembly / read within the same passes (each unit's read and assembly clocked apart), wall-clock, "
              f"over {args.repeats} passes:")
        for name in ("asr", "speech-text"):
            ratios = sorted(p.assembly_over_read for p in passes[name])
            print(f"  {name:<14} median {ratios[len(ratios) // 2] * 100:.0f} %, "
                  f"range {ratios[0] * 100:.0f} … {ratios[-1] * 100:.0f} %")
        if args.ray:
            from uniaudio.sentences.build import BuildRequest, build_sentences

            for kind in ("asr", "speech-text"):
                t0 = time.perf_counter()
                summary = build_sentences(BuildRequest(kind, f"{tmp}/out-{kind}", tokens=(store,)))
                sec = time.perf_counter() - t0
                print(f"Ray build {kind:<14}{sec:>8.2f}{args.samples / sec:>12,.0f}{summary.sentences / sec:>13,.0f}")


if __name__ == "__main__":
    main()
