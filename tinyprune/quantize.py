"""Full-integer post-training quantization of a tf_keras model to a .tflite for TFLM.

Weights are int8 per output channel, activations int8 per tensor, calibrated on a
representative dataset drawn from the user's training data. Input and output may be int8
(the default, what TFLM examples use), uint8, or float32.

This module converts; it does not check the result in TFLM (see `parity.py` and
`firmware_export.tflm`).
"""

from __future__ import annotations

import numpy as np

from tinyprune.errors import ConfigError
from tinyprune.tfsetup import tf

IO_TYPES = {"int8": "int8", "uint8": "uint8", "float32": "float32"}
CALIBRATION_SEED = 0  # the same samples are drawn every run


def representative_samples(x: np.ndarray, count: int) -> np.ndarray:
    """`count` samples of `x`, drawn without replacement with a fixed seed."""
    if count < 1:
        raise ConfigError(f"calibration sample count must be at least 1, got {count}")
    rng = np.random.default_rng(CALIBRATION_SEED)
    idx = rng.permutation(len(x))[: min(count, len(x))]
    return x[np.sort(idx)].astype(np.float32)


def quantize_int8(model, x_calib: np.ndarray, num_calibration: int = 300,
                  io_type: str = "int8") -> bytes:
    """Convert `model` to a full-integer .tflite (bytes).

    Args:
        model: a tf_keras model (float weights; a magnitude-pruned model should be stripped).
        x_calib: inputs to draw the representative dataset from (usually training data).
        num_calibration: how many samples calibrate activation ranges.
        io_type: "int8", "uint8" or "float32" for the model's input and output tensors.
    """
    if io_type not in IO_TYPES:
        raise ConfigError(f"unknown input/output type {io_type!r}; use one of {', '.join(IO_TYPES)}")
    samples = representative_samples(x_calib, num_calibration)

    def representative():
        for s in samples:
            yield [s[None, ...]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io_type != "float32":
        converter.inference_input_type = getattr(tf, io_type)
        converter.inference_output_type = getattr(tf, io_type)
    return bytes(converter.convert())
