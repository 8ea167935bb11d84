"""Sparsity-preserving clustering + TFLM LUT compression, checked in the real TFLM interpreter.

The compressed model's outputs must be bit-identical to the clustered, uncompressed int8
model's on the validation split (digits; MNIST from ../shared/data when present).
"""

from __future__ import annotations

import numpy as np
import pytest

BITS = 4


@pytest.fixture(scope="session")
def sparse_digits(demo_model_path, digits):
    from tinyprune.load.model import load_model
    from tinyprune.prune.magnitude import Schedule, prune_magnitude

    return prune_magnitude(load_model(demo_model_path), digits, Schedule(final_sparsity=0.8), epochs=2, quiet=True)


@pytest.fixture(scope="session")
def clustered_digits(sparse_digits, digits):
    from tinyprune.prune.clustering import cluster_model
    from tinyprune.quantize.int8 import quantize_int8

    result = cluster_model(sparse_digits.model, digits, bits=BITS, epochs=1, quiet=True)
    return result, quantize_int8(result.model, digits.x_train, num_calibration=200)


def test_clustering_bounds_values_and_keeps_zeros(clustered_digits, sparse_digits):
    result, _ = clustered_digits
    assert result.fits
    for name, n in result.values_per_channel.items():
        assert n <= 2 ** BITS, (name, n)
    for name, before in sparse_digits.sparsity.items():
        assert result.sparsity[name] >= before - 0.01, (name, before, result.sparsity[name])
    assert result.clustered, "nothing was clustered"


def test_int8_channels_hold_at_most_2_to_the_bits_values(clustered_digits):
    from firmware_export.compress import plan

    _, int8 = clustered_digits
    plans = plan(int8, "lut", BITS)
    assert plans and all(p.max_values <= 2 ** BITS for p in plans)


def test_lut_outputs_bit_identical_in_tflm(clustered_digits, digits):
    from firmware_export.compress import compress_model
    from firmware_export.tflite_model import parse_tflite
    from firmware_export.tflm import run

    _, int8 = clustered_digits
    lut = compress_model(int8, "lut", BITS)
    assert "TFLM_DECODE" in parse_tflite(lut.data).op_names
    assert "TFLM_DECODE" not in parse_tflite(int8).op_names
    ref = run(int8, digits.x_val)
    got = run(lut.data, digits.x_val)
    assert got.dtype == ref.dtype == np.int8
    assert np.array_equal(got, ref)
    # flash really shrinks, RAM really grows, and both are what TFLM reports
    assert lut.compressed_bytes == len(lut.data) < lut.dense_bytes == len(int8)
    assert lut.extra_arena_bytes > 0
    compressed = [p for p in lut.tensors if p.compress]
    assert compressed and all(p.index_bits <= BITS for p in compressed)
    assert "experimental on Cortex-M" in lut.to_dict()["note"]


def test_unclustered_model_is_refused(demo_int8):
    from firmware_export.compress import compress_model
    from tinyprune.errors import ConfigError

    with pytest.raises(ConfigError, match="cluster"):
        compress_model(demo_int8.read_bytes(), "lut", 2, measure=False)


@pytest.mark.parametrize("bits,says,not_says", [(3, "or use more bits (--bits", "saves flash"),
                                                (7, "saves flash as a 7-bit LUT: too small", "more bits")])
def test_lut_refusal_names_the_real_reason(mlperf_dir, bits, says, not_says):
    """kws has at most 60 values per channel: at 7 bits it fits the table but its tensors are too
    small for one to pay (the message said "no tensor has at most 128 values (up to 60 found)")."""
    from firmware_export.compress import compress_model
    from tinyprune.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        compress_model((mlperf_dir / "kws_ref_model.tflite").read_bytes(), "lut", bits, measure=False)
    assert says in str(e.value) and not_says not in str(e.value)


@pytest.mark.parametrize("bits", [1, 8])
def test_bits_out_of_range(bits, demo_int8):
    from firmware_export.compress import compress_model
    from tinyprune.errors import ConfigError

    with pytest.raises(ConfigError, match="2..7"):
        compress_model(demo_int8.read_bytes(), "lut", bits)


def test_lut_module_does_not_import_tensorflow():
    from tests.helpers import HEAVY_MODULES, loaded_modules_after

    assert not loaded_modules_after("import firmware_export.compress, firmware_export.lut") & set(HEAVY_MODULES)


def test_mnist_lut_bit_identical(mnist_train):
    """MNIST from ../shared/data: prune 80%, cluster to 4 bits, LUT, same TFLM outputs."""
    from firmware_export.compress import compress_model
    from firmware_export.tflm import run
    from tinyprune import training
    from tinyprune.prune.clustering import cluster_model
    from tinyprune.prune.magnitude import Schedule, prune_magnitude
    from tinyprune.quantize.int8 import quantize_int8
    from tinyprune.tfsetup import keras

    ds = mnist_train.subset(4000, 500)
    inp = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(inp)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu", name="fc")(x)
    model = keras.Model(inp, keras.layers.Dense(10, name="out")(x))
    training.compile_for(model, ds)
    training.train(model, ds, 1, 64, quiet=True)
    sparse = prune_magnitude(model, ds, Schedule(final_sparsity=0.8), epochs=1, batch_size=64, quiet=True)
    clustered = cluster_model(sparse.model, ds, bits=BITS, epochs=1, batch_size=64, quiet=True)
    assert clustered.fits
    int8 = quantize_int8(clustered.model, ds.x_train, num_calibration=100)
    lut = compress_model(int8, "lut", BITS)
    assert np.array_equal(run(lut.data, ds.x_val), run(int8, ds.x_val))
    assert lut.compressed_bytes < 0.7 * lut.dense_bytes


def test_clustering_survives_an_all_zero_channel(digits):
    """tfmot's per-channel sparsity-preserving init fails on an empty channel; tinyprune clusters per tensor."""
    from tinyprune import training
    from tinyprune.prune.clustering import cluster_model
    from tinyprune.tfsetup import keras

    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inp)
    model = keras.Model(inp, keras.layers.Dense(10, name="out")(keras.layers.Flatten()(x)))
    training.compile_for(model, digits)
    training.train(model, digits, 1, 64, quiet=True)
    k, b = model.get_layer("conv").get_weights()
    k[..., 3] = 0.0
    model.get_layer("conv").set_weights([k, b])
    result = cluster_model(model, digits, bits=2, epochs=1, batch_size=64, quiet=True)
    assert result.clustered["conv"] == "per-tensor" and result.fits
    assert np.all(result.model.get_layer("conv").kernel.numpy()[..., 3] == 0)


def test_auto_on_a_clustered_sparse_model_is_no_larger_than_either_format(clustered_digits, digits):
    """80% sparse + 16 values per channel: auto picks per tensor, and the decoded outputs stay identical."""
    from firmware_export.compress import compress_model
    from firmware_export.tflm import run

    _, int8 = clustered_digits
    auto = compress_model(int8, "auto", BITS)
    lut = compress_model(int8, "lut", BITS, measure=False)
    prune = compress_model(int8, "prune", measure=False)
    assert auto.compressed_bytes <= min(lut.compressed_bytes, prune.compressed_bytes)
    assert "prune" in auto.to_dict()["formats_used"]  # at 80% sparsity the mask beats 4-bit indices
    assert np.array_equal(run(auto.data, digits.x_val), run(int8, digits.x_val))
