"""Structured filter removal on the four MLPerf Tiny reference models (skipped when absent).

For each model, pruned once per session at ratio 0.5: the pruned model equals the original
with the removed channels zeroed (max abs diff <= 1e-4 on random inputs), its int8
conversion is smaller than the shipped int8 reference and runs in the real TFLM interpreter.
"""

from __future__ import annotations

import numpy as np
import pytest

from firmware_export import tflm
from tinyprune.load.model import load_model
from tinyprune.quantize.int8 import quantize_int8
from tinyprune.prune.structured import build_graph, masked_equivalent, prune_structured

# model file -> the int8 reference shipped next to it (for the size comparison)
MODELS = {
    "pretrainedResnet.h5": "pretrainedResnet_quant.tflite",
    "vww_96.h5": "vww_96_int8.tflite",
    "ad01.h5": "ad01_int8.tflite",
    "str_ww_ref_model.h5": "str_ww_ref_model.tflite",
}
RATIO = 0.5
TOL = 1e-4
_CACHE: dict = {}


def _pruned(mlperf_dir, name):
    if name not in _CACHE:
        path = mlperf_dir / name
        if not path.exists():
            pytest.skip(f"{path} not found")
        model = load_model(path)
        _CACHE[name] = (model, prune_structured(model, RATIO))
    return _CACHE[name]


def _inputs(model, n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, *model.input_shape[1:])).astype(np.float32)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pruned_equals_zeroed_original(mlperf_dir, name):
    model, r = _pruned(mlperf_dir, name)
    ref = masked_equivalent(model, r.graph, r.group_kept)
    x = _inputs(model, 4)
    got, want = np.asarray(r.model(x, training=False)), np.asarray(ref(x, training=False))
    assert r.model.input_shape == model.input_shape and r.model.output_shape == model.output_shape
    assert np.abs(got - want).max() <= TOL
    assert r.params_after < 0.5 * r.params_before


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pruned_int8_runs_in_tflm_and_is_smaller(mlperf_dir, name):
    model, r = _pruned(mlperf_dir, name)
    x = _inputs(model, 16, seed=1)
    data = quantize_int8(r.model, x, num_calibration=16)
    out = tflm.run(data, x[:2])
    assert out.shape == (2, int(np.prod(model.output_shape[1:])))
    assert len(data) < (mlperf_dir / MODELS[name]).stat().st_size


def test_resnet_shortcuts_are_coupled(mlperf_dir):
    model, r = _pruned(mlperf_dir, "pretrainedResnet.h5")
    g = r.graph
    assert set(g.group("conv2d").producers) == {"conv2d", "conv2d_2"}  # identity shortcut
    assert set(g.group("conv2d_4").producers) == {"conv2d_4", "conv2d_5"}  # 1x1 projection shortcut
    assert r.kept["conv2d"] == r.kept["conv2d_2"] == r.kept["batch_normalization_2"]


def test_resnet_global_ranking_round_to_and_steps_stay_exact(mlperf_dir):
    model, _ = _pruned(mlperf_dir, "pretrainedResnet.h5")
    r = prune_structured(model, 0.5, global_ranking=True, round_to=4, steps=2, importance="l2")
    ref = masked_equivalent(model, r.graph, r.group_kept)
    x = _inputs(model, 4, seed=2)
    assert np.abs(np.asarray(r.model(x)) - np.asarray(ref(x))).max() <= TOL
    assert all(len(r.kept[p]) % 4 == 0 for g in r.graph.groups if g.prunable for p in g.producers)


def test_mobilenet_depthwise_follows_its_producer(mlperf_dir):
    model, r = _pruned(mlperf_dir, "vww_96.h5")
    assert "depthwise_conv2d" in r.graph.group("conv2d").layers
    assert r.kept["depthwise_conv2d"] == r.kept["conv2d"] == r.kept["batch_normalization_1"]


def test_streaming_wakeword_keeps_its_input_channels(mlperf_dir):
    model, r = _pruned(mlperf_dir, "str_ww_ref_model.h5")
    assert len(r.kept["depthwise_conv2d"]) == 40  # it filters the 40 input features: fixed
    g = build_graph(model)
    assert not g.groups[0].prunable and g.groups[0].channels == 40
