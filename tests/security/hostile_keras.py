"""Hostile Keras model files for the fuzz tests and benchmarks/fuzz_inputs.py.

`lambda_h5(keras, folder, marker)` saves a model whose Lambda writes `marker` when tf_keras
rebuilds it; `variants(config_text)` rewrites its stored config in ways a string match misses
(no spaces, unicode escapes, wrappers, Keras 3 keys, TFOpLambda calling tf.io); `write_h5`,
`write_keras_zip` and `write_savedmodel_metadata` put a config into each container format.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Iterator


def lambda_h5(keras, folder: Path, marker: Path) -> Path:
    src = f"lambda t: (open({str(marker)!r}, 'w').write('ran'), t)[1]"
    inp = keras.Input((4,))
    out = keras.layers.Lambda(eval(src), name="evil")(keras.layers.Dense(3, name="d")(inp))  # noqa: S307
    path = folder / "evil.h5"
    keras.Model(inp, out).save(path)
    return path


def _layers(cfg: dict) -> list:
    return cfg["config"]["layers"]


def variants(config_text: str) -> Iterator[tuple[str, str]]:
    """(name, config JSON text) rewrites of a config holding a Lambda named 'evil'."""
    cfg = json.loads(config_text)
    yield "compact separators", json.dumps(cfg, separators=(",", ":"))
    yield "unicode escape", json.dumps(cfg).replace('"Lambda"', '"\\u004cambda"')
    yield "extra whitespace", json.dumps(cfg, indent=7).replace('"class_name": "Lambda"', '"class_name"  :\t"Lambda"')
    lam = next(layer for layer in _layers(cfg) if layer["class_name"] == "Lambda")
    wrapped = json.loads(json.dumps(cfg))
    for layer in _layers(wrapped):
        if layer["class_name"] == "Lambda":
            layer["class_name"] = "TimeDistributed"
            layer["config"] = {"name": "evil", "layer": {"class_name": "Lambda", "config": lam["config"]}}
    yield "inside TimeDistributed", json.dumps(wrapped)
    k3 = json.loads(json.dumps(cfg))
    for layer in _layers(k3):
        if layer["class_name"] == "Lambda":
            layer.update(class_name="Dense", module="evil.module", registered_name=None)
    yield "foreign module", json.dumps(k3)
    reg = json.loads(json.dumps(cfg))
    for layer in _layers(reg):
        if layer["class_name"] == "Lambda":
            layer.update(class_name="Dense", registered_name="Custom>Evil")
    yield "registered custom", json.dumps(reg)
    tfop = json.loads(json.dumps(cfg))
    for layer in _layers(tfop):
        if layer["class_name"] == "Lambda":
            layer["class_name"] = "TFOpLambda"
            layer["config"] = {"name": "evil", "function": "io.write_file", "trainable": False}
    yield "TFOpLambda io.write_file", json.dumps(tfop)
    fn = json.loads(json.dumps(cfg))
    for layer in _layers(fn):
        if layer["class_name"] == "Lambda":
            layer["class_name"] = "Dense"
            layer["config"]["function_type"] = "lambda"
    yield "function_type in a Dense", json.dumps(fn)
    deep = {"class_name": "Functional", "config": {"layers": []}}
    node = deep["config"]
    for _ in range(300):
        node["x"] = {}
        node = node["x"]
    yield "nested 300 deep", json.dumps(deep)


def write_h5(template: Path, config_text: str, path: Path) -> Path:
    import h5py

    shutil.copy(template, path)
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = config_text
    return path


def write_keras_zip(config_text: str, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "2.15.0"}))
        z.writestr("config.json", config_text)
    return path


def _len_field(number: int, payload: bytes) -> bytes:
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def write_savedmodel_metadata(config_text: str, folder: Path) -> Path:
    """A SavedModel folder whose keras_metadata.pb holds `config_text` as the root node's metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "saved_model.pb").write_bytes(b"")
    node = _len_field(3, b"root") + _len_field(4, b"_tf_keras_network") + _len_field(5, config_text.encode())
    (folder / "keras_metadata.pb").write_bytes(_len_field(1, node))
    return folder


def lambda_template(keras, folder: Path) -> tuple[Path, Path, str]:
    """(the marker-writing Lambda .h5, its marker path, its model_config JSON text); marker absent."""
    import h5py

    marker = folder / "LAMBDA_RAN"
    template = lambda_h5(keras, folder, marker)
    marker.unlink(missing_ok=True)
    with h5py.File(template, "r") as f:
        text = f.attrs["model_config"]
    return template, marker, text.decode() if isinstance(text, bytes) else text
