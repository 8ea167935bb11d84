"""Foundation: loading rules, data format, config, CLI start-up, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, cli_in_fresh_interpreter, run_cli, stderr_one_line, subclassed_model
from tinyprune.errors import ConfigError, DataError, InputFileError, ModelLoadError


def _write_config(tmp_path: Path, **sections) -> Path:
    body = ""
    for name, values in sections.items():
        body += f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
    path = tmp_path / "run.toml"
    path.write_text(body)
    return path


# ---------------------------------------------------------------- no TensorFlow on the fast paths

def test_help_does_not_import_tensorflow():
    codes, heavy, proc = cli_in_fresh_interpreter(["--help"])
    assert codes == [0] and heavy == []
    assert "run" in proc.stdout and "Commands" in proc.stdout


# ---------------------------------------------------------------- data

def test_digits_split_is_deterministic_and_stratified(digits):
    from tinyprune.load.data import load_digits

    again = load_digits()
    assert np.array_equal(digits.x_val, again.x_val) and np.array_equal(digits.y_val, again.y_val)
    assert digits.x_train.shape[1:] == (8, 8, 1) and digits.x_train.max() <= 1.0
    assert len(digits.x_train) + len(digits.x_val) == 1797
    counts = np.bincount(digits.y_val, minlength=10)
    assert counts.min() >= 30  # every class is in the validation split


def test_npz_formats(tmp_path):
    from tinyprune.load.data import load_npz

    x = np.random.default_rng(0).integers(0, 255, (50, 4, 4), dtype=np.uint8)
    y = np.arange(50) % 5
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    ds = load_npz(tmp_path / "xy.npz")
    assert len(ds.x_train) + len(ds.x_val) == 50 and ds.x_train.dtype == np.float32
    assert ds.x_train.max() <= 1.0 and ds.num_classes == 5
    np.savez(tmp_path / "split.npz", x_train=x[:40], y_train=y[:40], x_val=x[40:], y_val=y[40:])
    ds2 = load_npz(tmp_path / "split.npz")
    assert len(ds2.x_val) == 10
    np.savez(tmp_path / "bad.npz", images=x, labels=y)
    with pytest.raises(DataError, match="expected x_train"):
        load_npz(tmp_path / "bad.npz")
    with pytest.raises(InputFileError):
        load_npz(tmp_path / "missing.npz")


# ---------------------------------------------------------------- loading

def test_load_demo_model(demo_model_path):
    from tinyprune.load.model import load_model

    model = load_model(demo_model_path)
    assert model.input_shape == (None, 8, 8, 1) and model.output_shape == (None, 10)


def test_lambda_layer_needs_unsafe_load(tmp_path):
    from tinyprune.load.model import load_model
    from tinyprune.tfsetup import keras

    inp = keras.Input((4,))
    out = keras.layers.Lambda(lambda t: t * 2.0, name="double")(keras.layers.Dense(3)(inp))
    path = tmp_path / "lambda.h5"
    keras.Model(inp, out).save(path)
    with pytest.raises(ModelLoadError, match="'double'.*--unsafe-load"):
        load_model(path)
    assert load_model(path, unsafe=True).output_shape == (None, 3)


def test_custom_layer_class_is_refused(tmp_path):
    from tinyprune.load.model import load_model
    from tinyprune.tfsetup import keras

    @keras.utils.register_keras_serializable("tests")
    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 3.0

    inp = keras.Input((4,))
    path = tmp_path / "custom.h5"
    keras.Model(inp, Scale(name="scale3")(inp)).save(path)
    with pytest.raises(ModelLoadError, match="'scale3'.*custom class"):
        load_model(path)


def test_subclassed_savedmodel_is_refused(tmp_path):
    from tinyprune.load.model import load_model

    subclassed_model(2, 3).save(tmp_path / "sub")
    with pytest.raises(ModelLoadError, match="subclassed"):
        load_model(tmp_path / "sub")


def test_keras3_file_loads_as_tf_keras(tmp_path):
    path = tmp_path / "k3.keras"
    code = ("import os; os.environ['TF_USE_LEGACY_KERAS']='0'\n"
            "import keras\n"
            "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n"
            f"m.save({str(path)!r})\nprint(keras.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("3.")
    from tinyprune.load.model import load_model

    model = load_model(path)  # translated by tinyprune/load/keras3.py (tests/load/test_keras3.py)
    assert type(model).__module__.startswith("tf_keras") and model.output_shape == (None, 2)


# ---------------------------------------------------------------- config

def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    from tinyprune.pipeline.config import load_config

    with pytest.raises(ConfigError, match="unknown key 'sparsity'"):
        load_config(_write_config(tmp_path, prune={"sparsity": 0.5}))
    with pytest.raises(ConfigError, match="final_sparsity"):
        load_config(_write_config(tmp_path, prune={"final_sparsity": 1.5}))
    cfg = load_config(_write_config(tmp_path, prune={"final_sparsity": 0.8}, export={"name": "net"}))
    assert cfg.prune.final_sparsity == 0.8 and cfg.prune.epochs == 4 and cfg.export.name == "net"


# ---------------------------------------------------------------- CLI bad input: one line, exit 2

@pytest.mark.parametrize("case", ["missing", "text_h5", "keras3", "npz_keys", "bad_toml"])
def test_run_bad_input_exits_2_with_one_line(tmp_path, case):
    model = str(ROOT / "models" / "digits_cnn.h5")
    data = "digits"
    if case == "missing":
        model = str(tmp_path / "nope.h5")
    elif case == "text_h5":
        (tmp_path / "text.h5").write_text("this is not a model\n")
        model = str(tmp_path / "text.h5")
    elif case == "keras3":
        import zipfile

        with zipfile.ZipFile(tmp_path / "k3.keras", "w") as z:  # the layout Keras 3 writes
            z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
            z.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
        model = str(tmp_path / "k3.keras")
    elif case == "npz_keys":
        np.savez(tmp_path / "d.npz", images=np.zeros((10, 8, 8, 1)), labels=np.zeros(10))
        data = str(tmp_path / "d.npz")
    cfg = _write_config(tmp_path, model={"path": model}, data={"source": data},
                        output={"dir": str(tmp_path / "out")})
    if case == "bad_toml":
        cfg.write_text("[model\npath = 3\n")
    proc = run_cli(["run", str(cfg)])
    assert proc.returncode == 2, proc.stderr
    line = stderr_one_line(proc)
    assert line.startswith("error: ")
    assert not (tmp_path / "out").exists()


def test_cli_usage_error_is_one_line():
    proc = run_cli(["run", "--no-such-flag"])
    assert proc.returncode == 2
    assert "no-such-flag" in stderr_one_line(proc)
