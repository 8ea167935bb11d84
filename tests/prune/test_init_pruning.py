"""Pruning at initialization: scores, global masks, the collapse guard, masks held through training, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import run_cli, stderr_one_line


def _tiny_cnn(seed: int = 0, softmax: bool = False):
    """A small digits CNN with BatchNorm, a depthwise conv and Dropout (every layer kind scored)."""
    from tinyprune.tfsetup import keras, tf

    tf.random.set_seed(seed)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inp)
    h = keras.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dropout(0.1)(h)
    out = keras.layers.Dense(10, activation="softmax" if softmax else None, name="fc")(h)
    return keras.Model(inp, out)


def _mlp_with_tiny_layer(scale: float = 1e-3, seed: int = 0):
    """Dense 64 -> 64 -> 64 -> 10 whose middle layer has weights `scale` times smaller."""
    from tinyprune.tfsetup import keras, tf

    tf.random.set_seed(seed)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(inp)
    h = keras.layers.Dense(64, activation="relu", name="d1")(h)
    h = keras.layers.Dense(64, activation="relu", name="tiny")(h)
    h = keras.layers.Dense(64, activation="relu", name="d3")(h)
    out = keras.layers.Dense(10, name="out")(h)
    model = keras.Model(inp, out)
    k = model.get_layer("tiny").kernel
    k.assign(k * scale)
    return model


# ------------------------------------------------------------------------------ SynFlow

def test_synflow_matches_closed_form_on_two_layer_linear_net():
    """f(x) = x W1 W2 (Keras kernels, (in, out)); with all-ones input and |W|:
    R = sum_{i,j,k} |W1[i,j]| |W2[j,k]|, so
    S(W1[i,j]) = |W1[i,j]| * sum_k |W2[j,k]|  and  S(W2[j,k]) = |W2[j,k]| * sum_i |W1[i,j]|."""
    from tinyprune.prune.at_init.scores import synflow_scores
    from tinyprune.tfsetup import keras, tf

    tf.random.set_seed(3)
    inp = keras.Input((6,))
    h = keras.layers.Dense(5, use_bias=False, name="w1")(inp)
    out = keras.layers.Dense(4, use_bias=False, name="w2")(h)
    model = keras.Model(inp, out)
    w1 = model.get_layer("w1").kernel.numpy().astype(np.float64)
    w2 = model.get_layer("w2").kernel.numpy().astype(np.float64)
    before = [w.copy() for w in model.get_weights()]

    scores = synflow_scores(model)  # no data at all

    expected_w1 = np.abs(w1) * np.abs(w2).sum(axis=1)[None, :]
    expected_w2 = np.abs(w2) * np.abs(w1).sum(axis=0)[:, None]
    np.testing.assert_allclose(scores["w1"], expected_w1, rtol=1e-12)
    np.testing.assert_allclose(scores["w2"], expected_w2, rtol=1e-12)
    # the model's own (signed) weights are untouched
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_synflow_prunes_without_data_and_keeps_every_layer():
    from tinyprune.prune.at_init.pruner import prune_at_init

    model = _tiny_cnn(softmax=True)
    bn_before = [w.copy() for w in model.get_layer("bn1").get_weights()]
    res = prune_at_init(model, "synflow", 30.0, rounds=20)  # x, y absent
    total = sum(m.size for m in res.masks.values())
    assert sum(m.sum() for m in res.masks.values()) == round(total / 30.0)
    assert not res.collapsed and all(m.any() for m in res.masks.values())
    assert [round(h.compression, 6) for h in res.history][-1] == 30.0
    # the pruned weights are zero in the model, the survivors are not
    for layer in ("conv1", "dw", "fc"):
        lyr = model.get_layer(layer)
        k = (lyr.depthwise_kernel if layer == "dw" else lyr.kernel).numpy()
        assert np.all(k[~res.masks[layer]] == 0) and np.all(k[res.masks[layer]] != 0)
    for a, b in zip(bn_before, model.get_layer("bn1").get_weights()):  # BN is never pruned
        np.testing.assert_array_equal(a, b)


def test_synflow_avoids_the_collapse_that_magnitude_hits():
    from tinyprune.errors import LayerCollapseError
    from tinyprune.prune.at_init.pruner import prune_at_init

    with pytest.raises(LayerCollapseError):
        prune_at_init(_mlp_with_tiny_layer(), "magnitude", 10.0)
    res = prune_at_init(_mlp_with_tiny_layer(), "synflow", 10.0, rounds=30)
    assert res.masks["tiny"].sum() > 0 and not res.collapsed


# ------------------------------------------------------------------------------ collapse guard

def test_collapse_guard_names_layer_and_compression():
    from tinyprune.errors import LayerCollapseError
    from tinyprune.prune.at_init.pruner import prune_at_init

    with pytest.raises(LayerCollapseError) as err:
        prune_at_init(_mlp_with_tiny_layer(), "magnitude", 10.0)
    msg = str(err.value)
    assert "'tiny'" in msg and "compression 10" in msg and "--allow-collapse" in msg
    assert "\n" not in msg

    res = prune_at_init(_mlp_with_tiny_layer(), "magnitude", 10.0, allow_collapse=True)
    assert res.collapsed == ["tiny"] and res.masks["tiny"].sum() == 0
    assert res.masks["d1"].sum() > 0


def test_no_collapse_at_low_compression():
    from tinyprune.prune.at_init.pruner import prune_at_init

    res = prune_at_init(_mlp_with_tiny_layer(), "magnitude", 1.1)
    assert res.masks["tiny"].sum() > 0


# ------------------------------------------------------------------------------ masks and schedule

def test_global_masks_keep_exact_count_and_never_revive():
    from tinyprune.prune.at_init.masks import global_masks

    rng = np.random.default_rng(0)
    scores = {"a": rng.random((4, 5)), "b": rng.random((3, 7))}
    m1 = global_masks(scores, 2.0)
    assert sum(m.sum() for m in m1.values()) == round(41 / 2.0)
    # a weight removed before stays removed even if it now scores highest
    flipped = {k: 10.0 - v for k, v in scores.items()}
    m2 = global_masks(flipped, 4.0, previous=m1)
    assert sum(m.sum() for m in m2.values()) == round(41 / 4.0)
    for k in scores:
        assert not np.any(m2[k] & ~m1[k])


def test_exponential_schedule_reaches_compression():
    from tinyprune.prune.at_init.pruner import exponential_schedule

    s = exponential_schedule(100.0, 4)
    np.testing.assert_allclose(s, [100 ** 0.25, 100 ** 0.5, 100 ** 0.75, 100.0])
    assert exponential_schedule(10.0, 1) == [10.0]


@pytest.mark.parametrize("bad", [0.5, float("nan")])
def test_bad_compression_is_config_error(bad):
    from tinyprune.errors import ConfigError
    from tinyprune.prune.at_init.pruner import prune_at_init

    with pytest.raises(ConfigError):
        prune_at_init(_mlp_with_tiny_layer(), "magnitude", bad)


def test_data_scores_need_data_and_have_kernel_shapes(digits):
    from tinyprune.errors import DataError
    from tinyprune.prune.at_init.pruner import scoring_batch
    from tinyprune.prune.at_init.scores import NEEDS_DATA, SCORES, prunable_layers

    model = _tiny_cnn(softmax=True)
    x, y = scoring_batch(digits.x_train, digits.y_train)
    assert len(x) == 100 and set(np.bincount(y)) == {10}
    kernels = prunable_layers(model)
    assert list(kernels) == ["conv1", "dw", "fc"]
    for name, fn in SCORES.items():
        if name in NEEDS_DATA:
            with pytest.raises(DataError):
                fn(model)
        s = fn(model, x, y)
        assert list(s) == list(kernels)
        for layer, arr in s.items():
            assert arr.shape == tuple(kernels[layer].shape) and np.all(np.isfinite(arr))
            assert np.any(arr != 0), f"{name} gave all-zero scores for {layer}"


def test_snip_is_abs_grad_times_weight(digits):
    from tinyprune.prune.at_init.scores import snip_scores
    from tinyprune.tfsetup import keras, tf

    model = _tiny_cnn(softmax=False)
    x, y = digits.x_train[:32], digits.y_train[:32]
    s = snip_scores(model, x, y)
    kernel = model.get_layer("fc").kernel
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, model(x, training=False))
    g = tape.gradient(loss, kernel).numpy()
    np.testing.assert_allclose(s["fc"], np.abs(g * kernel.numpy()), rtol=1e-5, atol=1e-12)


def test_masks_hold_through_training_and_in_saved_model(digits, tmp_path):
    from tinyprune.prune.at_init import masks as masklib
    from tinyprune.prune.at_init.pruner import prune_at_init, scoring_batch
    from tinyprune.load.model import load_model

    model = _tiny_cnn()
    x, y = scoring_batch(digits.x_train, digits.y_train)
    res = prune_at_init(model, "snip", 10.0, x=x, y=y)
    before = {n: k.numpy().copy() for n, k in masklib.prunable_layers(model).items()}
    ds = digits.subset(400, 100)
    masklib.train_masked(model, ds, res.masks, epochs=1, batch_size=32, quiet=True)
    after = {n: k.numpy() for n, k in masklib.prunable_layers(model).items()}
    for n, m in res.masks.items():
        assert np.all(after[n][~m] == 0), f"{n}: a pruned weight came back"
        assert np.any(after[n][m] != before[n][m]), f"{n}: survivors did not train"
    model.save(tmp_path / "m.h5")
    again = load_model(tmp_path / "m.h5")
    assert masklib.masks_from_zeros(again)["fc"].sum() == masklib.masks_from_zeros(model)["fc"].sum()
    for n, m in res.masks.items():
        assert not np.any(masklib.masks_from_zeros(again)[n] & ~m)


# ------------------------------------------------------------------------------ CLI

@pytest.mark.parametrize("args, needle", [
    (["--method", "synflow", "--compression", "0.5"], "compression"),
    (["--method", "snip", "--compression", "10"], "--data"),
    (["--method", "grasp", "--compression", "10"], "--data"),
    (["--method", "synflow", "--compression", "10", "--rounds", "0"], "--rounds"),
    (["--method", "synflow"], "--compression"),
])
def test_cli_bad_input(args, needle, demo_model_path, tmp_path):
    proc = run_cli(["prune", str(demo_model_path), *args, "-o", str(tmp_path / "out")])
    assert proc.returncode == 2
    line = stderr_one_line(proc)
    assert line.startswith("error:") and needle in line
    assert not (tmp_path / "out").exists()


def test_cli_collapse_is_one_line(tmp_path):
    model = _mlp_with_tiny_layer()
    path = tmp_path / "tiny.h5"
    model.save(path)
    proc = run_cli(["prune", str(path), "--method", "magnitude-init", "--compression", "10", "-o", str(tmp_path / "o")])
    assert proc.returncode == 2
    assert "'tiny'" in stderr_one_line(proc)
    assert not (tmp_path / "o").exists()


def test_cli_synflow_writes_pruned_model(demo_model_path, tmp_path):
    from tinyprune.load.model import load_model
    from tinyprune.prune.at_init.masks import masks_from_zeros

    out = tmp_path / "sf"
    proc = run_cli(["prune", str(demo_model_path), "--method", "synflow", "--compression", "10", "--rounds", "10",
                    "--data", "digits", "--epochs", "1", "--json", "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["rounds"] == 10 and abs(report["kept_fraction"] - 0.1) < 1e-3
    assert {r["layer"] for r in report["layers"]} == {"conv1", "conv2", "conv3", "fc1", "classes"}
    assert all(r["kept"] > 0 for r in report["layers"])
    saved = masks_from_zeros(load_model(out / "model.h5"))
    kept = sum(int(m.sum()) for m in saved.values())
    assert kept == sum(r["kept"] for r in report["layers"])  # zeros are permanent in the saved file
    assert (out / "model_int8.tflite").is_file() and json.loads((out / "report.json").read_text())["int8_bytes"] > 0


def test_grasp_is_hessian_gradient_product_times_weight():
    """(H g) * w checked against a central finite difference of the gradient along g (float64)."""
    from tinyprune.prune.at_init.scores import GRASP_TEMPERATURE, grasp_scores
    from tinyprune.tfsetup import keras, tf

    tf.random.set_seed(5)
    inp = keras.Input((4,), dtype="float64")
    h = keras.layers.Dense(5, activation="tanh", use_bias=False, dtype="float64", name="a")(inp)
    out = keras.layers.Dense(3, use_bias=False, dtype="float64", name="b")(h)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    model.get_layer("a").kernel.assign(rng.normal(size=(4, 5)))
    model.get_layer("b").kernel.assign(rng.normal(size=(5, 3)) * 20.0)  # logits / T = 200 still matter
    x, y = rng.normal(size=(12, 4)), rng.integers(0, 3, size=12)

    def grads(ws):
        for v, w in zip((model.get_layer("a").kernel, model.get_layer("b").kernel), ws):
            v.assign(w)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                y, model(x) / GRASP_TEMPERATURE, from_logits=True))
        return [g.numpy() for g in tape.gradient(loss, [model.get_layer("a").kernel, model.get_layer("b").kernel])]

    w0 = [model.get_layer("a").kernel.numpy().copy(), model.get_layer("b").kernel.numpy().copy()]
    g = grads(w0)
    eps = 1e-5 / max(np.abs(gi).max() for gi in g)
    plus = grads([w + eps * gi for w, gi in zip(w0, g)])
    minus = grads([w - eps * gi for w, gi in zip(w0, g)])
    grads(w0)  # restore
    hg = [(p - m) / (2 * eps) for p, m in zip(plus, minus)]
    s = grasp_scores(model, x, y)
    for layer, i in (("a", 0), ("b", 1)):
        expected = hg[i] * w0[i]
        assert np.abs(expected).max() > 0
        np.testing.assert_allclose(s[layer], expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
