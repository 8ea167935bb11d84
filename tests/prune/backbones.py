"""The keras.applications backbones that fit a microcontroller, at small sizes, for the
structured-pruning sweep (tests/prune/test_backbones.py, benchmarks/bench_backbones.py).

Each family is built from tf_keras.applications with weights=None, include_top=False, at
32x32x3 (the smallest input every family accepts) and the smallest width multiplier where the
family has one, then given a small head of our own (global average pooling + Dense(4), no
softmax: an untrained softmax head can give degenerate int8 scales). BatchNormalization
gamma/beta and LayerScale factors are randomized (seeded) so that a removed channel changes
the output (an untrained BN with beta 0 would hide a wrong rebuild), and the BN moving
statistics are then calibrated on random inputs (one training-mode pass with momentum 0), so
that the network is live: its output depends on its input, in float and in int8 (with default
moving statistics the activations die or saturate and the output is a constant).

This module builds models; it does not prune, convert or assert anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

INPUT_SHAPE = (32, 32, 3)
HEAD_UNITS = 4
CALIBRATION_BATCH = 16  # random images that set the BatchNorm moving statistics


@dataclass(frozen=True)
class Family:
    """One backbone: the tf_keras.applications function, its extra arguments, and whether it
    is big (tens of MB of float weights: int8/TFLM only in the benchmark, not in the tests)."""

    app: str
    kwargs: dict = field(default_factory=dict)
    big: bool = False


FAMILIES: dict[str, Family] = {
    "MobileNet": Family("MobileNet", {"alpha": 0.25}),
    "MobileNetV2": Family("MobileNetV2", {"alpha": 0.35}),
    "MobileNetV3Small": Family("MobileNetV3Small", {"alpha": 0.75}),
    "MobileNetV3Large": Family("MobileNetV3Large", {"alpha": 0.75}),
    "MobileNetV3SmallMinimalistic": Family("MobileNetV3Small", {"alpha": 0.75, "minimalistic": True}),
    "EfficientNetB0": Family("EfficientNetB0"),
    "EfficientNetV2B0": Family("EfficientNetV2B0"),
    "NASNetMobile": Family("NASNetMobile"),
    "RegNetX002": Family("RegNetX002"),
    "RegNetY002": Family("RegNetY002"),
    "DenseNet121": Family("DenseNet121", big=True),
    "ResNet50": Family("ResNet50", big=True),
    "ConvNeXtTiny": Family("ConvNeXtTiny", big=True),
}


def build(name: str, seed: int = 0):
    """The family `name` with our head, seeded weights and randomized normalization statistics."""
    from tinyprune.tfsetup import keras

    fam = FAMILIES[name]
    keras.utils.set_random_seed(seed)
    base = getattr(keras.applications, fam.app)(input_shape=INPUT_SHAPE, weights=None, include_top=False,
                                                **fam.kwargs)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(base.output)
    model = keras.Model(base.input, keras.layers.Dense(HEAD_UNITS, name="head")(x), name=name)
    rng = np.random.default_rng(seed)
    bns = []
    for layer in model.layers:
        cls = type(layer).__name__
        ws = layer.get_weights()
        if cls == "BatchNormalization" and len(ws) == 4:
            n = ws[0].shape
            ws = [rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), ws[2], ws[3]]
            bns.append((layer, layer.momentum))
            layer.momentum = 0.0  # the next training-mode call sets the moving statistics to the batch's
        elif cls == "LayerScale":
            ws = [rng.uniform(0.5, 1.5, ws[0].shape)]
        else:
            continue
        layer.set_weights([w.astype(np.float32) for w in ws])
    if bns:
        model(inputs(model, CALIBRATION_BATCH, seed=seed + 100), training=True)
        for layer, momentum in bns:
            layer.momentum = momentum
    return model


def inputs(model, n: int, seed: int = 0) -> np.ndarray:
    """n random images in [-1, 1] (the range the families without built-in preprocessing expect)."""
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, *model.input_shape[1:])).astype(np.float32)
