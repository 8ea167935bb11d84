"""Structured filter removal through TensorFlow op layers and every inbound-node form.

tf_keras records `x + 3.0`, `tf.nn.relu6(x)`, `tf.math.multiply(a, b)` ... as TFOpLambda
layers whose serialized inbound nodes hold constants, bare entries, nested structures and
keyword tensors. `parse_inbound_node` is checked on literal serialized forms; small models
check that element-wise ops join their inputs' channels and prune exactly (pruned ==
zeroed original within 1e-4, see test_structured.check_equivalent), and that any other op
is a boundary named in the notes, never a crash.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.prune.test_structured import check_equivalent, randomize
from tinyprune.errors import UnsupportedLayerError
from tinyprune.prune.structured import build_graph, prune_structured
from tinyprune.prune.structured.dependency import model_calls, parse_inbound_node
from tinyprune.tfsetup import keras, tf

L = keras.layers


# ------------------------------------------------------------------ serialized forms (pure data)


def test_parse_layer_node_with_several_inputs():
    got = parse_inbound_node([["a", 0, 0, {}], ["b", 1, 0, {}]])
    assert got.keys == [("a", 0, 0), ("b", 1, 0)] and got.constants == []


def test_parse_bare_op_entry_with_scalar_and_keyword_tensor():
    got = parse_inbound_node(["bn", 0, 0, {"y": 3.0, "name": None}])
    assert got.keys == [("bn", 0, 0)] and got.constants == [3.0]
    got = parse_inbound_node(["excite", 0, 0, {"y": ["relu", 0, 0]}])  # RegNetY's SE gate
    assert got.keys == [("excite", 0, 0), ("relu", 0, 0)] and got.constants == []


def test_parse_constant_first_argument_nested_structures_and_tuples():
    got = parse_inbound_node(["_CONSTANT_VALUE", -1, 2.0, {"y": ["x", 0, 0], "name": None}])
    assert got.keys == [("x", 0, 0)] and got.constants == [2.0]
    got = parse_inbound_node([[["a", 0, 0, {"axis": -1}], ["b", 0, 1, {"axis": -1}]]])
    assert got.keys == [("a", 0, 0), ("b", 0, 1)] and got.constants == [-1]
    got = parse_inbound_node({"p": ["a", 0, 0, {}], "q": ["b", 2, 0, {}]})
    assert got.keys == [("a", 0, 0), ("b", 2, 0)]
    got = parse_inbound_node(["a", 0, 0, {"shape": {"class_name": "__tuple__", "items": [1, 4]},
                                          "dtype": "float32", "values": [[1.0, 2.0]]}])
    assert got.keys == [("a", 0, 0)] and got.constants == [[1, 4], [1.0, 2.0]]


def test_model_calls_reads_op_layers_and_nested_model_node_indices():
    inner_in = keras.Input((4, 4, 3))
    inner = keras.Model(inner_in, L.Conv2D(5, 1)(inner_in), name="stem")
    i = keras.Input((4, 4, 3))
    x = inner(i)
    y = x + 3.0
    m = keras.Model(i, tf.math.multiply(y, x))
    calls = {name: keys for name, _cls, _cfg, keys in model_calls(m)}
    add = next(k for n, k in calls.items() if "add" in n)
    assert add == [("stem", 1, 0)]  # the nested model's config node 0 is its call node 1
    mul = next(k for n, k in calls.items() if "multiply" in n)
    assert len(mul) == 2 and mul[1] == ("stem", 1, 0)
    build_graph(m)  # and the graph follows them without error


# ------------------------------------------------------------------ pruning through op layers


def m_hard_swish():
    """MobileNetV3's hard swish and SE block, written with tf ops as keras.applications does."""
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", name="c1")(i)
    x = L.BatchNormalization(name="bn1")(x)
    hs = L.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)
    x = L.Multiply()([x, hs])
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = L.Conv2D(4, 1, activation="relu", name="se_reduce")(s)
    s = L.Conv2D(8, 1, name="se_expand")(s)
    s = tf.clip_by_value(s + 3.0, 0.0, 6.0) / 6.0
    x = tf.math.multiply(s, x)  # keyword tensor (y)
    x = tf.nn.relu6(x)
    x = L.Conv2D(6, 1, name="c2")(x)
    return keras.Model(i, L.Dense(3, name="out")(L.GlobalAveragePooling2D()(x)))


def m_residual_ops():
    """RegNet-style residual written as `a + b`, 2.0 * x (constant first argument), add_n."""
    i = keras.Input((8, 8, 3))
    a = L.Conv2D(6, 1, name="a")(i)
    b = L.Conv2D(6, 3, padding="same", name="b")(a)
    x = tf.nn.relu(a + b)
    c = L.Conv2D(6, 1, name="c")(x)
    x = tf.math.add_n([x, 2.0 * c])
    x = L.Conv2D(5, 1, name="d")(x)
    return keras.Model(i, L.Dense(3, name="out")(L.Flatten()(x)))


def m_layer_scale():
    """ConvNeXt's MLP: Dense -> gelu -> Dense -> LayerScale on the hidden channels too."""
    from tf_keras.src.applications.convnext import LayerScale, StochasticDepth

    i = keras.Input((4, 4, 3))
    x = L.Dense(8, name="up")(i)
    x = L.Activation("gelu")(x)
    x = LayerScale(0.5, 8, name="scale_hidden")(x)
    x = StochasticDepth(0.1, name="drop_path")(x)
    x = L.Rescaling(0.5, offset=0.1)(x)
    x = L.Dense(5, name="down")(x)
    return keras.Model(i, L.Dense(2, name="out")(L.Flatten()(x)))


@pytest.mark.parametrize("builder", [m_hard_swish, m_residual_ops, m_layer_scale], ids=lambda f: f.__name__[2:])
def test_elementwise_ops_prune_exactly(builder):
    r = check_equivalent(builder(), ratio=0.5)
    assert not r.notes, r.notes


def test_hard_swish_and_se_gate_join_one_group():
    g = build_graph(m_hard_swish())
    assert set(g.group("c1").producers) == {"c1", "se_expand"} and g.group("c1").prunable
    assert not g.notes


def test_keyword_and_operator_tensors_couple_the_residual():
    g = build_graph(m_residual_ops())
    assert set(g.group("a").producers) == {"a", "b", "c"}


def test_layer_scale_is_cut_with_its_channels():
    r = prune_structured(randomize(m_layer_scale()), 0.5)
    assert r.model.get_layer("scale_hidden").get_weights()[0].shape == (4,)
    assert r.model.get_layer("scale_hidden").get_config()["projection_dim"] == 4


def m_other_ops():
    i = keras.Input((4, 4, 3))
    x = L.Conv2D(6, 1, name="c0")(i)
    x = L.Conv2D(6, 1, name="c1")(x)
    x = tf.transpose(x, [0, 2, 1, 3])  # spatial only, but tinyprune does not reason about perms
    x = L.Conv2D(6, 1, name="c2")(x)
    x = x * np.linspace(0.5, 1.5, 6).astype(np.float32)  # per-channel constant
    x = L.Conv2D(6, 1, name="c3")(x)
    x = x[..., :4]  # SlicingOpLambda
    x = L.Conv2D(4, 1, name="c4")(x)
    x = tf.reduce_mean(x, axis=[1, 2])
    return keras.Model(i, L.Dense(2, name="out")(x))


def test_other_ops_are_named_boundaries_and_pruning_stays_exact():
    r = check_equivalent(m_other_ops(), ratio=0.5)
    notes = " | ".join(r.notes)
    assert "'tf.compat.v1.transpose'" in notes or "'tf.transpose'" in notes, notes
    assert "constant of shape [6]" in notes
    assert "(SlicingOpLambda) slices its input" in notes
    assert "'tf.math.reduce_mean'" in notes
    # c1..c4 each feed a boundary, so they keep every channel; only c0 is cut
    assert len(r.kept["c0"]) == 3 and all(len(r.kept[c]) == 6 for c in ("c1", "c2", "c3")) and len(r.kept["c4"]) == 4
    with pytest.raises(UnsupportedLayerError, match="c1.*(transpose)"):
        prune_structured(m_other_ops(), layer_ratios={"c1": 0.5})
