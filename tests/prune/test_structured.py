"""Structured filter removal on small synthetic models: one per supported layer type.

Each model gets random weights (and random BatchNorm statistics, so that a removed channel
is not zero after BatchNorm). The pruned model must equal the original with the removed
channels' weights zeroed (`masked_equivalent`) within 1e-4 on random inputs, and that
zeroing must actually change the original's output (so the check cannot pass vacuously).
"""

from __future__ import annotations

import numpy as np
import pytest

from tinyprune.errors import ConfigError, DataError, ModelLoadError, UnsupportedLayerError
from tinyprune.prune.structured import (IMPORTANCES, ScoreImportance, build_graph, get_importance, masked_equivalent,
                                  prune_structured)
from tinyprune.prune.structured.importance import reduce_saliency
from tinyprune.tfsetup import keras

L = keras.layers
TOL = 1e-4  # the equivalence bound


def randomize(model, seed: int = 0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if isinstance(layer, L.BatchNormalization):
            n = ws[0].shape
            ws = [rng.uniform(0.5, 1.5, n), rng.normal(size=n), rng.normal(size=n) * 0.1, rng.uniform(0.5, 2.0, n)]
        else:
            ws = [rng.normal(scale=0.5, size=w.shape) for w in ws]
        layer.set_weights([w.astype(np.float32) for w in ws])
    return model


def outputs(model, x):
    return np.asarray(model(x, training=False))


def check_equivalent(model, ratio=0.5, seed=0, **kw):
    randomize(model, seed)
    r = prune_structured(model, ratio, **kw)
    ref = masked_equivalent(model, r.graph, r.group_kept)
    x = np.random.default_rng(seed + 1).normal(size=(6, *model.input_shape[1:])).astype(np.float32)
    got, want = outputs(r.model, x), outputs(ref, x)
    assert r.model.input_shape == model.input_shape and r.model.output_shape == model.output_shape
    assert r.params_after < r.params_before
    assert np.abs(got - want).max() <= TOL, np.abs(got - want).max()
    assert np.abs(outputs(model, x) - want).max() > 1e-3  # zeroing removed something that mattered
    return r


def functional(inp, out):
    return keras.Model(inp, out)


# ------------------------------------------------------------------ models, one per layer family


def m_conv_bn():
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", name="c1")(i)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU()(x)
    x = L.Conv2D(8, 3, padding="same", activation="relu6", name="c2")(x)
    x = L.Activation("relu")(x)
    x = L.MaxPooling2D()(x)
    x = L.Conv2D(6, 1, name="c3")(x)
    x = L.GlobalAveragePooling2D()(x)
    return functional(i, L.Dense(4, name="out")(x))


def m_depthwise_multiplier():
    i = keras.Input((8, 8, 4))
    x = L.Conv2D(6, 1, name="c1")(i)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU(max_value=6.0)(x)
    x = L.Conv2D(5, 1, name="c2")(x)
    x = L.Flatten()(x)
    return functional(i, L.Dense(3)(x))


def m_separable():
    i = keras.Input((8, 8, 3))
    x = L.SeparableConv2D(8, 3, depth_multiplier=2, padding="same", name="s1")(i)
    x = L.LeakyReLU(0.1)(x)
    x = L.SeparableConv2D(6, 3, name="s2")(x)
    x = L.AveragePooling2D()(x)
    x = L.Flatten()(x)
    return functional(i, L.Dense(3)(x))


def m_conv1d():
    i = keras.Input((16, 3))
    x = L.Conv1D(8, 3, padding="same", name="c1")(i)
    x = L.PReLU(shared_axes=[1], name="prelu")(x)
    x = L.DepthwiseConv1D(3, depth_multiplier=2, padding="same", name="dw1")(x)
    x = L.SeparableConv1D(6, 3, padding="same", name="s1")(x)
    x = L.ZeroPadding1D(1)(x)
    x = L.Cropping1D(1)(x)
    x = L.UpSampling1D(2)(x)
    x = L.MaxPooling1D(2)(x)
    x = L.AveragePooling1D(2)(x)
    x = L.Dropout(0.3)(x)
    x = L.GlobalMaxPooling1D()(x)
    return functional(i, L.Dense(3)(x))


def m_spatial():
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, name="c1")(i)
    x = L.ZeroPadding2D(1)(x)
    x = L.Cropping2D(1)(x)
    x = L.UpSampling2D(2)(x)
    x = L.AveragePooling2D(2)(x)
    x = L.PReLU(name="prelu_positions")(x)  # one alpha per position and channel
    x = L.SpatialDropout2D(0.2)(x)
    x = L.GlobalMaxPooling2D()(x)
    x = L.Dense(8, name="d1")(x)
    x = L.Activation("swish")(x)
    x = L.Dropout(0.5)(x)
    return functional(i, L.Dense(3)(x))


def m_merges():
    i = keras.Input((8, 8, 3))
    c1 = L.Conv2D(8, 3, padding="same", name="c1")(i)
    c2 = L.Conv2D(8, 1, name="c2")(i)
    x = L.Add()([c1, c2])
    x = L.Subtract()([x, L.Conv2D(8, 1, name="c3")(i)])
    x = L.Multiply()([x, L.Conv2D(8, 1, name="c4")(i)])
    x = L.Average()([x, c1])
    x = L.Maximum()([x, c2])
    x = L.Minimum()([x, L.Conv2D(8, 1, name="c5")(i)])
    x = L.Conv2D(4, 1, name="head")(x)
    x = L.GlobalAveragePooling2D()(x)
    return functional(i, L.Dense(3)(x))


def m_concat():
    i = keras.Input((8, 8, 3))
    a = L.Conv2D(4, 3, padding="same", name="a")(i)
    b = L.Conv2D(6, 1, name="b")(i)
    cat = L.Concatenate(name="cat")([a, b])
    d = L.Conv2D(10, 1, name="d")(i)
    x = L.Add()([cat, d])
    x = L.BatchNormalization()(x)
    e = L.Conv2D(5, 1, name="e")(x)
    x = L.Concatenate()([e, x])  # 15 channels: e's group then the a/b/d group, at offset 5
    x = L.Flatten()(x)
    return functional(i, L.Dense(3)(x))


def m_squeeze_excite():
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", name="conv")(i)
    x = L.ReLU()(x)
    s = L.GlobalAveragePooling2D()(x)
    s = L.Dense(4, activation="relu", name="se_reduce")(s)
    s = L.Dense(8, activation="sigmoid", name="se_expand")(s)
    s = L.Reshape((1, 1, 8))(s)
    x = L.Multiply()([x, s])
    x = L.Conv2D(4, 1, name="head")(x)
    x = L.GlobalAveragePooling2D()(x)
    return functional(i, L.Dense(3)(x))


def m_squeeze_excite_broadcast():
    """SE without a Reshape: the (N, C) gate broadcasts over (N, H, W, C) in Multiply."""
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv")(i)
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = L.Conv2D(4, 1, activation="relu", name="se_reduce")(s)
    s = L.Conv2D(8, 1, activation="sigmoid", name="se_expand")(s)
    x = L.Multiply()([s, x])
    g = L.Dense(8, activation="hard_sigmoid", name="gate")(L.GlobalMaxPooling2D()(x))
    x = L.Multiply()([x, g])
    x = L.Conv2D(4, 1, name="head")(x)
    return functional(i, L.Dense(3)(L.Flatten()(x)))


def m_reshape():
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(6, 3, padding="same", name="c1")(i)
    x = L.Reshape((64, 6), name="keeps_channels")(x)
    x = L.Conv1D(4, 3, name="c2")(x)
    x = L.Reshape((-1,), name="flattens")(x)
    return functional(i, L.Dense(3)(x))


def m_layernorm():
    i = keras.Input((6, 6, 3))
    x = L.Conv2D(6, 1, name="c1")(i)
    x = L.LayerNormalization(axis=[1, 2], name="ln_spatial")(x)  # per channel: prunable through
    x = L.Conv2D(8, 1, name="c2")(x)
    x = L.LayerNormalization(name="ln_channels")(x)  # over channels: a boundary
    x = L.Conv2D(5, 1, name="c3")(x)
    x = L.Flatten()(x)
    return functional(i, L.Dense(3)(x))


def m_sequential():
    return keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(8, 3, name="c1"), L.BatchNormalization(), L.ReLU(),
                             L.MaxPooling2D(), L.Flatten(), L.Dense(16, activation="relu", name="fc"),
                             L.Dropout(0.2), L.Dense(3, name="out")])


def m_sequence_shared():
    """Dense on a (time, features) input, a shared layer (boundary), a Concatenate with the input."""
    i = keras.Input((6, 4))
    shared = L.Dense(8, name="shared")
    a = shared(L.Dense(8, name="d_a")(i))
    b = shared(L.Dense(8, name="d_b")(i))
    c = L.Concatenate()([L.Dense(5, name="pre")(i), i])  # 4 fixed input channels at offset 5
    c = L.Add()([c, L.Dense(9, name="tied")(i)])
    y = L.Dense(7, name="head")(L.Concatenate()([a, b, c]))
    return functional(i, L.Dense(2)(L.Flatten()(y)))


def m_sequential_no_input_layer():
    return keras.Sequential([L.Dense(8, input_shape=(5,), name="d1"), L.Dense(6, name="d2"), L.Dense(2)])


MODELS = {f.__name__[2:]: f for f in (m_conv_bn, m_depthwise_multiplier, m_separable, m_conv1d, m_spatial,
                                      m_merges, m_concat, m_squeeze_excite, m_squeeze_excite_broadcast, m_reshape, m_layernorm, m_sequential,
                                      m_sequence_shared, m_sequential_no_input_layer)}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pruned_equals_zeroed_original(name):
    check_equivalent(MODELS[name]())


# --------------------------------------------------------------------------- graph structure


def test_merges_couple_every_branch():
    g = build_graph(m_merges())
    grp = g.group("c1")
    assert sorted(grp.producers) == ["c1", "c2", "c3", "c4", "c5"] and grp.channels == 8 and grp.prunable


def test_concatenate_offsets_and_coupling():
    m = randomize(m_concat())
    g = build_graph(m)
    grp = g.group("a")
    assert sorted(grp.producers) == ["a", "b", "d"] and grp.channels == 10  # a and b side by side, d tied to both
    r = prune_structured(m, group_keep={"a": 5, "e": 2})
    d_kept = r.kept["d"]
    assert len(d_kept) == 5 and r.kept["a"] == [i for i in d_kept if i < 4]
    assert r.kept["b"] == [i - 4 for i in d_kept if i >= 4]
    assert r.model.get_layer("e").get_weights()[0].shape[2] == 5


def test_depth_multiplier_keeps_whole_input_channels():
    m = randomize(m_depthwise_multiplier())
    r = prune_structured(m, group_keep={"c1": 4})
    assert r.kept["dw"] == sorted([2 * c + k for c in r.kept["c1"] for k in (0, 1)])
    assert r.model.get_layer("dw").get_weights()[0].shape == (3, 3, 4, 2)


def test_squeeze_excite_block_is_one_group():
    g = build_graph(m_squeeze_excite())
    assert set(g.group("conv").producers) == {"conv", "se_expand"}
    assert g.group("se_reduce").prunable


def test_broadcast_gates_join_the_gated_group():
    g = build_graph(m_squeeze_excite_broadcast())
    assert set(g.group("conv").producers) == {"conv", "se_expand", "gate"}


def test_layernorm_over_channels_is_a_boundary_and_said_so():
    g = build_graph(m_layernorm())
    assert g.group("c1").prunable and not g.group("c2").prunable and g.group("c3").prunable
    assert any("'ln_channels' (LayerNormalization)" in n for n in g.notes)
    with pytest.raises(UnsupportedLayerError, match="c2"):
        prune_structured(randomize(m_layernorm()), layer_ratios={"c2": 0.5})


def test_unknown_layer_is_a_boundary_named_in_notes():
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(6, 1, name="c1")(i)
    x = L.Permute((2, 1, 3), name="swap")(x)
    x = L.Conv2D(4, 1, name="c2")(x)
    m = keras.Model(i, L.Dense(3)(L.Flatten()(x)))
    r = check_equivalent(m)
    assert any("'swap' (Permute)" in n and "boundary" in n for n in r.notes)
    assert len(r.kept["c1"]) == 6 and len(r.kept["c2"]) == 2


def test_shared_layer_is_a_boundary_and_fixed_channels_count_against_the_ratio():
    m = randomize(m_sequence_shared())
    g = build_graph(m)
    assert any("'shared#1' (Dense) is shared" in n for n in g.notes)
    assert not g.group("d_a").prunable and not g.group("d_b").prunable
    grp = g.group("pre")  # pre's 5 + the input's 4 (fixed), tied to 'tied' by the Add
    assert set(grp.producers) == {"pre", "tied"} and grp.channels == 9 and grp.fixed_channels == 4
    r = prune_structured(m, 0.5)
    assert len(r.kept["tied"]) == 7 and r.kept["tied"][-4:] == [5, 6, 7, 8]  # 4 fixed + 3 of 5


def test_unbuilt_model_is_refused():
    with pytest.raises(ModelLoadError, match="input shape"):
        prune_structured(keras.Sequential([L.Dense(3)]), 0.5)


def test_output_and_input_channels_are_fixed():
    g = build_graph(m_conv_bn())
    assert not g.group("out").prunable and g.group("out").fixed.all()
    assert all(not grp.prunable for grp in g.groups if not grp.producers)


# ----------------------------------------------------------------------------- pruner options


def test_round_to_and_at_least_one_channel():
    m = randomize(m_conv_bn())
    r = prune_structured(m, 0.3, round_to=4)
    assert all(len(r.kept[n]) % 4 == 0 for n in ("c1", "c2"))
    r = prune_structured(m, 0.99)
    assert all(len(r.kept[n]) == 1 for n in ("c1", "c2", "c3"))


def test_layer_ratios_and_group_keep():
    m = randomize(m_conv_bn())
    r = prune_structured(m, layer_ratios={"c2": 0.5})
    assert len(r.kept["c1"]) == 8 and len(r.kept["c2"]) == 4
    r = prune_structured(m, 0.5, group_keep={"c1": 3})
    assert len(r.kept["c1"]) == 3 and len(r.kept["bn1"]) == 3 and len(r.kept["c3"]) == 3
    with pytest.raises(ConfigError, match="group_keep"):
        prune_structured(m, group_keep={"nope": 3})
    with pytest.raises(ConfigError, match="outside"):
        prune_structured(m, group_keep={"c1": 0})


def test_global_ranking_removes_the_requested_share():
    m = randomize(m_conv_bn())
    m.get_layer("c1").set_weights([w * 10 for w in m.get_layer("c1").get_weights()])
    r = check_equivalent(m, 0.5, global_ranking=True)
    kept = sum(len(r.kept[n]) for n in ("c1", "c2", "c3"))
    assert kept == 11  # half of 8 + 8 + 6, rounded


def test_iterative_steps_compose_kept_indices():
    m = m_concat()
    r = check_equivalent(m, 0.5, steps=3)
    assert len(r.kept["d"]) == 5
    assert r.kept["a"] == [i for i in r.kept["d"] if i < 4]


def test_l1_keeps_the_largest_filters():
    m = randomize(m_conv_bn())
    w, b = m.get_layer("c3").get_weights()
    w[..., [1, 4]] *= 100
    m.get_layer("c3").set_weights([w, b])
    r = prune_structured(m, layer_ratios={"c3": 0.67}, importance="l1", reduction="max")
    assert r.kept["c3"] == [1, 4]


@pytest.mark.parametrize("crit", ["l1", "l2", "bn", "random"])
@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_every_criterion_and_reduction_prunes_exactly(crit, reduction):
    check_equivalent(m_depthwise_multiplier(), 0.5, importance=crit, reduction=reduction)


def test_taylor_needs_data_and_uses_it():
    m = randomize(m_conv_bn())
    with pytest.raises(DataError, match="taylor"):
        prune_structured(m, 0.5, importance="taylor")
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(32, 8, 8, 3)).astype(np.float32), rng.integers(0, 4, 32))
    g = build_graph(m, ("out",))
    scores = get_importance("taylor").group_scores(g, data)
    assert scores[[x.id for x in g.groups].index("c1")].std() > 0
    check_equivalent(m, 0.5, importance="taylor", data=data)


def test_score_adapter_matches_l1_on_kernels():
    m = randomize(m_merges())  # no BatchNorm: l1 sums exactly the kernels
    g = build_graph(m)

    def magnitude(model, x=None, y=None):
        return {ly.name: np.abs(ly.get_weights()[0]) for ly in model.layers if ly.get_weights()}

    ours = ScoreImportance(magnitude).group_scores(g)
    l1 = get_importance("l1").group_scores(g)
    for a, b in zip(ours, l1):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_scores_module_plugs_in():
    m = randomize(m_conv_bn())
    imp = get_importance("scores-synflow")
    assert "scores-synflow" in IMPORTANCES and not imp.needs_data
    check_equivalent(m, 0.5, importance="scores-synflow")


def test_reduction_over_concatenate_leaves_untouched_layers_out():
    g = build_graph(m_concat())
    sal = {"a": {"kernel": np.ones((3, 3, 3, 4))}, "b": {"kernel": np.ones((1, 1, 3, 6))}}
    s = reduce_saliency(g, sal, "mean")[[x.id for x in g.groups].index("a")]
    np.testing.assert_allclose(s, [27] * 4 + [3] * 6)  # a's filters have 27 weights, b's 3


# ------------------------------------------------------------------------------- bad input


def test_bad_inputs_are_clear_errors():
    m = m_conv_bn()
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match=r"\[0, 1\)"):
            prune_structured(m, bad)
    with pytest.raises(ConfigError, match="no layer named 'c9'"):
        prune_structured(m, 0.5, ignore=("c9",))
    with pytest.raises(ConfigError, match="--round-to must be a whole number"):
        prune_structured(m, 0.5, round_to=0)
    with pytest.raises(ConfigError, match="importance"):
        prune_structured(m, 0.5, importance="nope")
    with pytest.raises(UnsupportedLayerError, match="'out'"):
        prune_structured(m, layer_ratios={"out": 0.5})


def test_ignored_layer_keeps_its_channels():
    r = prune_structured(randomize(m_conv_bn()), 0.5, ignore=("c2",))
    assert len(r.kept["c2"]) == 8 and len(r.kept["c1"]) == 4


def test_subclassed_model_is_refused():
    from tests.helpers import subclassed_model

    with pytest.raises(ModelLoadError, match="subclassed"):
        prune_structured(subclassed_model(3, 4), 0.5)


def test_the_clis_criteria_are_the_registrys_built_in_ones():
    """tinyprune.prune.CRITERIA (TensorFlow-free, for the CLI's choices) names exactly the
    criteria importance.py registers itself; scores-* and user criteria are added later."""
    from tinyprune.budget.limits import IMPORTANCES as BUDGET_IMPORTANCES
    from tinyprune.prune import CRITERIA

    built_in = {name for name in IMPORTANCES if not name.startswith("scores-")}
    assert set(CRITERIA) == built_in and len(CRITERIA) == len(built_in)
    assert BUDGET_IMPORTANCES == ("auto", *CRITERIA)
