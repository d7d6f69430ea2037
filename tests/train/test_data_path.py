"""The data path without Ray: store checks, mixture weights, disjoint ranks, packing, exact resume."""

from __future__ import annotations

import json

import pytest
import torch

from uniaudio.model.config import AuxDecoderConfig, DistillTarget, preset
from uniaudio.model.losses import compute_loss
from uniaudio.model.network import UniAudioModel
from uniaudio.model.sequence import collate
from uniaudio.testing.sentence_stores import write_random_store
from uniaudio.train.loader import LoaderConfig, StoreSpec, TrainLoader
from uniaudio.train.recipe import load_recipe
from uniaudio.train.stores import StoreMismatch, check_fits, check_split, load_shard, mixture_weights, open_store
from uniaudio.train.stream import RankStream, owned_samples

TASKS = ("asr", "tts", "text-only")


def _loader(stores, rank=0, world=2, state=None, context=96, rows=2, lookahead=4, cfg_dropout=0.5):
    infos = [open_store(stores[t]) for t in TASKS]
    specs = [StoreSpec(i.uri, i.shards, float(i.tokens)) for i in infos]
    cfg = LoaderConfig(context=context, rows=rows, lookahead=lookahead, tasks=TASKS, cfg_dropout=cfg_dropout,
                       seed=5, layout=preset("tiny").tokens)
    return TrainLoader(specs, cfg, rank, world, load_shard, state=state)


def test_resume_continues_with_exactly_the_same_batches(stores):
    straight = _loader(stores)
    expected = [straight.next() for _ in range(7)]
    first = _loader(stores)
    for _ in range(3):
        first.next()
    state = json.loads(json.dumps(first.state()))  # what a checkpoint stores
    resumed = _loader(stores, state=state)
    for want in expected[3:]:
        got = resumed.next()
        assert got.keys == want.keys
        assert torch.equal(got.batch.tokens, want.batch.tokens)
        assert torch.equal(got.batch.document_ids, want.batch.document_ids)
    assert resumed.counters.digest == straight.counters.digest
    with pytest.raises(ValueError, match="same --workers"):
        _loader(stores, world=3, state=state)


def test_ranks_read_disjoint_parts_of_every_store(stores):
    seen = {}
    for rank in (0, 1):
        loader = _loader(stores, rank=rank, world=2)
        keys = []
        for stream in loader.streams:
            while (drawn := stream.next()).ref[1] == 0:  # the first epoch
                keys.append(drawn.sample.key)
        seen[rank] = set(keys)
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == 12 + 10 + 8  # the text store has one shard: split by sample index


def test_packing_fills_rows_and_cfg_dropout_blanks_conditioning(stores):
    loader = _loader(stores, context=128, rows=4, lookahead=8, cfg_dropout=1.0)
    batches = [loader.next() for _ in range(4)]
    eff = sum(b.tokens for b in batches) / sum(b.batch.tokens.shape[0] * 128 for b in batches)
    assert eff > 0.9
    layout = preset("tiny").tokens
    tts_rows = [b for b in batches if any(k.startswith("tts/") for k in b.keys)]
    assert tts_rows  # with dropout 1.0 every TTS sample lost its transcription: only text_pad on unscored text
    b = tts_rows[0].batch
    text_steps = b.stream_mask[..., -1] & ~b.loss_mask[..., -1]
    assert (b.tokens[..., -1][text_steps] == layout.text.text_pad).any()


def test_packed_loss_sums_equal_the_samples_one_by_one(stores):
    cfg = preset("tiny").with_(aux_decoder=AuxDecoderConfig(hidden=8, targets=(DistillTarget("distill_wavlm", 16, 1),)))
    torch.manual_seed(0)
    model = UniAudioModel(cfg).eval()
    infos = [open_store(stores[t]) for t in ("asr", "tts")]
    specs = [StoreSpec(i.uri, i.shards, 1.0) for i in infos]
    loader = TrainLoader(specs, LoaderConfig(context=128, rows=2, lookahead=4, tasks=TASKS, cfg_dropout=0.0, seed=1,
                                             layout=cfg.tokens, aux=cfg.aux_decoder), 0, 1, load_shard)
    mb = loader.next()
    seqs = mb.sequences
    with torch.no_grad():
        packed = compute_loss(model(mb.batch), mb.batch, cfg.loss, cfg.tokens.audio)
        alone = sum(compute_loss(model(collate([s])), collate([s]), cfg.loss, cfg.tokens.audio).sums for s in seqs)
    assert mb.batch.tokens.shape[0] == 2 and len(seqs) > 2  # really packed
    torch.testing.assert_close(packed.sums, alone, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("sizes", "world"), [((1,), 2), ((1, 1, 5), 4), ((3, 2), 2), ((2, 7, 1), 5)])
def test_owned_samples_counts_what_each_rank_reads(sizes, world):
    read = []
    for rank in range(world):
        stream = RankStream(0, "mem://store", [str(i) for i in range(len(sizes))], rank, world, seed=1,
                            load_shard=lambda _uri, shard: [f"{shard}/{i}" for i in range(sizes[int(shard)])])
        keys = []
        if owned_samples(sizes, rank, world) == 0:
            with pytest.raises(ValueError, match=f"rank {rank} of {world} owns no samples"):
                stream.next()
        else:
            while (drawn := stream.next()).ref[1] == 0:  # the first epoch
                keys.append(drawn.sample)
        assert len(keys) == owned_samples(sizes, rank, world)
        read += keys
    assert sorted(read) == sorted(f"{s}/{i}" for s, n in enumerate(sizes) for i in range(n))


def test_a_store_that_leaves_a_rank_without_samples_is_refused_before_training(stores, tmp_path):
    from typer.testing import CliRunner

    from uniaudio.cli.main import app

    one = write_random_store(str(tmp_path / "one"), "text-only", 1, 1)
    check_split(open_store(one), 1)
    with pytest.raises(StoreMismatch, match=r"1 samples in 1 shards cannot feed 2 workers .* rank\(s\) \[1\] would "
                                            r"get none \(samples per rank: \[1, 0\]\)"):
        check_split(open_store(one), 2)
    check_split(open_store(stores["text-only"]), 8)  # one shard of 8: split by sample index
    result = CliRunner().invoke(app, ["train", "--stage", "3", "--data", stores["text-only"], "--data", one,
                                      "--output", str(tmp_path / "out"), "--workers", "2", "--dry-run"])
    assert result.exit_code == 2 and f"{one}: 1 samples in 1 shards cannot feed 2 workers" in result.output


def test_stores_that_do_not_fit_are_refused(stores, tmp_path):
    tiny = preset("tiny")
    big_vocab = write_random_store(str(tmp_path / "big"), "asr", 2, 2, vocab_size=128256)
    with pytest.raises(StoreMismatch, match="text vocabulary of 128256 ids does not fit"):
        check_fits(open_store(big_vocab), tiny)
    small = tiny.with_(tokens=type(tiny.tokens)(audio=type(tiny.tokens.audio).standard(32, 128),
                                                text=tiny.tokens.text))
    with pytest.raises(StoreMismatch, match="reasoning code .* beyond the model"):
        check_fits(open_store(stores["asr"]), small)
    stage1 = load_recipe(1)
    with pytest.raises(StoreMismatch, match="none of which stage 1 trains"):
        mixture_weights([open_store(stores["tts"])], stage1)
    stage3 = load_recipe(3)
    infos = [open_store(stores[t]) for t in TASKS]
    assert mixture_weights(infos, stage3) == [float(i.tokens) for i in infos]
    weighted = load_recipe(3, overrides=["mixture={asr: 3, text-only: 1}"])
    assert mixture_weights(infos, weighted) == [3.0, 0.0, 1.0]
