"""The formats a tf_keras user saves in load and give the same outputs as the model that was saved."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import DEMO_MODEL


@pytest.fixture(scope="module")
def demo():
    from tinyprune.load.model import load_model

    return load_model(DEMO_MODEL)


@pytest.mark.parametrize("fmt", ["keras", "savedmodel"])
def test_tf_keras_formats_load_with_equal_outputs(demo, fmt, tmp_path, digits):
    from tinyprune.load.model import load_model

    path = tmp_path / ("m.keras" if fmt == "keras" else "saved")
    if fmt == "keras":
        demo.save(path)
    else:
        demo.save(path, save_format="tf")
        assert (path / "saved_model.pb").is_file() and (path / "keras_metadata.pb").is_file()
    loaded = load_model(path)
    x = digits.fit_to(demo.input_shape).x_val[:32]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), demo.predict(x, verbose=0), atol=1e-6)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in demo.layers]


def test_a_savedmodel_type_spec_other_than_a_tensor_spec_is_refused():
    from tinyprune.errors import ModelLoadError
    from tinyprune.load.safety import check_config

    good = {"class_name": "TypeSpec", "type_spec": "tf.TensorSpec", "serialized": []}
    check_config({"class_name": "Functional", "config": {"input_spec": good}})
    bad = {**good, "type_spec": "my_project.EvilSpec"}
    with pytest.raises(ModelLoadError, match="EvilSpec"):
        check_config({"class_name": "Functional", "config": {"input_spec": bad}})


@pytest.mark.parametrize("name", ["m.keras", "m.h5", "saved"])
def test_a_compiled_trained_model_loads_in_every_format(tmp_path, name):
    """What users save: a compiled model after fit() (its optimizer is in the file's config)."""
    from tinyprune.load.model import load_model
    from tinyprune.tfsetup import keras

    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    m.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(np.zeros((4, 4), np.float32), np.zeros(4, np.int64), verbose=0)
    m.save(tmp_path / name)
    loaded = load_model(tmp_path / name)
    x = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), m.predict(x, verbose=0), atol=1e-6)
