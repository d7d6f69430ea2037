"""The ``mixture`` auditory-sentence strategy: a, b and their mixture c = a + b, as chains of triples.

Units: one per input shard (its samples are the ``a``\\ s), plus **partner** shards (``unit["partners"]``): one
shard of every other pool, drawn per unit from the seed (a shard's pool is its ``--pool`` override, else the
pool of most of its records' sources, from the store index), or another shard of the same pool when the inputs
hold one pool only. Partner samples are only drawn as ``b``.

Per ``a`` (in shard order): ``b`` is drawn from the unit's samples of another pool (of a's pool, a excepted,
when there is none), an SNR from ``SNR_RANGE_DB``, a triple order and, per sentence, 1–``MAX_TRIPLES`` triples.
Both clips are read again through their ``origin`` (:func:`~.audio_render.read_origin_audio`) and cut to their
common length on the 0.4 s grid (``c`` cells of 9600 samples; capped so one triple fits ``--max-tokens``);
``b`` is scaled to the SNR against ``a``, both are scaled down together when the sum would peak above
``PEAK`` (never clipped), and ``c = 10^(gain_a/20)·a + 10^(gain_b/20)·b`` (float64, stored float32) is
tokenized with the codec of the input stores (:func:`~.audio_render.codec_handle`). The audio segments of a and
b are their token-store tokens cut to ``[0, 2c)`` / ``[0, 5c)`` frames; c's tokens are cut alike (the codec's
extra trailing frame is dropped). c has ``source_key`` null and ``provenance``
``{"mix": [key_a, key_b], "snr_db", "gain_db": [gain_a_db, gain_b_db], "duration_s"}``.

With ``--demucs-model``, each music ``a`` also gives a stems triple: vocals and accompaniment separated by demucs
(:mod:`.demucs_stems`) from a's audio (cut to the grid), tokenized by the codec, with provenance
``{"separated": key, "stem": "vocals"|"accompaniment", "model": "demucs:<sha>", "duration_s"}``; the music is
the triple's ``c``.

Orders of a triple: ``abc`` (a, b, c), ``cab`` (c, a, b) and ``cba`` (c, b, a), uniformly. Every segment is in
the loss. Distillation features: c gets them when the codec runs with ``--distill-features``; a and b keep only
the feature fields c has, so every audio segment of a sentence carries the same fields. Keys:
``mixture/<key of the first a>/<t0 (mixture) | t1 (stems)>``; ``meta.triples`` lists each triple's order and kind.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from uniaudio.pipelines.token_store import read_index
from uniaudio.sentences.audio_render import (
    CODEC_SAMPLE_RATE,
    OriginAudioError,
    check_codec,
    codec_config,
    codec_handle,
    codec_remote_args,
    read_origin_audio,
)
from uniaudio.sentences.registry import BuildContext, BuildOptions, SentenceBuilder, Skip, register
from uniaudio.sentences.sentence import Sentence, SentenceSegment
from uniaudio.sentences.sources import InputShard, SourceSample, pool_of, read_input_shard

__all__ = ["MAX_TRIPLES", "ORDERS", "PEAK", "SNR_RANGE_DB", "MixtureStrategy", "mix_waves"]

SNR_RANGE_DB = (-5.0, 10.0)
PEAK = 0.95
MAX_TRIPLES = 3
ORDERS = ("abc", "cab", "cba")
CELL_SAMPLES = 9600  # 0.4 s at 24 kHz: 2 reasoning frames, 5 reconstruction frames
_CELL_TOKENS = 7
_TRIPLE_OVERHEAD = 12  # BOS/EOS frames of both streams, three segments
DEMUCS_EXTRA = "demucs_model"


def mix_waves(a: np.ndarray, b: np.ndarray, snr_db: float, peak: float = PEAK) -> tuple[np.ndarray, list[float]]:
    """``(c, [gain_a_db, gain_b_db])``: b scaled to ``snr_db`` below a, both scaled down when ``|c|`` would
    exceed ``peak``; ``c = 10^(g_a/20)·a + 10^(g_b/20)·b`` computed in float64 from the returned gains."""
    pa, pb = float(np.mean(np.square(a, dtype=np.float64))), float(np.mean(np.square(b, dtype=np.float64)))
    if pa <= 0 or pb <= 0:
        raise ValueError("silent clip: no SNR can be set")
    gain_b = 10 * math.log10(pa / pb) - snr_db  # dB, so that 10·log10(P(a) / P(scaled b)) = snr_db
    gains = [0.0, gain_b]
    mixed = _apply(a, b, gains)
    top = float(np.max(np.abs(mixed)))
    if top > peak:
        down = 20 * math.log10(peak / top)
        gains = [down, gain_b + down]
        mixed = _apply(a, b, gains)
    return mixed, gains


def _apply(a: np.ndarray, b: np.ndarray, gains_db: list[float]) -> np.ndarray:
    ga, gb = (10 ** (g / 20) for g in gains_db)
    return (a.astype(np.float64) * ga + b.astype(np.float64) * gb).astype(np.float32)


@dataclass
class _Slot:
    """One audio segment of a triple: an existing sample cut to ``cells``, or a new wave to tokenize."""

    cells: int
    sample: SourceSample | None = None
    wave: np.ndarray | None = None
    provenance: dict[str, Any] | None = None


@dataclass
class _Triple:
    key: str
    kind: str  # "mix" | "stems"
    order: str
    slots: dict[str, _Slot] = field(default_factory=dict)  # "a", "b", "c"

    @property
    def tokens(self) -> int:
        return 3 * self.slots["c"].cells * _CELL_TOKENS + _TRIPLE_OVERHEAD


def _shard_pool(shard: InputShard, indexes: dict[str, Any]) -> str | None:
    if shard.pool:
        return shard.pool
    if shard.store not in indexes:
        indexes[shard.store] = read_index(shard.store)
    sources = indexes[shard.store].shards[shard.shard_index].sources
    pools: Counter = Counter()
    for source, n in sources.items():
        pools[pool_of(source)] += n
    pools.pop(None, None)
    return pools.most_common(1)[0][0] if pools else None


@register
class MixtureStrategy(SentenceBuilder):
    kind = "mixture"
    strategy = "mixture"
    needs_codec = True

    def check(self, options: BuildOptions, input_codec: dict[str, Any]) -> None:
        check_codec(codec_config(options), input_codec.get("fingerprint"))
        if options.extra.get(DEMUCS_EXTRA):
            from uniaudio.sentences.demucs_stems import load_demucs

            load_demucs(str(options.extra[DEMUCS_EXTRA]))  # refuses a foreign pickle before any unit runs

    def ray_remote_args(self, options: BuildOptions) -> dict[str, Any]:
        return codec_remote_args(options)

    def units(self, shards: list[InputShard], options: BuildOptions) -> list[dict[str, Any]]:
        indexes: dict[str, Any] = {}
        pools = [_shard_pool(s, indexes) for s in shards]
        by_pool: dict[str | None, list[int]] = {}
        for i, p in enumerate(pools):
            by_pool.setdefault(p, []).append(i)
        units = []
        for i, shard in enumerate(shards):
            uid = f"{shard.store_index}-{shard.shard_index}"
            rng = np.random.default_rng([options.seed, shard.store_index, shard.shard_index])
            others = [p for p in by_pool if p != pools[i] and p is not None]
            if others:
                partners = [by_pool[p][int(rng.integers(len(by_pool[p])))] for p in sorted(others)]
            else:
                same = [j for j in by_pool.get(pools[i], []) if j != i]
                partners = [same[int(rng.integers(len(same)))]] if same else []
            units.append({"id": uid, "shards": [shard.to_dict()], "partners": [shards[j].to_dict() for j in partners]})
        return units

    def build_unit(self, unit: dict[str, Any], samples: list[SourceSample],
                   ctx: BuildContext) -> Iterator[Sentence | Skip]:
        partners = [s for shard in unit.get("partners", []) for s in read_input_shard(shard)]
        pool_members: dict[str, list[SourceSample]] = {}
        for s in samples + partners:
            if s.pool:
                pool_members.setdefault(s.pool, []).append(s)
        max_cells = (ctx.max_tokens - _TRIPLE_OVERHEAD) // (3 * _CELL_TOKENS)
        demucs_path = ctx.options.extra.get(DEMUCS_EXTRA)
        pending: list[_Triple] = []
        want = int(ctx.rng.integers(1, MAX_TRIPLES + 1))
        for a in samples:
            triples: list[_Triple] = []
            for item in self._plan(a, pool_members, max_cells, ctx, bool(demucs_path)):
                if isinstance(item, Skip):
                    yield item
                else:
                    triples.append(item)
            for triple in triples:
                used = sum(t.tokens for t in pending)
                if pending and (len(pending) == want or used + triple.tokens > ctx.max_tokens):
                    yield self._emit(pending, ctx)
                    pending, want = [], int(ctx.rng.integers(1, MAX_TRIPLES + 1))
                pending.append(triple)
        if pending:
            yield self._emit(pending, ctx)

    # -- planning (draws and audio; no codec) -----------------------------------------------------------
    def _plan(self, a: SourceSample, pools: dict[str, list[SourceSample]], max_cells: int, ctx: BuildContext,
              stems: bool) -> Iterator[_Triple | Skip]:
        if a.pool is None:
            yield Skip(a.key, "pool unknown (give --pool STORE=POOL)")
            return
        others = [s for p, members in sorted(pools.items()) if p != a.pool for s in members]
        candidates = others or [s for s in pools.get(a.pool, []) if s.key != a.key]
        if not candidates:
            yield Skip(a.key, "no second clip to mix with")
            return
        b = candidates[int(ctx.rng.integers(len(candidates)))]
        snr = round(float(ctx.rng.uniform(*SNR_RANGE_DB)), 2)
        order = ORDERS[int(ctx.rng.integers(len(ORDERS)))]
        stem_order = ORDERS[int(ctx.rng.integers(len(ORDERS)))]
        try:
            wave_a, wave_b = read_origin_audio(a), read_origin_audio(b)
        except OriginAudioError as err:
            yield Skip(a.key, err.reason)
            return
        cells = min(len(wave_a), len(wave_b)) // CELL_SAMPLES
        cells = min(cells, max_cells, _token_cells(a), _token_cells(b))
        if cells < 1:
            yield Skip(a.key, "too short to mix (under 0.4 s in common)" if max_cells >= 1
                       else "longer than --max-tokens")
            return
        n = cells * CELL_SAMPLES
        try:
            mixed, gains = mix_waves(wave_a[:n], wave_b[:n], snr)
        except ValueError:
            yield Skip(a.key, "silent audio: no SNR can be set")
            return
        c = _Slot(cells, wave=mixed, provenance={"mix": [a.key, b.key], "snr_db": snr, "gain_db": gains,
                                                 "duration_s": n / CODEC_SAMPLE_RATE})
        yield _Triple(a.key, "mix", order, {"a": _Slot(cells, sample=a), "b": _Slot(cells, sample=b), "c": c})
        if stems and a.pool == "music":
            yield from self._stems(a, wave_a, max_cells, stem_order, ctx)

    def _stems(self, music: SourceSample, wave: np.ndarray, max_cells: int, order: str,
               ctx: BuildContext) -> Iterator[_Triple | Skip]:
        from uniaudio.sentences.demucs_stems import load_demucs, separate_vocals

        cells = min(len(wave) // CELL_SAMPLES, max_cells, _token_cells(music))
        if cells < 1:
            yield Skip(music.key, "too short to separate (under 0.4 s)")
            return
        demucs = load_demucs(str(ctx.options.extra[DEMUCS_EXTRA]))
        n = cells * CELL_SAMPLES
        vocals, accompaniment = separate_vocals(demucs, wave[:n], device=_device(ctx))
        made = {"separated": music.key, "model": f"demucs:{demucs.fingerprint}", "duration_s": n / CODEC_SAMPLE_RATE}
        yield _Triple(music.key, "stems", order, {
            "a": _Slot(cells, wave=vocals, provenance={**made, "stem": "vocals"}),
            "b": _Slot(cells, wave=accompaniment, provenance={**made, "stem": "accompaniment"}),
            "c": _Slot(cells, sample=music)})

    # -- tokenizing and laying out ------------------------------------------------------------------------
    def _emit(self, triples: list[_Triple], ctx: BuildContext) -> Sentence:
        new = [(t, name) for t in triples for name in ("a", "b", "c") if t.slots[name].wave is not None]
        labels = [f"{t.key}:{t.kind}:{name}" for t, name in new]
        rendered = codec_handle(ctx).encode([t.slots[name].wave for t, name in new], labels) if new else []
        made: dict[tuple[int, str], SentenceSegment] = {}
        for (t, name), toks in zip(new, rendered, strict=True):
            slot = t.slots[name]
            r, s = 2 * slot.cells, 5 * slot.cells
            if toks.reason.shape[1] < r or toks.recon.shape[1] < s:
                raise RuntimeError(f"codec gave {toks.reason.shape[1]}/{toks.recon.shape[1]} frames for "
                                   f"{slot.cells * 0.4:.1f} s of {t.key}")
            feats = {k: _cut_rows(v, toks.recon.shape[1], s) for k, v in toks.features.items()}
            made[(id(t), name)] = SentenceSegment(
                "audio", "audio", True, source_key=None, reason=np.ascontiguousarray(toks.reason[:, :r]),
                recon=np.ascontiguousarray(toks.recon[:, :s]), features=feats, provenance=slot.provenance)
        fields = set(rendered[0].features) if rendered else None
        segments: list[SentenceSegment] = []
        for t in triples:
            for name in t.order:
                slot = t.slots[name]
                if slot.sample is None:
                    segments.append(made[(id(t), name)])
                    continue
                seg = ctx.audio_segment(slot.sample, True, reason_frames=(0, 2 * slot.cells))
                seg.recon = np.ascontiguousarray(seg.recon[:, :5 * slot.cells])
                seg.features = {k: _cut_rows(v, slot.sample.recon.shape[1], 5 * slot.cells)
                                for k, v in slot.sample.features.items() if fields is None or k in fields}
                segments.append(seg)
        return Sentence(f"mixture/{triples[0].key}/t{0 if triples[0].kind == 'mix' else 1}", self.kind,
                        self.strategy, segments,
                        meta={"triples": [{"kind": t.kind, "order": t.order} for t in triples]})


def _token_cells(sample: SourceSample) -> int:
    """Whole 0.4 s cells the sample's tokens cover."""
    return min(sample.reason.shape[1] // 2, sample.recon.shape[1] // 5)


def _cut_rows(feats: np.ndarray, recon_frames: int, frames: int) -> np.ndarray:
    """The first ``frames`` reconstruction frames' rows of (T_f, D) features (``k`` rows per frame)."""
    k = max(1, round(feats.shape[0] / max(recon_frames, 1)))
    return np.ascontiguousarray(feats[: frames * k])


def _device(ctx: BuildContext) -> str:
    import torch

    return "cuda" if codec_config(ctx.options).gpus_per_actor > 0 and torch.cuda.is_available() else "cpu"
