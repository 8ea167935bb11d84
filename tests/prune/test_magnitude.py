"""Magnitude pruning with tfmot: schedules, per-layer targets, M:N, block, PQAT, CLI errors.

Real TensorFlow, real tfmot, digits (and MNIST from ../shared/data when present). Each pruned
model is built once per session; every test then checks facts of the stripped model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import run_cli, stderr_one_line

TARGET = 0.8
LAYER_TARGETS = {"conv1": 0.5, "fc1": 0.9}


# ------------------------------------------------------------------ schedules (no TensorFlow)

def test_auto_frequency_reaches_final_sparsity():
    from tinyprune.prune.magnitude import Schedule

    for total in (30, 90, 91, 97, 450, 1875):
        r = Schedule(final_sparsity=0.8).resolve(total)
        assert r.last_update_step == r.end_step < total, (total, r)
        assert (r.end_step - r.begin_step) % r.frequency == 0
        assert r.reached_sparsity == pytest.approx(0.8)
        assert not r.notes


def test_tfmot_default_frequency_misses_target_and_says_so():
    from tinyprune.prune.magnitude import Schedule

    # 90 steps (digits, 2 epochs), tfmot's usual frequency=100 with end at the last step
    r = Schedule(final_sparsity=0.8, end_step=89, frequency=100).resolve(90)
    assert r.reached_sparsity < 0.8 - 0.05
    assert r.notes and "gives" in r.notes[0]


def test_user_end_step_gets_a_frequency_that_divides_the_ramp():
    from tinyprune.prune.magnitude import Schedule

    r = Schedule(final_sparsity=0.5, begin_step=3, end_step=80).resolve(100)
    assert (80 - 3) % r.frequency == 0 and r.reached_sparsity == pytest.approx(0.5)


def test_polynomial_formula_matches_tfmot():
    from tinyprune.prune.magnitude import Schedule
    from tinyprune.tfsetup import tfmot

    s = Schedule(initial_sparsity=0.1, final_sparsity=0.9, begin_step=0, end_step=100, frequency=10, power=3)
    theirs = tfmot.sparsity.keras.PolynomialDecay(0.1, 0.9, 0, 100, power=3, frequency=10)
    for step in (0, 10, 50, 90, 100):
        assert s.sparsity_at(step, 100) == pytest.approx(float(theirs(step)[1]), abs=1e-6)


@pytest.mark.parametrize("kwargs, words", [
    ({"initial_sparsity": 0.6, "final_sparsity": 0.5}, "below initial"),
    ({"begin_step": 10, "end_step": 10}, "after begin"),
    ({"final_sparsity": 1.0}, "[0, 1)"),
    ({"final_sparsity": -0.1}, "[0, 1)"),
    ({"frequency": 0}, "frequency"),
])
def test_schedule_validation(kwargs, words):
    from tinyprune.errors import ConfigError
    from tinyprune.prune.magnitude import Schedule

    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace(")", r"\)")):
        Schedule(**kwargs).validate()


def test_option_parsers(tmp_path):
    from tinyprune.errors import ConfigError
    from tinyprune.prune.magnitude import parse_block_size, parse_layer_targets, parse_m_by_n

    assert parse_m_by_n("2:4") == (2, 4) and parse_m_by_n(None) is None
    assert parse_block_size("1x4") == (1, 4) and parse_block_size(None) == (1, 1)
    for bad in ("4:2", "2-4", "0:4"):
        with pytest.raises(ConfigError):
            parse_m_by_n(bad)
    cfg = tmp_path / "s.toml"
    cfg.write_text("[layers]\nconv2 = 0.7\nfc1 = 0.9\n")
    assert parse_layer_targets(["fc1=0.95"], str(cfg)) == {"conv2": 0.7, "fc1": 0.95}
    cfg.write_text("[layers]\nfc1 = 1.5\n")
    with pytest.raises(ConfigError, match="fc1"):
        parse_layer_targets([], str(cfg))
    with pytest.raises(ConfigError):
        parse_layer_targets(["fc1"])


# ------------------------------------------------------------------ real pruning on digits

@pytest.fixture(scope="session")
def demo(demo_model_path):
    from tinyprune.load.model import load_model

    return load_model(demo_model_path)


@pytest.fixture(scope="session")
def pruned_per_layer(demo, digits, tmp_path_factory):
    """Polynomial 0 -> 80% with conv1 at 50% and fc1 at 90%, automatic frequency, TensorBoard on."""
    from tinyprune.prune.magnitude import PruneOptions, Schedule, prune_magnitude

    logs = tmp_path_factory.mktemp("tb")
    opts = PruneOptions(Schedule(final_sparsity=TARGET), layer_targets=LAYER_TARGETS, tensorboard_dir=str(logs))
    return prune_magnitude(demo, digits, epochs=2, quiet=True, options=opts), logs


def test_sparsity_after_strip_matches_target_per_layer(pruned_per_layer, demo):
    result, _ = pruned_per_layer
    for plan in result.plans:
        want = LAYER_TARGETS.get(plan.name, TARGET)
        assert plan.target == want
        assert abs(result.sparsity[plan.name] - want) <= 0.01, (plan.name, result.sparsity[plan.name], want)
    # stripped: no tfmot wrappers left, and the input model was not touched
    assert all("prune" not in type(layer).__name__.lower() for layer in result.model.layers)
    assert demo.get_layer("fc1").kernel.numpy().astype(bool).mean() > 0.99
    assert result.mode == "model"


def test_pruning_summaries_hold_every_layers_sparsity(pruned_per_layer):
    """tfmot's PruningSummaries write each pruned layer's mask sparsity for TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result, logs = pruned_per_layer
    events = EventAccumulator(str(logs / "metrics"))
    events.Reload()
    tags = set(events.Tags()["tensors"])
    for plan in result.plans:
        assert f"prune_low_magnitude_{plan.name}/mask:0/sparsity" in tags, sorted(tags)


def test_int8_size_does_not_shrink_with_sparsity(pruned_per_layer, demo, demo_int8):
    """The fact the issue starts from: a masked model converts to the same bytes."""
    from tinyprune.quantize.int8 import quantize_int8
    from tinyprune.load.data import load_digits

    result, _ = pruned_per_layer
    sparse = quantize_int8(result.model, load_digits().x_train, num_calibration=200)
    assert len(sparse) == demo_int8.stat().st_size


def test_constant_schedule_reaches_target(demo, digits):
    from tinyprune.prune.magnitude import Schedule, prune_magnitude

    result = prune_magnitude(demo, digits, Schedule(kind="constant", final_sparsity=0.6), epochs=1, quiet=True)
    for name, s in result.sparsity.items():
        assert abs(s - 0.6) <= 0.01, (name, s)


def test_two_four_sparsity_in_every_block(demo, digits):
    from tinyprune.prune.magnitude import PruneOptions, Schedule, prune_magnitude

    opts = PruneOptions(Schedule(final_sparsity=0.3), m_by_n=(2, 4))
    result = prune_magnitude(demo, digits, epochs=1, quiet=True, options=opts)
    patterned = [p.name for p in result.plans if p.pattern == "2:4"]
    assert set(patterned) == {"conv2", "conv3", "fc1", "classes"}  # conv1 has 1 input channel
    for name in patterned:
        w = result.model.get_layer(name).kernel.numpy()
        rows = np.moveaxis(w, -1, 0).reshape(-1, w.shape[-2])  # [out * h * w, in]: tfmot's TFLite order
        blocks = rows.reshape(rows.shape[0], -1, 4)
        zeros = (blocks == 0).sum(axis=-1)
        assert zeros.min() >= 2, (name, zeros.min())
        assert abs(result.sparsity[name] - 0.5) <= 0.01
    assert next(p for p in result.plans if p.name == "conv1").pattern == "unstructured"


def test_block_sparsity_on_dense(demo, digits):
    from tinyprune.prune.magnitude import PruneOptions, Schedule, prune_magnitude

    opts = PruneOptions(Schedule(final_sparsity=0.5), block_size=(1, 4))
    result = prune_magnitude(demo, digits, epochs=1, quiet=True, options=opts)
    w = result.model.get_layer("fc1").kernel.numpy()  # [512, 32]
    blocks = (w == 0).reshape(w.shape[0], -1, 4)
    assert np.all(blocks.all(axis=-1) | ~blocks.any(axis=-1)), "a 1x4 block is partly pruned"
    assert abs(result.sparsity["fc1"] - 0.5) <= 0.01
    assert next(p for p in result.plans if p.name == "conv2").pattern == "unstructured"


def test_pqat_keeps_zeros_in_the_int8_model(demo, digits):
    from firmware_export.compress import read_model
    from tinyprune.prune.magnitude import PruneOptions, Schedule, prune_magnitude
    from tinyprune.quantize.int8 import quantize_int8

    opts = PruneOptions(Schedule(final_sparsity=0.8), pqat=True)
    result = prune_magnitude(demo, digits, epochs=1, quiet=True, options=opts)
    assert result.qat_model is not None and result.qat_accuracy is not None
    int8 = quantize_int8(result.qat_model, digits.x_train, num_calibration=100)
    fc1 = [t for t in read_model(int8).subgraphs[0].tensors
           if t.buffer is not None and t.buffer.data and t.array.dtype == np.int8 and t.array.size == 512 * 32]
    assert fc1 and (fc1[0].array == 0).mean() >= 0.79


def test_depthwise_is_reported_not_prunable():
    from tinyprune.errors import UnsupportedLayerError
    from tinyprune.prune.magnitude import PruneOptions, plan_layers, unprunable_layers
    from tinyprune.tfsetup import keras

    inp = keras.Input((8, 8, 4))
    x = keras.layers.DepthwiseConv2D(3, name="dw")(inp)
    x = keras.layers.Conv2D(8, 1, name="pw")(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="out")(keras.layers.Flatten()(x)))
    assert unprunable_layers(model) == {"dw": "DepthwiseConv2D"}
    assert [p.name for p in plan_layers(model, PruneOptions())] == ["pw", "out"]
    with pytest.raises(UnsupportedLayerError, match="dw"):
        plan_layers(model, PruneOptions(layer_targets={"dw": 0.5}))


def test_mnist_sparsity_matches_target(mnist_train):
    """A small CNN on MNIST from ../shared/data: per-layer sparsity after strip within 1 point."""
    from tinyprune import training
    from tinyprune.prune.magnitude import Schedule, prune_magnitude
    from tinyprune.tfsetup import keras

    ds = mnist_train.subset(4000, 1000)
    inp = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(inp)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(10, name="out")(x))
    training.compile_for(model, ds)
    training.train(model, ds, 1, 64, quiet=True)
    result = prune_magnitude(model, ds, Schedule(final_sparsity=0.9), epochs=1, batch_size=64, quiet=True)
    assert set(result.sparsity) == {"conv", "out"}
    for name, s in result.sparsity.items():
        assert abs(s - 0.9) <= 0.01, (name, s)
    assert result.accuracy > 0.7


# ------------------------------------------------------------------ CLI

@pytest.mark.parametrize("args, words", [
    (["--initial-sparsity", "0.6", "--sparsity", "0.5"], "below initial"),
    (["--begin-step", "20", "--end-step", "10"], "after begin"),
    (["--sparsity", "1.0"], "[0, 1)"),
    (["--compress", "lut", "--bits", "8"], "2..7"),
    (["--compress", "lut", "--bits", "1"], "2..7"),
    (["--compress", "prune", "--sparsity", "0.1"], "12.5%"),
    (["--layer-sparsity", "nosuch=0.5"], "nosuch"),
])
def test_cli_bad_input_one_line_exit_2(args, words, demo_model_path, tmp_path):
    proc = run_cli(["prune", str(demo_model_path), "--method", "magnitude", "--data", "digits",
                    "-o", str(tmp_path / "out"), *args])
    assert proc.returncode == 2
    line = stderr_one_line(proc)
    assert line.startswith("error:") and words in line
    assert not (tmp_path / "out").exists()


def test_cli_magnitude_lut_end_to_end(demo_model_path, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(["prune", str(demo_model_path), "--method", "magnitude", "--data", "digits", "--sparsity", "0.8",
                    "--compress", "lut", "--bits", "4", "--epochs", "1", "--json", "-o", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    for row in report["flash"]:  # each flash row is the size of the file it names
        assert (out / row["file"]).stat().st_size == row["model_bytes"], row
    for name in ("model.h5", "model_int8.tflite", "model_int8_clustered.tflite", "model_int8_lut.tflite",
                 "report.json"):
        assert (out / name).is_file(), name
    # honest flash accounting: the pruned int8 model is reported at its real (dense) size
    flash = {row["file"]: row for row in report["flash"]}
    int8_size = (out / "model_int8.tflite").stat().st_size
    assert flash["model_int8.tflite"]["model_bytes"] == int8_size == flash["model_int8.tflite"]["dense_int8_bytes"]
    lut_size = (out / "model_int8_lut.tflite").stat().st_size
    assert flash["model_int8_lut.tflite"]["model_bytes"] == lut_size < int8_size
    comp = report["compression"]
    assert comp["outputs_identical_to_uncompressed"] is True and comp["formats_used"] == ["lut"]
    assert comp["extra_arena_target_bytes"] > 0
    assert "experimental on Cortex-M" in comp["experimental"]
    assert report["pruning_mode"] == "model"
    for layer in report["layers"]:
        assert abs(layer["sparsity_after_strip"] - 0.8) <= 0.01
    # the human-readable report says the same, including the Cortex-M warning
    from rich.console import Console

    from tinyprune.cli.prune_magnitude import print_report
    from tinyprune.pipeline.compress_stage import FlashRow

    console = Console(record=True, width=200, file=open("/dev/null", "w"))
    rows = [FlashRow(**{k: v for k, v in r.items() if k != "flash_fraction"}) for r in report["flash"]]
    print_report(console, report, rows, out)
    text = console.export_text()
    assert "experimental on Cortex-M" in text and "100.0%" in text and "more arena" in text
    # nothing is overwritten without --force
    again = run_cli(["prune", str(demo_model_path), "--data", "digits", "-o", str(out)])
    assert again.returncode == 2 and "--force" in stderr_one_line(again)


def test_cli_magnitude_prune_compression_end_to_end(demo_model_path, tmp_path):
    """--compress prune: flash shrinks with sparsity, losslessly (same TFLM outputs as model_int8.tflite)."""
    out = tmp_path / "out"
    proc = run_cli(["prune", str(demo_model_path), "--method", "magnitude", "--data", "digits", "--sparsity", "0.8",
                    "--compress", "prune", "--epochs", "1", "--json", "-o", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    comp = report["compression"]
    assert comp["compressed_from"] == "model_int8.tflite" and comp["formats_used"] == ["prune"]
    assert comp["outputs_identical_to_uncompressed"] is True
    assert comp["accuracy_compressed_tflm"] == report["accuracy_int8_tflm"]
    assert not (out / "model_int8_clustered.tflite").exists()
    size = (out / "model_int8_prune.tflite").stat().st_size
    assert size == comp["compressed_bytes"] < 0.75 * (out / "model_int8.tflite").stat().st_size
    fc1 = next(t for t in comp["tensors"] if "fc1" in t["name"])
    assert fc1["method"] == "prune" and abs(fc1["sparsity"] - 0.8) <= 0.01
    # 1 mask bit per weight + the kept int8 values + the 16-byte header
    assert fc1["encoded_bytes"] == 512 * 32 // 8 + round(512 * 32 * (1 - fc1["sparsity"])) + 16
