"""Keras 3 models in and out (tinyprune/load/keras3.py): translation to tf_keras and back,
every job on Keras 3 input, refusals before TensorFlow, Keras 3's own route to the firmware.

Every model here is built with the keras 3 package in the test itself.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run_cli, run_python, stderr_one_line

TOL = 1e-5


@pytest.fixture(scope="module")
def K():
    from tinyprune.load.keras3 import keras3

    return keras3()


@pytest.fixture(scope="module")
def tk():
    from tinyprune.tfsetup import keras

    return keras


def _diff(a, b, shape, seed=1, n=6):
    x = np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)
    ya, yb = np.asarray(a(x, training=False)), np.asarray(b(x, training=False))
    assert ya.shape == yb.shape
    return float(np.abs(ya - yb).max())


def _round_trip(K, model, shape):
    """Keras 3 -> tf_keras -> Keras 3, both steps checked within TOL; returns the tf_keras model."""
    from tinyprune.load.keras3 import from_keras3, to_keras3

    t = from_keras3(model)
    assert type(t).__module__.startswith("tf_keras")
    assert _diff(model, t, shape) <= TOL
    back = to_keras3(t)
    assert type(back).__module__.startswith("keras.src")
    assert _diff(back, t, shape) <= TOL
    return t


# --------------------------------------------------------------------------- single layers (docs table)

# name -> (factory(L) -> layer, input shape); each row of docs/keras3.md's table is one of these.
LAYERS = {
    "Dense": (lambda L: L.Dense(5), (6,)),
    "Conv1D": (lambda L: L.Conv1D(4, 3, padding="same"), (10, 3)),
    "Conv2D": (lambda L: L.Conv2D(4, 3, strides=2), (9, 9, 3)),
    "Conv2D groups": (lambda L: L.Conv2D(4, 3, groups=2, padding="same"), (8, 8, 4)),
    "Conv2D dilation": (lambda L: L.Conv2D(4, 3, dilation_rate=2), (9, 9, 2)),
    "Conv2DTranspose": (lambda L: L.Conv2DTranspose(4, 3, strides=2), (5, 5, 3)),
    "DepthwiseConv2D": (lambda L: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), (8, 8, 3)),
    "SeparableConv2D": (lambda L: L.SeparableConv2D(5, 3), (8, 8, 3)),
    "SeparableConv1D": (lambda L: L.SeparableConv1D(5, 3), (10, 3)),
    "DepthwiseConv1D": (lambda L: L.DepthwiseConv1D(3), (10, 3)),
    "BatchNormalization": (lambda L: L.BatchNormalization(momentum=0.9, epsilon=1e-3), (6, 6, 3)),
    "LayerNormalization": (lambda L: L.LayerNormalization(), (7,)),
    "MaxPooling2D": (lambda L: L.MaxPooling2D(2), (8, 8, 3)),
    "AveragePooling2D": (lambda L: L.AveragePooling2D(2, padding="same"), (7, 7, 3)),
    "MaxPooling1D": (lambda L: L.MaxPooling1D(2), (10, 3)),
    "AveragePooling1D": (lambda L: L.AveragePooling1D(2), (10, 3)),
    "GlobalAveragePooling2D": (lambda L: L.GlobalAveragePooling2D(), (6, 6, 3)),
    "GlobalAveragePooling2D keepdims": (lambda L: L.GlobalAveragePooling2D(keepdims=True), (6, 6, 3)),
    "GlobalMaxPooling2D": (lambda L: L.GlobalMaxPooling2D(), (6, 6, 3)),
    "GlobalAveragePooling1D": (lambda L: L.GlobalAveragePooling1D(), (10, 3)),
    "Flatten": (lambda L: L.Flatten(), (4, 4, 3)),
    "Reshape": (lambda L: L.Reshape((8, 6)), (4, 4, 3)),
    "Permute": (lambda L: L.Permute((2, 1)), (4, 3)),
    "RepeatVector": (lambda L: L.RepeatVector(3), (4,)),
    "ZeroPadding2D": (lambda L: L.ZeroPadding2D(((1, 2), (0, 1))), (5, 5, 3)),
    "Cropping2D": (lambda L: L.Cropping2D(1), (6, 6, 3)),
    "UpSampling2D": (lambda L: L.UpSampling2D(2), (4, 4, 3)),
    "UpSampling2D bilinear": (lambda L: L.UpSampling2D(2, interpolation="bilinear"), (4, 4, 3)),
    "Dropout": (lambda L: L.Dropout(0.5), (6,)),
    "SpatialDropout2D": (lambda L: L.SpatialDropout2D(0.5), (6, 6, 3)),
    "GaussianNoise": (lambda L: L.GaussianNoise(0.1), (6,)),
    "ReLU": (lambda L: L.ReLU(), (6,)),
    "ReLU6": (lambda L: L.ReLU(6.0), (6,)),
    "ReLU leaky threshold": (lambda L: L.ReLU(max_value=4.0, negative_slope=0.1, threshold=0.5), (6,)),
    "LeakyReLU": (lambda L: L.LeakyReLU(negative_slope=0.2), (6,)),
    "PReLU": (lambda L: L.PReLU(), (6,)),
    "ELU": (lambda L: L.ELU(alpha=0.5), (6,)),
    "Softmax": (lambda L: L.Softmax(), (6,)),
    "Rescaling": (lambda L: L.Rescaling(1 / 127.5, offset=-1.0), (6,)),
    "Resizing": (lambda L: L.Resizing(4, 5), (8, 8, 3)),
    "Resizing nearest crop": (lambda L: L.Resizing(4, 4, interpolation="nearest", crop_to_aspect_ratio=True),
                              (8, 6, 3)),
}
ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "softsign",
               "exponential", "swish", "silu", "gelu", "mish"]
MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_translates_exactly(K, name):
    factory, shape = LAYERS[name]
    model = K.Sequential([K.Input(shape), factory(K.layers)])
    t = _round_trip(K, model, shape)
    assert [type(layer).__name__ for layer in t.layers] == [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_translates_exactly(K, activation):
    model = K.Sequential([K.Input((6,)), K.layers.Dense(4, activation=activation),
                          K.layers.Activation(activation)])
    _round_trip(K, model, (6,))


@pytest.mark.parametrize("merge", MERGES)
def test_merge_layer_translates_exactly(K, merge):
    inp = K.Input((6,))
    a, b = K.layers.Dense(4)(inp), K.layers.Dense(4)(inp)
    out = getattr(K.layers, merge)()([a, b])
    _round_trip(K, K.Model(inp, out), (6,))


def test_regularizers_and_constraints_carry_over(K, tk):
    from tinyprune.load.keras3 import from_keras3

    model = K.Sequential([K.Input((6,)), K.layers.Dense(4, kernel_regularizer=K.regularizers.L2(0.01),
                                                         kernel_constraint=K.constraints.MaxNorm(2.0))])
    t = from_keras3(model)
    assert isinstance(t.layers[0].kernel_regularizer, tk.regularizers.L2)
    assert isinstance(t.layers[0].kernel_constraint, tk.constraints.MaxNorm)


# --------------------------------------------------------------------------- the four known breakages

def test_sequential_nested_in_functional_translates_exactly(K):
    inner = K.Sequential([K.Input((6,)), K.layers.Dense(5), K.layers.ReLU()], name="inner")
    inp = K.Input((6,))
    out = K.layers.Dense(3)(inner(inp))
    t = _round_trip(K, K.Model(inp, out), (6,))
    assert type(t.get_layer("inner")).__name__ == "Sequential"


def test_keras_ops_call_is_refused_naming_the_layer(K):
    from tinyprune.load.keras3 import Keras3TranslationError, from_keras3

    inp = K.Input((6,))
    out = K.ops.relu(K.layers.Dense(3, name="d")(inp))
    with pytest.raises(Keras3TranslationError) as e:
        from_keras3(K.Model(inp, out))
    msg = str(e.value)
    assert "\n" not in msg and "(Relu)" in msg and "keras.ops call" in msg and "layers.ReLU" in msg
    assert "keras.ops.relu(output of 'd')" in msg  # the call and what it is applied to


@pytest.mark.slow
def test_mobilenetv3_is_refused_with_one_line_naming_the_layer(K):
    """Keras 3's MobileNetV3 computes hard_swish as Activation("hard_silu"), which tf_keras computes
    differently (its hard_sigmoid inside): refused, naming the first such layer, before any weight copy."""
    from tinyprune.load.keras3 import Keras3TranslationError, from_keras3

    model = K.applications.MobileNetV3Small(input_shape=(32, 32, 3), alpha=0.75, weights=None, classes=10,
                                            include_preprocessing=False)
    first = next(d for d in model.get_config()["layers"] if d["config"].get("activation") == "hard_silu")
    with pytest.raises(Keras3TranslationError) as e:
        from_keras3(model)
    msg = str(e.value)
    assert "\n" not in msg and f"'{first['name']}' ({first['class_name']})" in msg, msg
    assert "activation 'hard_silu' is not one both Keras versions compute identically" in msg, msg


@pytest.mark.parametrize("option", ["pad_to_aspect_ratio", "antialias"])
def test_resizing_new_arguments_refused_unless_at_their_no_op_value(K, option):
    from tinyprune.load.keras3 import Keras3TranslationError, from_keras3

    _round_trip(K, K.Sequential([K.Input((8, 6, 3)), K.layers.Resizing(4, 4, **{option: False})]), (8, 6, 3))
    with pytest.raises(Keras3TranslationError, match=rf"'rs' \(Resizing\).*{option}=True has no tf_keras"):
        from_keras3(K.Sequential([K.Input((8, 6, 3)), K.layers.Resizing(4, 4, name="rs", **{option: True})]))


@pytest.mark.parametrize("where", ["Dense", "Activation"])
def test_hard_sigmoid_is_refused_because_it_computes_differently(K, tk, where):
    from tinyprune.load.keras3 import Keras3TranslationError, from_keras3

    # the reason for the refusal, measured: the two libraries' hard_sigmoid differ at x = 1
    assert abs(float(K.activations.hard_sigmoid(np.float32(1.0))) - 2 / 3) < 1e-6
    from tinyprune.tfsetup import tf

    assert abs(float(tk.activations.hard_sigmoid(tf.constant([1.0]))[0]) - 0.7) < 1e-6
    layer = (K.layers.Dense(3, activation="hard_sigmoid", name="hs") if where == "Dense"
             else K.layers.Activation("hard_sigmoid", name="hs"))
    with pytest.raises(Keras3TranslationError, match=rf"'hs' \({where}\).*hard_sigmoid.*0.667 vs 0.700"):
        from_keras3(K.Sequential([K.Input((4,)), layer]))


def test_custom_layer_is_refused_by_the_translator(K):
    from tinyprune.load.keras3 import Keras3TranslationError, from_keras3

    class Twice(K.layers.Layer):
        def call(self, x):
            return 2 * x

    with pytest.raises(Keras3TranslationError, match="'twice'"):
        from_keras3(K.Sequential([K.Input((4,)), Twice(name="twice")]))


def test_the_output_check_refuses_a_different_model(K):
    """The check is real: a translation whose weights differ is refused, on random inputs and on data."""
    from tinyprune.load import keras3 as k3

    model = K.Sequential([K.Input((6,)), K.layers.Dense(4, name="d")])
    t = k3.from_keras3(model)
    w = t.get_layer("d").get_weights()
    t.get_layer("d").set_weights([w[0] + 1e-3, w[1]])
    with pytest.raises(k3.Keras3TranslationError, match=r"differ .* first at layer 'd' \(Dense\)"):
        k3._verify(model, t, k3._inputs_for(model), "test")
    with pytest.raises(k3.Keras3TranslationError, match="on your data"):
        k3.as_tf_keras(t, np.ones((5, 6), np.float32))


# --------------------------------------------------------------------------- models through every job

def _functional(K):
    L = K.layers
    inp = K.Input((8, 8, 1))
    x = L.Conv2D(16, 3, padding="same", name="stem")(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    y = L.DepthwiseConv2D(3, padding="same")(x)
    y = L.BatchNormalization()(y)
    x = L.Add()([x, y])
    z = L.SeparableConv2D(16, 3, padding="same", activation="relu")(x)
    x = L.Concatenate()([x, z])
    x = L.Conv2D(48, 3, padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(10, activation="softmax")(x)
    return K.Model(inp, out, name="k3_functional")


def _sequential(K):
    L = K.layers
    return K.Sequential([K.Input((8, 8, 1)), L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(),
                         L.Conv2D(32, 3, activation="relu"), L.Flatten(), L.Dense(64, activation="relu"),
                         L.Dense(10, activation="softmax")], name="k3_sequential")


def _trained(K, model, digits):
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(digits.x_train.reshape(-1, 8, 8, 1)[:400], digits.y_train[:400], epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def k3_files(K, digits, tmp_path_factory):
    d = tmp_path_factory.mktemp("k3models")
    files = {}
    for name, build in (("sequential", _sequential), ("functional", _functional)):
        model = _trained(K, build(K), digits)
        model.save(d / f"{name}.keras")
        files[name] = d / f"{name}.keras"
    model.save(d / "functional.h5")  # the same model as a Keras 3 .h5
    files["functional_h5"] = d / "functional.h5"
    return files


def _check_keras3_output(K, tk, out: Path, shape, smaller_than: int | None = None):
    """OUT/model_keras3.keras opens in Keras 3 and computes what OUT/model.h5 computes."""
    k3_path = out / "model_keras3.keras"
    assert k3_path.is_file()
    with zipfile.ZipFile(k3_path) as z:
        assert json.loads(z.read("metadata.json"))["keras_version"].startswith("3.")
    back = K.saving.load_model(k3_path)
    ref = tk.models.load_model(out / "model.h5", compile=False)
    assert _diff(back, ref, shape) <= TOL
    if smaller_than is not None:
        assert back.count_params() < smaller_than
    return back


@pytest.mark.slow
def test_cli_structured_on_a_keras3_sequential_file(K, tk, k3_files, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(["prune", str(k3_files["sequential"]), "--method", "structured", "--ratio", "0.3",
                    "--data", "digits", "--epochs", "1", "--json", "--quiet", "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    original = K.saving.load_model(k3_files["sequential"])
    back = _check_keras3_output(K, tk, out, (8, 8, 1), smaller_than=original.count_params())
    assert back.layers[0].filters < original.layers[0].filters
    assert (out / "model_int8.tflite").is_file()


@pytest.mark.slow
def test_run_on_a_keras3_file_writes_the_keras3_copy(K, tk, k3_files, tmp_path):
    """`tinyprune run` writes the layout every job writes: with a Keras 3 input, OUT/model_keras3.keras
    beside OUT/model.h5 (it wrote only model.h5 before the writers were shared)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[model]\npath = "{k3_files["sequential"]}"\n[data]\nsource = "digits"\n'
                   '[prune]\nmethod = "structured"\nratio = 0.3\nepochs = 1\n[fit]\nboards = ["rpi-pico"]\n')
    out = tmp_path / "out"
    proc = run_cli(["run", str(cfg), "-o", str(out), "--json", "--quiet"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    original = K.saving.load_model(k3_files["sequential"])
    _check_keras3_output(K, tk, out, (8, 8, 1), smaller_than=original.count_params())
    assert "model_keras3.keras" in json.loads(proc.stdout)["files"]


@pytest.mark.slow
def test_cli_flash_budget_on_a_keras3_functional_file(K, tk, k3_files, tmp_path):
    """Also the end-to-end regression test of the forked arena probe: this run failed with "reports an
    arena it cannot allocate" while the probe's child garbage-collected the parent's TensorFlow objects
    (tests/firmware_export/test_tflm_fork.py)."""
    out = tmp_path / "out"
    proc = run_cli(["prune", str(k3_files["functional"]), "--flash-budget", "50%", "--data", "digits",
                    "--epochs", "1", "--importance", "l1", "--allocation", "sensitivity", "--json", "--quiet",
                    "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["final"]["int8_bytes"] <= report["targets"]["flash_bytes"]
    original = K.saving.load_model(k3_files["functional"])
    _check_keras3_output(K, tk, out, (8, 8, 1), smaller_than=original.count_params())
    assert (out / "firmware").is_dir()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sequential", "functional", "functional_h5"])
def test_library_jobs_on_keras3_models(K, tk, k3_files, digits, tmp_path, name):
    """Structured (in memory), magnitude (file, write_prune_outputs), for the Sequential pruning
    at init (in memory) and a one-point sweep, the flash budget (in memory; the .h5 copy of the
    functional model skips it): each gives a Keras 3 model equal to the tf_keras result."""
    from tinyprune.load.keras3 import came_from_keras3, to_keras3
    from tinyprune.load.model import load_model
    from tinyprune.pipeline.outputs import write_prune_outputs
    from tinyprune.prune.magnitude import Schedule, prune_magnitude
    from tinyprune.prune.structured import prune_structured

    ds = digits.fit_to((None, 8, 8, 1)).subset(300, 100)
    in_memory = K.saving.load_model(k3_files[name])
    s = prune_structured(in_memory, 0.4, data=ds)  # an in-memory Keras 3 model goes straight in
    assert s.params_after < s.params_before
    assert _diff(to_keras3(s.model), s.model, (8, 8, 1)) <= TOL

    model = load_model(k3_files[name])  # a Keras 3 file, translated
    assert came_from_keras3(model)
    m = prune_magnitude(model, ds, Schedule("constant", 0.5, 0.5), epochs=1, quiet=True)
    out = write_prune_outputs(tmp_path / "mag", m.model, {"model": str(k3_files[name])})
    back = _check_keras3_output(K, tk, out.folder, (8, 8, 1))
    kernel = [w for w in back.weights if "kernel" in w.path][-1]
    assert float(np.mean(np.asarray(kernel) == 0)) >= 0.4  # the zeros made it into the Keras 3 file

    if name == "sequential":  # pruning at init: the Keras 3 model's translation is pruned in place
        from tinyprune.prune.at_init.pruner import prune_at_init

        r = prune_at_init(K.saving.load_model(k3_files[name]), "synflow", 2.0, rounds=2)
        out = write_prune_outputs(tmp_path / "init", r.model, {"method": "synflow"})  # no file: the model says
        _check_keras3_output(K, tk, out.folder, (8, 8, 1))
        assert 0.3 < r.kept_fraction < 0.7

    if name in ("sequential", "functional"):
        from tinyprune.budget.search import prune_for_budget

        r = prune_for_budget(in_memory, ds, tmp_path / "budget", flash_budget="60%", epochs=1, quiet=True,
                             use_cache=False, importance="l1", allocation="sensitivity")
        assert r.status == "pruned"
        _check_keras3_output(K, tk, tmp_path / "budget", (8, 8, 1), smaller_than=in_memory.count_params())

    if name == "sequential":  # a sweep point loads the driver's .h5 bytes: it is told the input was Keras 3
        from tinyprune.budget.sweep import sweep

        result = sweep(in_memory, ds, ["60%"], tmp_path / "sweep", epochs=1, quiet=True)
        _check_keras3_output(K, tk, tmp_path / "sweep" / result.points[0].folder, (8, 8, 1),
                             smaller_than=in_memory.count_params())


@pytest.fixture(scope="module")
def mobilenet(K, digits):
    """keras.applications.MobileNetV2 (Keras 3, alpha 0.35, 32x32, weights=None, logits) and digits
    upscaled to 32x32x3 (200 train, 64 validation samples)."""
    from tinyprune.load.data import Dataset

    def up(x):  # digits 8x8 -> 32x32x3
        return np.repeat(np.repeat(x.reshape(-1, 8, 8, 1), 4, axis=1), 4, axis=2).repeat(3, axis=3)

    ds = Dataset("digits32", up(digits.x_train[:200]), digits.y_train[:200], up(digits.x_val[:64]),
                 digits.y_val[:64])
    # logits out: an untrained model's softmax input has a degenerate int8 scale that TFLM's softmax
    # aborts on (tests/security/test_hostile_tflite.py::test_untrained_mobilenetv2_int8_abort)
    model = K.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10,
                                       classifier_activation=None)
    rng = np.random.default_rng(0)  # trained-like BatchNorm statistics: freshly built, every folded bias is 0
    for layer in model.layers:  # and the converter shares identical buffers, so sizes would shift once tuned
        if isinstance(layer, K.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n), rng.normal(0, 0.1, n),
                               rng.uniform(0.5, 1.5, n)])
    return model, ds


@pytest.mark.slow
def test_mobilenetv2_keras3_structured_and_round_trip(K, tk, mobilenet, tmp_path):
    """keras.applications.MobileNetV2: translated exactly (checked on data too), structured
    pruning, written back as Keras 3 within 1e-5."""
    from tinyprune.load.keras3 import from_keras3
    from tinyprune.pipeline.outputs import write_prune_outputs
    from tinyprune.prune.structured import prune_structured

    model, ds = mobilenet
    t = from_keras3(model, ds.x_train)
    assert _diff(model, t, (32, 32, 3), n=4) <= TOL
    s = prune_structured(t, 0.3, data=ds)
    out = write_prune_outputs(tmp_path / "mb", s.model, {"model": "MobileNetV2"}, keras3=True)
    _check_keras3_output(K, tk, out.folder, (32, 32, 3), smaller_than=model.count_params())


@pytest.mark.slow
def test_mobilenetv2_keras3_magnitude_and_round_trip(K, tk, mobilenet, tmp_path):
    """The in-memory Keras 3 MobileNetV2 through magnitude pruning (50%, one epoch): the Keras 3
    copy computes what the pruned tf_keras model computes and holds exactly its zeros."""
    from tinyprune.pipeline.outputs import write_prune_outputs
    from tinyprune.prune.magnitude import Schedule, prune_magnitude

    model, ds = mobilenet
    m = prune_magnitude(model, ds, Schedule("constant", 0.5, 0.5), epochs=1, quiet=True)
    out = write_prune_outputs(tmp_path / "mag", m.model, {"model": "MobileNetV2"}, keras3=True)
    back = _check_keras3_output(K, tk, out.folder, (32, 32, 3))
    zeros_tf = sum(int(np.sum(np.asarray(w) == 0)) for w in m.model.weights if "kernel" in w.name)
    zeros_k3 = sum(int(np.sum(np.asarray(w) == 0)) for w in back.weights if "kernel" in w.path)
    total = sum(int(np.prod(w.shape)) for w in back.weights if "kernel" in w.path)
    assert zeros_k3 == zeros_tf and zeros_k3 / total >= 0.4  # the zeros made it into the Keras 3 file


@pytest.mark.slow
def test_mobilenetv2_keras3_flash_budget_and_round_trip(K, tk, mobilenet, tmp_path):
    """The in-memory Keras 3 MobileNetV2 through the flash budget (80%, l1, no fine-tuning:
    training the translated MobileNetV2 is the magnitude test's; here each of the three int8
    conversions of this model takes ~25 s): the budget is met on the measured int8 artifact
    and OUT/model_keras3.keras, structurally smaller, computes what OUT/model.h5 computes."""
    from tinyprune.budget.search import prune_for_budget

    model, ds = mobilenet
    r = prune_for_budget(model, ds, tmp_path / "budget", flash_budget="80%", epochs=0, importance="l1",
                         allocation="sensitivity", distill=False, calibration=32, margin=0.02, quiet=True,
                         use_cache=False)
    assert r.status == "pruned"
    assert r.final["int8_bytes"] <= r.targets["flash_bytes"] < r.original["int8_bytes"]
    _check_keras3_output(K, tk, tmp_path / "budget", (32, 32, 3), smaller_than=model.count_params())


# --------------------------------------------------------------------------- bad input: before TensorFlow

@pytest.fixture(scope="module")
def bad_files(K, tmp_path_factory, k3_files):
    d = tmp_path_factory.mktemp("k3bad")
    K.Sequential([K.Input((4,)), K.layers.Lambda(lambda x: x * 2, name="times2")]).save(d / "lambda.keras")

    @K.saving.register_keras_serializable(package="userpkg")
    class Twice(K.layers.Layer):
        def call(self, x):
            return 2 * x

    K.Sequential([K.Input((4,)), Twice(name="twice")]).save(d / "custom.keras")
    K.Sequential([K.Input((4,)), Twice(name="twice")]).save(d / "custom.h5")
    K.Sequential([K.Input((4,)), K.layers.Lambda(lambda x: x * 2, name="times2")]).save(d / "lambda.h5")
    data = k3_files["sequential"].read_bytes()
    (d / "truncated.keras").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(d / "layer.keras", "w") as z:  # a Keras 3 archive of a layer, not a model
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps({"module": "keras.layers", "class_name": "Dense",
                                              "config": {"name": "d", "units": 3}, "registered_name": None}))
    (d / "notes.keras").write_text("not a model\n")
    inp = K.Input((4,))
    K.Model(inp, K.ops.relu(K.layers.Dense(3, name="d")(inp))).save(d / "ops.keras")
    K.Sequential([K.Input((4,)), K.layers.Dense(3, activation="hard_sigmoid", name="hs")]).save(d / "hs.h5")
    return d


BAD = {"lambda.keras": "Lambda layer", "custom.keras": "custom class 'Twice' from module",
       "custom.h5": "layer 'twice' has custom",
       "lambda.h5": "Lambda layer", "truncated.keras": "not a readable .keras archive",
       "layer.keras": "holds a Dense, not a Sequential or functional", "notes.keras": "neither an HDF5",
       "ops.keras": "(Relu) cannot be translated exactly: it is a keras.ops call in the graph "
                    "(keras.src.ops.nn.Relu: keras.ops.relu(output of 'd'))",
       "hs.h5": "'hs' (Dense) cannot be translated exactly: activation 'hard_sigmoid'"}


def test_bad_keras3_files_refused_before_tensorflow(bad_files):
    """load_model refuses each bad file with one typed line while neither tensorflow nor keras is imported."""
    code = ("import sys, json\nfrom tinyprune.errors import ModelLoadError\nfrom tinyprune.load.model import load_model\n"
            f"out = {{}}\nfor name in {sorted(BAD)!r}:\n    try:\n        load_model({str(bad_files)!r} + '/' + name)\n"
            "    except ModelLoadError as e:\n        out[name] = [str(e), 'tensorflow' in sys.modules, 'keras' in sys.modules]\n"
            "print(json.dumps(out))")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert sorted(got) == sorted(BAD)
    for name, (msg, tf_loaded, keras_loaded) in got.items():
        assert BAD[name] in msg and "\n" not in msg, (name, msg)
        assert not tf_loaded and not keras_loaded, name


@pytest.mark.parametrize("name,args", [("lambda.keras", ["--method", "structured", "--ratio", "0.3"]),
                                       ("hs.h5", ["--flash-budget", "50%", "--data", "digits"])])
def test_bad_keras3_file_cli_exit_2_one_line_nothing_written(bad_files, tmp_path, name, args):
    out = tmp_path / "out"
    proc = run_cli(["prune", str(bad_files / name), *args, "-o", str(out)])
    assert proc.returncode == 2
    line = stderr_one_line(proc)
    assert line.startswith("error:") and BAD[name] in line
    assert not out.exists()


def test_lambda_with_unsafe_load_is_refused_by_the_translator(bad_files):
    from tinyprune.load.keras3 import Keras3TranslationError
    from tinyprune.load.model import load_model

    with pytest.raises(Keras3TranslationError, match=r"'times2' \(Lambda\)"):
        load_model(bad_files / "lambda.keras", unsafe=True)


# --------------------------------------------------------------------------- Keras 3's own route to the firmware

@pytest.mark.slow
def test_keras3_tflite_route_then_fit_and_export(tmp_path):
    """A user converts a Keras 3 model themselves (TFLiteConverter.from_keras_model, int8), then
    runs tinyprune fit / export / compress on the .tflite."""
    tfl = tmp_path / "k3.tflite"
    code = f"""
import numpy as np, keras, tensorflow as tf
m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                      keras.layers.Flatten(), keras.layers.Dense(10)])
conv = tf.lite.TFLiteConverter.from_keras_model(m)
conv.optimizations = [tf.lite.Optimize.DEFAULT]
rng = np.random.default_rng(0)
conv.representative_dataset = lambda: ([rng.random((1, 8, 8, 1), dtype=np.float32)] for _ in range(20))
conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
conv.inference_input_type = conv.inference_output_type = tf.int8
open({str(tfl)!r}, "wb").write(conv.convert())
"""
    proc = run_python(code, env={k: v for k, v in __import__("os").environ.items() if k != "TF_USE_LEGACY_KERAS"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    fit = run_cli(["fit", str(tfl), "--json"])
    assert fit.returncode == 0, fit.stderr
    assert json.loads(fit.stdout)
    exp = run_cli(["export", str(tfl), "-o", str(tmp_path / "fw")])
    assert exp.returncode == 0, exp.stderr
    assert any((tmp_path / "fw").rglob("*.c")) or any((tmp_path / "fw").rglob("*.cc"))
    comp = run_cli(["compress", str(tfl), "--method", "lut", "-o", str(tmp_path / "c.tflite")])
    assert comp.returncode in (0, 2), comp.stderr  # a dense model may have nothing LUT can take
    if comp.returncode == 2:
        assert stderr_one_line(comp).startswith("error:")
    else:
        assert (tmp_path / "c.tflite").is_file()
