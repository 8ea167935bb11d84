"""Full-integer quantization of a tf_keras model to a .tflite for TFLM: post-training or QAT.

Post-training (`quantize_int8`): weights are int8 per output channel, activations int8 per
tensor, calibrated on a representative dataset drawn from the user's training data. Input and
output may be int8 (the default, what TFLM examples use), uint8, or float32.

Quantization-aware training (`quantize_aware`): tfmot's `quantize_model` inserts fake-quant
nodes, the model fine-tunes for its own number of epochs, then converts as above. With
`preserve_sparsity=True` (for a magnitude-pruned, stripped model) it uses tfmot's
pruning-preserving scheme (`Default8BitPrunePreserveQuantizeScheme`), which keeps every zero
weight at zero through the fine-tuning, so the sparsity survives into the int8 model.

This module converts; it does not check the result in TFLM (see `parity.py` and
`firmware_export.tflm`).
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

import numpy as np

from firmware_export.tflm import capture_c_stderr
from tinyprune.load.data import Dataset
from tinyprune.errors import ConfigError, DataError, UnsupportedLayerError
from tinyprune.tfsetup import tf, tfmot

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
    want = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    got = tuple(np.shape(x_calib)[1:])
    if want is not None and (len(want) != len(got) or any(w not in (None, g) for w, g in zip(want, got))):
        raise DataError(f"calibration samples have shape {got}, the model's input is {want}: give samples "
                        "the model takes (e.g. the training data it was fitted on)")
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
    # The MLIR quantizer prints a status line on the C-level stderr; keep it off the user's
    # terminal unless conversion fails, when it is part of the explanation.
    log: list[str] = []
    try:
        with capture_c_stderr() as log, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            data = converter.convert()
    except Exception:
        sys.stderr.write("".join(log))
        raise
    return bytes(data)


@dataclass
class QatResult:
    """A QAT conversion: the .tflite, the fine-tuned fake-quant Keras model, and what was run."""

    tflite: bytes
    model: object  # the tfmot quantize-wrapped tf_keras model after fine-tuning
    epochs: int
    preserve_sparsity: bool
    val_score: float  # validation score of the QAT Keras model (training.score)


def qat_model(model, preserve_sparsity: bool = False):
    """Wrap `model` for quantization-aware training (tfmot), optionally keeping its zeros."""
    q = tfmot.quantization.keras
    try:
        if preserve_sparsity:
            scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
            return q.quantize_apply(q.quantize_annotate_model(model), scheme)
        return q.quantize_model(model)
    except (ValueError, RuntimeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UnsupportedLayerError(
            f"tfmot cannot quantization-train this model ({reason}); use post-training quantization "
            "(without QAT) instead"
        ) from None


def quantize_aware(model, ds: Dataset, epochs: int = 2, preserve_sparsity: bool = False,
                   num_calibration: int = 300, io_type: str = "int8", batch_size: int = 32,
                   lr: float = 1e-4, quiet: bool = False) -> QatResult:
    """Quantization-aware fine-tuning with tfmot, then full-integer conversion.

    Args:
        model: a float tf_keras model (Sequential or functional); strip pruning wrappers first.
        ds: training data for the fine-tuning and calibration, validation data for the score.
        epochs: QAT fine-tuning epochs (its own budget, separate from any pruning fine-tuning).
        preserve_sparsity: use the pruning-preserving scheme (for magnitude-pruned models).
        lr: fine-tuning learning rate; small, because QAT starts from trained weights.
    """
    from tinyprune import training

    if epochs < 1:
        raise ConfigError(f"QAT needs at least 1 fine-tuning epoch, got {epochs}")
    if io_type not in IO_TYPES:
        raise ConfigError(f"unknown input/output type {io_type!r}; use one of {', '.join(IO_TYPES)}")
    q = qat_model(model, preserve_sparsity)
    training.compile_for(q, ds, lr=lr)
    training.train(q, ds, epochs, batch_size=batch_size, quiet=quiet,
                   description="QAT (sparsity-preserving)" if preserve_sparsity else "QAT")
    val = training.score(training.predict(q, ds.x_val), ds.y_val)
    return QatResult(quantize_int8(q, ds.x_train, num_calibration, io_type), q, epochs, preserve_sparsity, val)
