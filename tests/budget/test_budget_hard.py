"""The budget job where it is hard: one Budget type, distillation (also without labels),
seeded runs, iterative steps, and the joint choice of channel removal and TFLM compression."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.helpers import DEMO_MODEL
from tinyprune.budget.limits import Budget, Limit
from tinyprune.errors import BudgetError, ConfigError

ORIGINAL = SimpleNamespace(int8_bytes=40000, ram_bytes=20000, latency_ms=10.0, runtime_code_bytes=0)


# ---------------------------------------------------------------- the budget type (no TensorFlow)

def test_budget_parsed_once_then_resolved_under_the_same_names():
    asked = Budget.parse(flash_budget="25%", ram_budget="16KB", margin=0.1)
    assert asked.flash_bytes == Limit(None, 0.25, "25%") and asked.ram_bytes.value == 16 * 1024
    assert asked.latency_ms is None and not asked.resolved
    b = asked.resolve(ORIGINAL)
    assert b.flash_bytes == pytest.approx(0.25 * 40000 * 0.9) and b.ram_bytes == pytest.approx(16 * 1024 * 0.9)
    assert b.resolve(ORIGINAL) is b  # resolved once
    half = b.toward(ORIGINAL, 0.5)  # an iterative step's targets: geometric, between original and budget
    assert half.flash_bytes == pytest.approx(np.sqrt(40000 * b.flash_bytes))
    assert half.ram_bytes == pytest.approx(np.sqrt(20000 * b.ram_bytes))
    assert b.toward(ORIGINAL, 1.0).flash_bytes == pytest.approx(b.flash_bytes)
    assert b.misses(SimpleNamespace(int8_bytes=9500, ram_bytes=100, latency_ms=None)) == {
        "flash_bytes": (9500, pytest.approx(9000))}
    assert b.met_by(SimpleNamespace(int8_bytes=8000, ram_bytes=100, latency_ms=None))
    assert b.to_dict()["asked"]["flash_budget"] == "25%" and "flash 8.8 KB" in b.describe()
    with pytest.raises(BudgetError, match="needs a board"):
        Budget.parse(latency_budget="5ms")
    with pytest.raises(BudgetError, match="no budget given"):
        Budget.parse()


def test_budget_object_and_strings_together_are_refused(digits, tmp_path):
    from tinyprune.budget.search import prune_for_budget
    from tinyprune.load.model import load_model

    with pytest.raises(ConfigError, match="not both"):
        prune_for_budget(load_model(DEMO_MODEL), digits, tmp_path / "out", budget=Budget.parse("50%"),
                         flash_budget="50%")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- distillation

def test_distillation_with_teacher_only_moves_the_student_toward_the_teacher(digits):
    from tinyprune import training
    from tinyprune.load.data import Dataset
    from tinyprune.load.model import load_model
    from tinyprune.prune.structured.pruner import prune_structured

    teacher = load_model(DEMO_MODEL)
    unlabelled = Dataset("digits-unlabelled", digits.x_train, None, digits.x_val, None)
    with training.reproducible(0):
        student = prune_structured(teacher, 0.75).model

        def agreement():
            return float((training.predict(student, digits.x_val).argmax(1) ==
                          training.predict(teacher, digits.x_val).argmax(1)).mean())

        before = agreement()
        r = training.distill(student, teacher, unlabelled, epochs=3, batch_size=32, quiet=True)
    assert r.labels_used is False and r.weight == 1.0 and r.epochs_run == 3
    assert agreement() > before + 0.05, (before, agreement())


def test_function_matching_adds_teacher_only_mixed_rows(digits):
    """Mixed inputs are convex combinations of two training rows, capped, seeded, float only;
    on their rows the loss is the teacher term alone whatever sits in the label slot."""
    from tinyprune import training
    from tinyprune.load.model import load_model
    from tinyprune.prune.structured.pruner import prune_structured
    from tinyprune.training import distillation as kd

    x = digits.x_train[:50]
    mixed = kd.mixed_inputs(x, 3, np.random.default_rng(1))
    assert mixed.shape == (150,) + x.shape[1:] and mixed.dtype == x.dtype
    assert np.array_equal(mixed, kd.mixed_inputs(x, 3, np.random.default_rng(1)))
    lo, hi = np.minimum(x.min(0), x.max(0)), np.maximum(x.min(0), x.max(0))
    assert (mixed >= lo - 1e-6).all() and (mixed <= hi + 1e-6).all()
    assert not any(np.allclose(m, r) for m in mixed[:10] for r in x)  # new points, not copies
    assert len(kd.mixed_inputs(x, 10_000 // 50 + 5, np.random.default_rng(1))) == kd.MAX_MIXED_ROWS
    assert len(kd.mixed_inputs(x.astype(np.int32), 3, np.random.default_rng(1))) == 0

    teacher_logits = np.random.default_rng(2).normal(size=(4, 10)).astype(np.float32)
    student = np.random.default_rng(3).normal(size=(4, 10)).astype(np.float32)
    loss = kd._DistillLoss(10, True, False, 4.0, 0.7)
    with_label = kd._pack(teacher_logits, np.array([1, 2, 3, 4]), True)
    teacher_only = kd._pack(teacher_logits, None, True)
    teacher_only[:, 10] = 7  # whatever the label slot holds, flag 0 ignores it
    alone = kd._DistillLoss(10, True, False, 4.0, 1.0)
    assert np.allclose(loss.call(teacher_only, student), alone.call(with_label, student))
    assert not np.allclose(loss.call(with_label, student), alone.call(with_label, student))

    teacher = load_model(DEMO_MODEL)
    with training.reproducible(0):
        small = digits.subset(200, None)
        student_model = prune_structured(teacher, 0.5).model
        r = training.distill(student_model, teacher, small, epochs=1, batch_size=32, quiet=True,
                             config=training.DistillConfig(mixup=2))
    assert r.mixed_rows == 400 and r.epochs_run == 1
    with pytest.raises(ConfigError, match="mixup"):
        training.DistillConfig(mixup=-1).validate()


@pytest.mark.slow
def test_unlabelled_budget_run_learns_from_the_teacher_and_says_so(digits, tmp_path):
    from tinyprune import training
    from tinyprune.budget.search import prune_for_budget
    from tinyprune.load.data import Dataset
    from tinyprune.load.model import load_model

    unlabelled = Dataset("digits-unlabelled", digits.x_train, None, digits.x_val, None)
    r = prune_for_budget(load_model(DEMO_MODEL), unlabelled, tmp_path / "out", flash_budget="30%", epochs=2,
                         importance="l1", quiet=True, seed=0)
    assert r.labels == "none: teacher only"
    assert r.choices["fine_tune"] == {"mode": "distill", "temperature": 4.0, "teacher_weight": 1.0,
                                      "mixup": training.DEFAULT_MIXUP, "labels": False, "lr_schedule": "cosine"}
    assert r.final["int8_bytes"] <= r.targets["flash_bytes"]
    assert r.accuracy["tflm_accuracy"] >= 0.8  # agreement with the unpruned model on the validation images
    md = (tmp_path / "out" / "report.md").read_text()
    assert "labels: none: teacher only" in md and "agreement with the original model" in md
    assert f"{training.DEFAULT_MIXUP} teacher-labelled mixes per training input" in md
    assert "learning rate: Adam from its default, decayed to zero over each fine-tune (cosine)" in md
    assert r.steps[-1]["fine_tune"]["mixed_rows"] == training.DEFAULT_MIXUP * len(digits.x_train)


# ---------------------------------------------------------------- seeds and iterative steps

@pytest.fixture(scope="module")
def seeded_pair(tmp_path_factory):
    from tinyprune.budget.search import prune_for_budget
    from tinyprune.load.data import load_data
    from tinyprune.load.model import load_model

    ds = load_data("digits")
    out = tmp_path_factory.mktemp("seeded")
    runs = []
    for i in range(2):  # the sensitivity cache is off: the second run measures everything again
        r = prune_for_budget(load_model(DEMO_MODEL), ds, out / f"run{i}", flash_budget="25%", epochs=2,
                             importance="l1", iterative_steps=2, step_epochs=1, quiet=True, seed=7, use_cache=False)
        runs.append((r, out / f"run{i}"))
    return runs


@pytest.mark.slow
def test_seed_gives_identical_bytes_and_accuracy(seeded_pair):
    (a, da), (b, db) = seeded_pair
    assert (da / "model_int8.tflite").read_bytes() == (db / "model_int8.tflite").read_bytes()
    assert a.accuracy == b.accuracy and a.keep == b.keep
    assert [s["score_after_fine_tune"] for s in a.steps] == [s["score_after_fine_tune"] for s in b.steps]
    assert a.seed == {"seed": 7, "python_numpy_tf_seeded": True, "op_determinism": True, "note": a.seed["note"]}
    assert "seed: 7 (Python, NumPy and TF seeded, TF op determinism on" in (da / "report.md").read_text()
    from tensorflow.python.framework import config

    assert not config.is_op_determinism_enabled()  # restored after the job


@pytest.mark.slow
def test_iterative_mode_records_its_steps_and_their_time(seeded_pair):
    r, out = seeded_pair[0]
    assert [s["step"] for s in r.steps] == [1, 2]
    first, last = r.steps
    assert r.original["int8_bytes"] > first["targets"]["flash_bytes"] > last["targets"]["flash_bytes"]
    assert last["targets"]["flash_bytes"] == r.targets["flash_bytes"] >= r.final["int8_bytes"]
    assert first["measured_int8_bytes"] <= first["targets"]["flash_bytes"] * 1.03  # predicted, not enforced
    assert first["fine_tune"]["epochs_run"] == 1 and first["seconds"] > 0 and last["seconds"] > 0
    # distill="auto": both fine-tunes ran from the same start, the lower validation loss was kept
    loss = last["fine_tune"]["validation_loss"]
    assert all(0 < x < 10 for x in loss.values()) and set(last["fine_tune"]["validation"]) == set(loss)
    assert last["fine_tune"]["mode"] == ("distill" if loss["distill"] <= loss["labels"] else "labels")
    assert {"step 1: sensitivity", "step 1: fine-tune", "step 2: fine-tune"} <= set(r.seconds)
    assert r.choices["iterative"] == {"steps": 2, "step_epochs": 1, "final_epochs": 2}
    md = (out / "report.md").read_text()
    assert "- steps: 2 (1 epochs each, the last 2)" in md and "| step | flash target B |" in md


# ---------------------------------------------------------------- joint removal + compression

@pytest.mark.slow
def test_joint_compression_meets_a_budget_removal_alone_cannot_with_decode_arena_counted(digits, tmp_path):
    from tinyprune.budget.search import prune_for_budget
    from tinyprune.load.model import load_model

    model = load_model(DEMO_MODEL)
    kw = dict(flash_budget="14.5KB", ram_budget="12.5KB", round_to=16, epochs=1, importance="l1", quiet=True,
              seed=0)
    with pytest.raises(BudgetError, match="--allow-compress may reach it"):  # channels in 16s bottom out near 15 KB
        prune_for_budget(model, digits, tmp_path / "removal", **kw)
    r = prune_for_budget(model, digits, tmp_path / "joint", allow_compress=True, **kw)
    c, final, t = r.compression, r.final, r.targets
    assert final["int8_bytes"] <= t["flash_bytes"] and final["ram_bytes"] <= t["ram_bytes"]
    assert c["layers"] and set(c["layers"]) == set(r.choices["compression"]["layers"])
    # DECODE rebuilds the weights in the arena: measured, and inside the RAM budget
    assert c["arena_bytes_compressed"] > c["arena_bytes_int8"] and c["arena_bytes_compressed"] == final["arena_bytes"]
    assert c["tflm_outputs_bit_identical"] is True
    from firmware_export.arena_bound import header_arena_bytes
    from firmware_export.tflite_model import parse_tflite
    from firmware_export.tflm import measure_arena

    lut = (tmp_path / "joint" / "model_int8_lut.tflite").read_bytes()
    assert len(lut) == final["int8_bytes"]
    assert header_arena_bytes(parse_tflite(lut), measure_arena(lut)) == final["arena_bytes"]
    moves = r.choices["compression"]["moves_measured"]
    assert {"fc1 prune@0.5", "fc1 prune@0.75", "fc1 lut@4"} <= set(moves)
    assert r.accuracy["tflm_accuracy"] >= 0.85
