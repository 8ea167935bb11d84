"""Parity of float Keras, int8 TFLite (ai-edge-litert) and int8 TFLM on digits, and QAT /
pruning-preserving QAT conversions."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from firmware_export.tflite_model import parse_tflite


@pytest.fixture(scope="module")
def demo_model(demo_model_path):
    from tinyprune.load.model import load_model

    return load_model(demo_model_path)


@pytest.fixture(scope="module")
def digits_parity(demo_model, demo_int8, digits):
    from tinyprune.quantize.parity import parity_report

    return parity_report(demo_model, demo_int8.read_bytes(), digits.x_val, digits.y_val)


def test_tflite_and_tflm_agree_on_every_validation_sample(digits_parity, digits):
    r = digits_parity
    assert r.samples == len(digits.x_val) and r.labelled
    assert r.agree_tflite_tflm == 1.0
    assert r.max_abs_diff <= 1  # quantized output steps
    assert r.output_dtype == "int8"


def test_int8_accuracy_close_to_float(digits_parity):
    r = digits_parity
    assert r.float_accuracy >= 0.9 and r.tflite_accuracy >= 0.9
    assert r.tflm_accuracy == r.tflite_accuracy  # same top-1 everywhere, so the same accuracy
    assert abs(r.float_accuracy - r.tflm_accuracy) <= 0.02
    assert r.agree_float_tflm >= 0.97


def test_report_renders_and_serialises(digits_parity):
    console = Console(record=True, width=120)
    digits_parity.render(console)
    text = console.export_text()
    assert "TFLM int8" in text and "TFLite int8" in text and "Keras float" in text
    d = digits_parity.to_dict()
    assert set(d) >= {"float_accuracy", "tflite_accuracy", "tflm_accuracy", "agree_tflite_tflm", "max_abs_diff"}


def test_without_labels_reports_agreement_only(demo_model, demo_int8, digits):
    from tinyprune.quantize.parity import parity_report

    x = digits.x_val[:40]
    r = parity_report(demo_model, demo_int8.read_bytes(), x)
    assert not r.labelled and r.float_accuracy is None and r.tflm_accuracy is None
    assert r.samples == 40 and r.agree_tflite_tflm == 1.0


def test_tflite_runner_matches_tflm_raw_outputs(demo_int8, digits):
    from firmware_export import tflm
    from tinyprune.quantize.parity import tflite_run

    data = demo_int8.read_bytes()
    x = digits.x_val[:25]
    lite, micro = tflite_run(data, x), tflm.run(data, x)
    assert lite.dtype == micro.dtype == np.int8 and lite.shape == micro.shape == (25, 10)
    assert np.abs(lite.astype(int) - micro.astype(int)).max() <= 1


# ---------------------------------------------------------------- QAT

def _half_sparse(model):
    """A copy of `model` with the smaller half of conv2's and fc1's kernel weights set to zero."""
    from tinyprune.tfsetup import keras

    m = keras.models.clone_model(model)
    m.set_weights(model.get_weights())
    for name in ("conv2", "fc1"):
        layer = m.get_layer(name)
        w = layer.get_weights()
        w[0] = np.where(np.abs(w[0]) < np.quantile(np.abs(w[0]), 0.5), 0.0, w[0])
        layer.set_weights(w)
    return m


def _int8_zero_fraction(data: bytes, layer: str) -> float:
    """Fraction of zeros in the int8 weight tensor of `layer` inside a .tflite."""
    model = parse_tflite(data)
    t = next(t for t in model.tensors
             if t.is_constant and t.dtype == "INT8" and f"/quant_{layer}/" in t.name and len(t.shape) > 1)
    return float((model.constant(t.index) == 0).mean())


@pytest.fixture(scope="module")
def sparse_qat(demo_model, digits):
    from tinyprune.quantize.int8 import quantize_aware

    sparse = _half_sparse(demo_model)
    return {pres: quantize_aware(sparse, digits, epochs=1, preserve_sparsity=pres, quiet=True)
            for pres in (True, False)}


def test_qat_converts_to_int8_that_tflm_runs_with_parity(sparse_qat, demo_model, digits):
    from tinyprune.quantize.parity import parity_report

    r = sparse_qat[False]
    m = parse_tflite(r.tflite)
    assert m.input_tensors()[0].dtype == "INT8" and r.epochs == 1
    p = parity_report(r.model, r.tflite, digits.x_val, digits.y_val)
    assert p.tflm_accuracy >= 0.9 and p.agree_tflite_tflm == 1.0


def test_pruning_preserving_qat_keeps_the_zeros(sparse_qat):
    kept = {layer: _int8_zero_fraction(sparse_qat[True].tflite, layer) for layer in ("conv2", "fc1")}
    lost = {layer: _int8_zero_fraction(sparse_qat[False].tflite, layer) for layer in ("conv2", "fc1")}
    assert all(v >= 0.5 for v in kept.values()), kept
    # plain QAT fine-tunes the zeros away, so the option is what keeps them
    assert sum(lost.values()) < sum(kept.values()) - 0.05, (kept, lost)
    assert sparse_qat[True].val_score >= 0.9


def test_qat_bad_epochs(demo_model, digits):
    from tinyprune.errors import ConfigError
    from tinyprune.quantize.int8 import quantize_aware

    with pytest.raises(ConfigError, match="at least 1"):
        quantize_aware(demo_model, digits, epochs=0)


def test_calibration_of_the_wrong_shape_is_a_data_error(demo_model):
    """TFLite's converter raised a bare RuntimeError deep in calibration."""
    from tinyprune.errors import DataError
    from tinyprune.quantize.int8 import quantize_int8

    with pytest.raises(DataError, match=r"shape \(8, 8\).*\(8, 8, 1\)"):
        quantize_int8(demo_model, np.zeros((20, 8, 8), np.float32))


def test_parity_with_fewer_labels_than_inputs_is_a_data_error(demo_model, demo_int8, digits):
    from tinyprune.errors import DataError
    from tinyprune.quantize.parity import parity_report

    with pytest.raises(DataError, match="10 validation inputs but 9 labels"):
        parity_report(demo_model, demo_int8.read_bytes(), digits.x_val[:10], digits.y_val[:9])


def test_qat_model_still_counts_as_ending_in_softmax(demo_model):
    """QAT wraps the activation; the loss must still be computed on probabilities, not logits."""
    from tinyprune.quantize.int8 import qat_model
    from tinyprune.training import ends_in_softmax

    assert ends_in_softmax(demo_model) and ends_in_softmax(qat_model(demo_model))
