"""Allocation candidates (budget/candidates.py) and distillation through logits: shapes between
the greedy sensitivity allocation and one uniform ratio, each meeting the limits, and the
search keeping the one with the lowest validation loss after a short fine-tune."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import DEMO_MODEL


@pytest.fixture(scope="module")
def planned(digits):
    """The demo model's graph, size predictor, L1 sensitivity and limits at 30% of its int8 bytes."""
    from firmware_export import tflm
    from tinyprune.budget.allocation import Limits
    from tinyprune.budget.predictor import SizePredictor
    from tinyprune.budget.sensitivity import analyze
    from tinyprune.load.model import load_model
    from tinyprune.prune.structured.dependency import build_graph
    from tinyprune.quantize.int8 import quantize_int8

    model = load_model(DEMO_MODEL)
    int8 = quantize_int8(model, digits.x_train, 64)
    arena = tflm.measure_arena(int8)
    out = model.layers[-1].name
    graph = build_graph(model, (out,))
    predictor = SizePredictor(model, graph, len(int8), arena.target_bytes, arena.head_bytes)
    sens = analyze(model, graph, digits, importance="l1", quiet=True, use_cache=False)
    return model, graph, predictor, sens, Limits(flash_bytes=0.3 * len(int8))


def test_shapes_meet_the_limits_from_greedy_to_uniform(planned):
    from tinyprune.budget.allocation import allocate
    from tinyprune.budget.candidates import blended

    model, graph, predictor, sens, limits = planned
    greedy = allocate(graph, predictor, sens, limits)
    assert blended(graph, predictor, sens, limits, 1, 1.0).keep == greedy.keep  # alpha 1 is the greedy allocator
    groups = [g for g in graph.groups if g.prunable]
    uniform = blended(graph, predictor, sens, limits, 1, 0.0)
    removed = [1 - uniform.keep[g.id] / g.channels for g in groups]
    # one ratio for every group, up to rounding to whole channels (and each group's floor)
    assert max(removed) - min(removed) <= max(1 / g.channels for g in groups) + 1e-9, removed
    assert uniform.keep != greedy.keep
    half = blended(graph, predictor, sens, limits, 1, 0.5)
    for alloc in (greedy, uniform, half):
        assert not limits.deficits(alloc.prediction)
        assert alloc.prediction.flash_bytes <= limits.flash_bytes
    # the least removal that meets the limits: the uniform shape with one more channel everywhere misses
    wider = {gid: min(k + 1, g.channels) for (gid, k), g in zip(uniform.keep.items(), groups)}
    assert limits.deficits(predictor.predict(wider))


def test_every_arena_limit_the_smallest_model_meets_is_allocated(planned):
    """The greedy allocator stopped when no single group's step lowered the predicted arena (a peak
    two groups share) and said no allocation exists: on the digits CNN it failed for 210 of 558
    (arena, MACs) limits between the smallest and the full model, every one of them reachable."""
    from tinyprune.budget.allocation import Limits, allocate, smallest

    model, graph, predictor, sens, _ = planned
    small, full = smallest(graph, predictor, 1), predictor.predict({g.id: g.channels for g in graph.groups})
    for arena in range(small.arena_bytes, full.arena_bytes, 64):
        for macs in (None, full.macs * 0.2):
            limits = Limits(arena_bytes=arena, macs=macs)
            assert not limits.deficits(allocate(graph, predictor, sens, limits).prediction), (arena, macs)


def test_choose_keeps_the_lowest_loss_and_ties_go_to_the_sensitivity_shape(planned):
    from tinyprune.budget.candidates import choose

    model, graph, predictor, sens, limits = planned
    pruned = []

    def prune(keep, importance):
        pruned.append((dict(keep), importance))
        return keep

    # a loss that prefers wide first groups, and a score that prefers the opposite: the loss ranks
    def probe(keep):
        first = float(next(iter(keep.values())))
        return -first, -first  # (score, loss)

    best, scored = choose(graph, predictor, {"l1": sens}, limits, 1, prune, probe)
    assert len(scored) == len({tuple(c.allocation.keep.values()) for c in scored})  # each shape once
    assert len({c.loss for c in scored}) > 1  # the shapes differ in the first group: the rule decides
    assert best.loss == min(c.loss for c in scored)
    assert best.score == min(c.score for c in scored) != max(c.score for c in scored)  # not the best score
    assert {c.name for c in scored} <= {"l1 sensitivity", "l1 blend 0.5", "l1 uniform"}
    assert pruned[0] == (scored[0].allocation.keep, "l1")
    # the winner keeps what its probe trained (here the keep dict `prune` returned); the others drop theirs
    assert best.model == best.allocation.keep
    assert all(c.model is None for c in scored if c.model is not best.model)
    # crossed with a second importance (the same measurement under another name): ties go to the first
    # importance, then to the sensitivity shape
    tie, both = choose(graph, predictor, {"l1": sens, "bn": sens}, limits, 1, prune, lambda keep: (0.5, 0.1))
    assert tie.name == "l1 sensitivity" and tie.alpha == 1.0
    assert {c.importance for c in both} == {"l1", "bn"}


@pytest.mark.slow
def test_budget_search_scores_the_shapes_and_builds_the_winner(digits, tmp_path):
    from tinyprune.budget.search import prune_for_budget
    from tinyprune.load.model import load_model

    """importance="auto" and allocation="auto" (the defaults): every (importance, shape) pair is
    fine-tuned and scored, the best pair is built; a given importance measures the shapes alone."""
    r = prune_for_budget(load_model(DEMO_MODEL), digits, tmp_path / "out", flash_budget="25%", epochs=1,
                         distill=False, quiet=True, seed=0)
    shape = r.choices["allocation"]
    cands = shape["candidates"]
    assert {c["shape"] for c in cands.values()} >= {"sensitivity", "uniform"}
    assert {c["importance"] for c in cands.values()} >= {"l1", "taylor"}
    order = ["l1", "bn", "taylor"]
    best = min(cands.values(), key=lambda c: (c["loss_after_probe"], order.index(c["importance"]), -c["alpha"]))
    assert (shape["importance"], shape["alpha"], shape["chosen"]) == (best["importance"], best["alpha"], best["shape"])
    assert r.choices["importance"]["chosen"] == best["importance"]
    assert r.rounds[0]["keep"] == best["keep"]  # the first round builds the winning shape
    assert len(r.rounds) == 1  # and it fits: so the final fine-tune continues the winner's probe
    assert shape["final_start"] == "the winning candidate's probe: its fine-tune is continued"
    # the final model: the probe, the continued run or their weights' mean, the lowest validation loss
    cont = r.steps[-1]["fine_tune"]["continued_from_probe"]
    losses = {"average": cont["averaged_loss"], "continued": cont["continued_loss"], "probe": cont["probe_loss"]}
    expected = min(losses, key=losses.get)
    assert cont["kept"] == expected
    from tinyprune import training

    saved = load_model(tmp_path / "out" / "model.h5")
    training.compile_for(saved, digits)
    assert training.validation_loss(saved, digits) == pytest.approx(losses[expected], abs=1e-5)
    assert len({cont["probe_loss"], cont["continued_loss"], cont["averaged_loss"]}) == 3  # three models measured
    assert r.final["int8_bytes"] <= r.targets["flash_bytes"]
    assert "allocation candidates" in r.seconds  # timed apart from the removal (the stage shares add up)
    # (9 fine-tuned candidates against one removal and its measurement: the removal alone is smaller)
    assert r.seconds["allocate + remove"] < r.seconds["allocation candidates"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "- allocation: " + shape["chosen"] in md
    assert f"kept the {cont['kept']} model" in md and "their weights averaged" in md
    given = prune_for_budget(load_model(DEMO_MODEL), digits, tmp_path / "l1", flash_budget="25%", epochs=1,
                             importance="l1", distill=False, quiet=True, seed=0)
    assert {c["importance"] for c in given.choices["allocation"]["candidates"].values()} == {"l1"}


def test_unknown_allocation_is_refused_before_any_work(digits, tmp_path):
    from tinyprune.budget.search import prune_for_budget
    from tinyprune.errors import ConfigError
    from tinyprune.load.model import load_model

    with pytest.raises(ConfigError, match="unknown allocation 'wide'"):
        prune_for_budget(load_model(DEMO_MODEL), digits, tmp_path / "out", flash_budget="25%", allocation="wide")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- distillation through logits

def _softmax_models():
    from tinyprune.tfsetup import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((6,))
    fused = keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="head")(inp))
    inp2 = keras.Input((6,))
    split = keras.Model(inp2, keras.layers.Softmax()(keras.layers.Dense(4, name="head")(inp2)))
    return fused, split


def test_logits_head_gives_the_logits_with_the_models_own_weights_and_restores_it():
    from tinyprune.training.distillation import logits_head

    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32) * 4
    for model in _softmax_models():
        w, b = model.get_layer("head").get_weights()
        before = model.predict(x, verbose=0)
        np.testing.assert_allclose(before.sum(1), 1.0, rtol=1e-5)
        with logits_head(model) as (view, is_logits):
            assert is_logits
            np.testing.assert_allclose(view.predict(x, verbose=0), x @ w + b, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(model.predict(x, verbose=0), before, rtol=1e-6)  # the softmax is back


def test_distillation_moves_a_confident_student_where_log_probabilities_have_no_gradient(digits):
    """A student that is the teacher made over-confident (last layer x6: most wrong-class
    probabilities under float32's clip of 1e-7) is distilled back toward the teacher: the loss
    sees logits, so the softened (T=4) distributions come together. Through clipped
    log-probabilities those classes have no gradient and the student stays over-confident."""
    from tinyprune import training
    from tinyprune.load.data import Dataset
    from tinyprune.load.model import load_model
    from tinyprune.tfsetup import keras
    from tinyprune.training.distillation import logits_head

    teacher = load_model(DEMO_MODEL)
    student = keras.models.clone_model(teacher)
    student.set_weights(teacher.get_weights())
    last = student.layers[-1]
    k, b = last.get_weights()
    last.set_weights([k * 6.0, b * 6.0])
    ds = Dataset("digits-unlabelled", digits.x_train, None, digits.x_val, None)
    assert float((training.predict(student, ds.x_val) < 1e-7).mean()) > 0.3

    def soft(model, t=4.0):
        with logits_head(model) as (view, _):
            z = training.predict(view, ds.x_val) / t
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    target = soft(teacher)

    def kl():
        s = soft(student)
        return float(np.mean(np.sum(target * (np.log(target) - np.log(s)), axis=1)))

    before = kl()
    with training.reproducible(0):
        training.distill(student, teacher, ds, epochs=3, batch_size=32, quiet=True)
    assert kl() < 0.3 * before, (before, kl())


def test_sensitivity_is_measured_on_training_samples_not_the_validation_that_scores_candidates(planned, digits):
    """The candidates are scored on the validation samples, so the sensitivity that proposes them
    must not be fitted to those samples: it is measured on training samples, and changing the
    validation samples changes neither the measurement nor its cache entry."""
    from tinyprune import training
    from tinyprune.budget.sensitivity import MAX_SAMPLES, analyze, cache_path, measured_on
    from tinyprune.load.data import Dataset

    model, graph, _, sens, _ = planned
    n = min(MAX_SAMPLES, len(digits.x_train))
    x, y = measured_on(digits)
    assert len(x) == n and np.array_equal(x, digits.x_train[:n])
    assert sens.samples == n
    assert sens.base_score == pytest.approx(training.score(training.predict(model, x), y))
    shuffled = np.random.default_rng(0).permutation(len(digits.x_val))
    other = Dataset(digits.name, digits.x_train, digits.y_train, digits.x_val[shuffled][:50], digits.y_val[shuffled][:50])
    assert cache_path(model, graph, other) == cache_path(model, graph, digits)
    again = analyze(model, graph, other, importance="l1", quiet=True, use_cache=False)
    assert again.drops == sens.drops and again.base_score == sens.base_score


def test_validation_loss_is_the_loss_keras_trains_and_early_stopping_watches(digits):
    """The continued fine-tune keeps the probe's weights when its validation loss is lower:
    that loss must be the one Keras computes for the compiled model (softmax and logits heads)."""
    from tinyprune import training
    from tinyprune.load.model import load_model
    from tinyprune.tfsetup import keras

    model = load_model(DEMO_MODEL)
    inp = keras.Input(model.input_shape[1:])
    logits = keras.Model(inp, keras.layers.Dense(10)(keras.layers.Flatten()(inp)))
    for m in (model, logits):
        training.compile_for(m, digits)
        keras_loss = m.evaluate(digits.x_val, digits.y_val, verbose=0)[0]
        assert training.validation_loss(m, digits) == pytest.approx(keras_loss, rel=1e-4)
    assert training.validation_loss(model, digits) < training.validation_loss(logits, digits)  # trained vs not


# ---------------------------------------------------------------- weight averaging

def test_average_weights_is_the_mean_in_each_dtype_and_refuses_mismatches():
    from tinyprune.errors import ConfigError
    from tinyprune.training import average_weights

    a = [np.array([1.0, 3.0], np.float32), np.array([[2.0]], np.float16)]
    b = [np.array([3.0, -1.0], np.float32), np.array([[4.0]], np.float16)]
    out = average_weights(a, b)
    assert [o.dtype for o in out] == [np.float32, np.float16]
    assert np.array_equal(out[0], [2.0, 1.0]) and np.array_equal(out[1], [[3.0]])
    big = np.float32(3e38)  # the mean of two large values does not overflow through their sum
    assert average_weights([np.array([big])], [np.array([big])])[0][0] == big
    with pytest.raises(ConfigError, match="different models"):
        average_weights(a, b[:1])
    with pytest.raises(ConfigError, match="weight 0"):
        average_weights([np.zeros(2, np.float32)], [np.zeros(3, np.float32)])
    with pytest.raises(ConfigError, match="not a floating-point type"):
        average_weights([np.zeros(2, np.int64)], [np.zeros(2, np.int64)])


def test_cosine_decay_takes_the_rate_to_zero_over_the_run_and_puts_it_back(digits):
    """training.CosineDecay: the first batch at the compiled rate, strictly falling, the last
    planned batch near zero (lr0 * (1 + cos(pi (T-1)/T)) / 2), the compiled rate restored after."""
    from tinyprune import training
    from tinyprune.errors import ConfigError
    from tinyprune.tfsetup import keras

    ds = digits.subset(100, 40)
    model = keras.Sequential([keras.layers.Input(ds.x_train.shape[1:]), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    training.compile_for(model, ds, lr=2e-3)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(keras.backend.get_value(self.model.optimizer.learning_rate)))

    training.train(model, ds, 3, 20, callbacks=[*training.schedule_callbacks("cosine"), Record()], quiet=True)
    total = 3 * 5  # 3 epochs of 100 / 20 batches
    assert len(seen) == total
    assert seen[0] == pytest.approx(2e-3)
    assert all(b < a for a, b in zip(seen, seen[1:]))
    assert seen[-1] == pytest.approx(2e-3 * (1 + np.cos(np.pi * (total - 1) / total)) / 2, rel=1e-4)
    assert float(keras.backend.get_value(model.optimizer.learning_rate)) == pytest.approx(2e-3)
    assert training.schedule_callbacks("constant") == []
    with pytest.raises(ConfigError, match="learning-rate schedule"):
        training.schedule_callbacks("step")


def test_the_search_fine_tunes_with_the_schedule_it_is_given(digits):
    """search._fine_tune_one (every probe and final fine-tune, labels or distillation) applies
    `lr_schedule`: the rate falls batch by batch with cosine and stays put with constant."""
    from tinyprune import training
    from tinyprune.budget.search import _fine_tune_one
    from tinyprune.tfsetup import keras

    ds = digits.subset(64, 32)
    teacher = keras.Sequential([keras.layers.Input(ds.x_train.shape[1:]), keras.layers.Flatten(),
                                keras.layers.Dense(10, activation="softmax")])
    training.compile_for(teacher, ds)

    class Record(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_train_batch_begin(self, batch, logs=None):
            self.seen.append(float(keras.backend.get_value(self.model.optimizer.learning_rate)))

    for config in (None, training.DistillConfig(mixup=0)):
        for schedule in ("cosine", "constant"):
            student = keras.models.clone_model(teacher)
            rec = Record()
            _fine_tune_one(student, teacher, ds, ds, True, 2, 16, config, "t", True, [rec], schedule)
            assert len(rec.seen) == 8
            if schedule == "cosine":
                assert all(b < a for a, b in zip(rec.seen, rec.seen[1:]))
            else:
                assert len(set(rec.seen)) == 1


def test_score_and_loss_is_evaluate_and_validation_loss_from_one_pass(digits):
    """training.score_and_loss: the same two numbers as evaluate and validation_loss, for a
    softmax head and a logits head."""
    from tinyprune import training
    from tinyprune.tfsetup import keras

    ds = digits.subset(64, 48)
    for activation in ("softmax", None):
        model = keras.Sequential([keras.layers.Input(ds.x_train.shape[1:]), keras.layers.Flatten(),
                                  keras.layers.Dense(10, activation=activation)])
        training.compile_for(model, ds)
        assert training.score_and_loss(model, ds) == (training.evaluate(model, ds), training.validation_loss(model, ds))
