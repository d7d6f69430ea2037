"""Stage recipes: packaged defaults (Table 18), user files, ``--set`` overrides and their errors."""

from __future__ import annotations

import pytest

from uniaudio.train.recipe import RecipeError, ScheduleConfig, load_recipe


def test_packaged_recipes_hold_the_paper_defaults():
    r = {s: load_recipe(s) for s in (1, 2, 3, 4)}
    assert [r[s].optimizer.lr for s in (1, 2, 3, 4)] == [2e-4, 2e-4, 2e-4, 1e-4]
    assert [r[s].context for s in (1, 2, 3, 4)] == [1024, 1024, 1024, 2048]
    assert [r[s].steps for s in (1, 2, 3, 4)] == [50000, 50000, 500000, 300000]
    assert set(r[1].trainable) == {"understanding", "audio_embeddings", "aux_decoder"}
    assert set(r[2].trainable) == {"generation", "local_decoder"}
    assert "text_embeddings" in r[3].trainable and set(r[3].trainable) == set(r[4].trainable)
    assert [r[s].text_only for s in (1, 2, 3, 4)] == [False, False, True, True]
    assert r[1].aux_decoder and not r[2].aux_decoder
    assert "speech-text" in r[4].tasks and "speech-text" not in r[3].tasks
    for s in (1, 2, 3, 4):
        assert r[s].optimizer.betas == (0.9, 0.95) and r[s].optimizer.grad_clip == 1.0
        assert r[s].cfg_dropout == 0.1


def test_user_file_then_overrides(tmp_path):
    user = tmp_path / "mine.yaml"
    user.write_text("optimizer: {lr: 5.0e-4}\nmixture: {asr: 3}\nbatch: {rows: 2}\n")
    r = load_recipe(1, str(user), ["optimizer.lr=1e-3", "mixture.audio-caption=1", "steps=7",
                                   "trainable=[understanding]"])
    assert r.optimizer.lr == 1e-3 and r.optimizer.weight_decay == 0.05  # untouched keys keep the defaults
    assert r.mixture == {"asr": 3.0, "audio-caption": 1.0}
    assert (r.steps, r.batch.rows, r.batch.tokens_per_step) == (7, 2, 65536)
    assert r.trainable == ("understanding",)


@pytest.mark.parametrize(("override", "message"), [
    ("optimizer.lrr=1", "unknown keys ['optimizer.lrr']"),
    ("steps=many", "steps='many' must be a number"),
    ("steps=1.5", "must be an integer"),
    ("trainable=[embeddings]", "unknown groups ['embeddings']"),
    ("mixture.tts=1", "weighs tasks ['tts']"),
    ("zero_stage=1", "zero_stage=1 must be 2 or 3"),
    ("schedule.kind=linear", "schedule.kind='linear' must be one of"),
    ("stage=2", "stage cannot be changed"),
    ("novalue", "expected KEY=VALUE"),
])
def test_bad_values_are_named(override, message):
    with pytest.raises(RecipeError, match=None) as info:
        load_recipe(1, overrides=[override])
    assert message in str(info.value)


def test_bad_recipe_file_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(RecipeError, match="bad.yaml: a recipe file must hold a mapping"):
        load_recipe(2, str(bad))
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(2, str(tmp_path / "missing.yaml"))
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("stage: 3\n")
    with pytest.raises(RecipeError, match="stage=3 but --stage 2"):
        load_recipe(2, str(wrong))


def test_schedules():
    warm = ScheduleConfig(kind="cosine", warmup_steps=10, min_lr_ratio=0.1)
    assert warm.factor(0, 100) == pytest.approx(0.1) and warm.factor(9, 100) == pytest.approx(1.0)
    assert warm.factor(99, 100) == pytest.approx(0.1, abs=1e-3)
    inv = ScheduleConfig(kind="inverse_sqrt", warmup_steps=100)
    assert inv.factor(399, 1000) == pytest.approx(0.5)
    assert ScheduleConfig(kind="constant", warmup_steps=0).factor(5, 10) == 1.0
