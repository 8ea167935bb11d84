"""Load a trained Keras model safely: .h5, .keras (tf_keras or Keras 3), or a SavedModel folder.

Before TensorFlow deserializes anything, the model's stored config is read as plain JSON
and checked: a Lambda layer or a custom (unregistered) layer class each stop the load with
one line that says what to do. A Keras 3 file (keras_version 3.x in the zip's metadata.json
or the HDF5 attribute) is checked by `keras3.check_keras3_config`, opened with Keras 3 and
translated to an equivalent tf_keras model by `tinyprune.load.keras3` (checked on outputs).
(A SavedModel folder is checked for
Lambda layers only; its custom classes cannot load without --unsafe-load and their code.) Lambda layers and custom objects run
Python code from the file, so they load only with `unsafe=True` (`--unsafe-load`).
A subclassed model is refused after loading (tinyprune needs the layer graph).

This module loads models; it does not save, prune or convert them.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Iterator

from tinyprune.errors import InputFileError, ModelLoadError

# Layers that run arbitrary Python stored in the file.
_CODE_LAYERS = {"Lambda"}
# Layers that replay named TensorFlow ops (no stored code): safe to load.
_OP_LAYERS = {"TFOpLambda", "SlicingOpLambda"}
_MODEL_CLASSES = {"Sequential", "Functional", "Model"}
_H5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _walk_layers(config: Any) -> Iterator[tuple[str, str]]:
    """Yield (class_name, layer name) for every layer dict in a Keras config, nested too."""
    if isinstance(config, dict):
        if "class_name" in config and isinstance(config.get("config"), dict):
            yield config["class_name"], str(config["config"].get("name", "?"))
        for v in config.values():
            yield from _walk_layers(v)
    elif isinstance(config, list):
        for v in config:
            yield from _walk_layers(v)


def _known_layer_classes() -> set[str]:
    from tinyprune.tfsetup import keras

    names = {n for n in dir(keras.layers) if n[:1].isupper()}
    return names | _MODEL_CLASSES | _OP_LAYERS | {"InputLayer"}


def check_config(config: dict, source: str, unsafe: bool) -> None:
    """Refuse a model config that would run stored code, unless `unsafe`."""
    if unsafe:
        return
    known = None
    for cls, name in _walk_layers(config.get("config", config)):
        if cls in _CODE_LAYERS:
            raise ModelLoadError(
                f"{source}: layer '{name}' is a {cls} layer, which runs Python code stored in the "
                "file; load it only if you trust the file, with --unsafe-load"
            )
        known = known or _known_layer_classes()
        if cls not in known and not cls.endswith("Initializer") and cls not in _non_layer_classes():
            raise ModelLoadError(
                f"{source}: layer '{name}' has custom class '{cls}', whose code would run at load; "
                "pass --unsafe-load (and make the class importable) if you trust the file"
            )


def _non_layer_classes() -> set[str]:
    """Class names that appear in configs but are not layers (initializers, regularizers...)."""
    from tinyprune.tfsetup import keras

    names: set[str] = set()
    for mod in (keras.initializers, keras.regularizers, keras.constraints, keras.activations,
                keras.optimizers, keras.losses, keras.metrics):
        names |= {n for n in dir(mod) if n[:1].isupper()}
    return names | {"__tuple__", "TensorShape", "DTypePolicy", "Policy"}


def _h5_config(path: Path) -> tuple[dict | None, str | None]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            version = f.attrs.get("keras_version")
    except OSError as e:
        raise ModelLoadError(f"{path} is not a readable HDF5 model file ({e}); re-save it with model.save('m.h5')") from None
    if isinstance(raw, bytes):
        raw = raw.decode()
    if isinstance(version, bytes):
        version = version.decode()
    if raw is None:
        raise ModelLoadError(f"{path} holds weights only (no model config); save the whole model with model.save()")
    try:
        return json.loads(raw), version
    except ValueError:
        raise ModelLoadError(f"{path} has a damaged model config; re-save the model with model.save()") from None


def _keras_zip_config(path: Path) -> tuple[dict, str | None]:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
            config = json.loads(z.read("config.json")) if "config.json" in names else None
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise ModelLoadError(f"{path} is not a readable .keras archive ({e}); re-save it with model.save('m.keras')") from None
    if config is None:
        raise ModelLoadError(f"{path} has no config.json; it is not a Keras model archive")
    return config, meta.get("keras_version")


def _savedmodel_config(path: Path) -> dict | None:
    meta = path / "keras_metadata.pb"
    if not (path / "saved_model.pb").is_file():
        raise InputFileError(f"{path} is a folder but not a SavedModel (no saved_model.pb)")
    if not meta.is_file():
        raise ModelLoadError(f"{path} is a SavedModel without Keras metadata; save it from tf_keras with model.save(folder)")
    text = meta.read_bytes().decode("utf-8", "replace")
    # keras_metadata.pb embeds each layer's JSON config; look for code-carrying layers in it.
    for cls in _CODE_LAYERS:
        if f'"class_name": "{cls}"' in text:
            return {"config": {"layers": [{"class_name": cls, "config": {"name": "(in SavedModel)"}}]}}
    return None


def load_model(path: str | Path, unsafe: bool = False) -> Any:
    """Load a tf_keras model for pruning (not compiled). Raises ModelLoadError/InputFileError."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such model file; give a .h5, .keras or SavedModel folder")
    if path.is_dir():
        config = _savedmodel_config(path)
        if config:
            check_config(config, str(path), unsafe)
    else:
        with path.open("rb") as f:
            head = f.read(8)
        if head == _H5_SIGNATURE:
            config, version = _h5_config(path)
        elif head[:2] == b"PK":
            config, version = _keras_zip_config(path)
        else:
            raise ModelLoadError(
                f"{path} is neither an HDF5 (.h5) nor a .keras archive; give a model saved with model.save()"
            )
        from tinyprune.load import keras3  # no TensorFlow at import

        if keras3.is_keras3_version(version):  # checked as JSON here, then opened and translated
            keras3.check_keras3_config(config, str(path), unsafe)
            return keras3.load_keras3_file(path, unsafe)
        if config.get("class_name") not in _MODEL_CLASSES:
            raise ModelLoadError(
                f"{path} holds a subclassed model ({config.get('class_name')}); tinyprune needs a "
                "Sequential or functional model: rebuild it with the functional API"
            )
        check_config(config, str(path), unsafe)

    from tinyprune.tfsetup import keras

    try:
        if path.suffix == ".keras":
            model = keras.models.load_model(path, compile=False, safe_mode=not unsafe)
        else:
            model = keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for bad files; the message is what matters
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"{path} could not be loaded by tf_keras: {msg[:200]}") from None
    if not getattr(model, "_is_graph_network", False) and not isinstance(model, keras.Sequential):
        raise ModelLoadError(
            f"{path} holds a subclassed model ({type(model).__name__}); tinyprune needs a "
            "Sequential or functional model: rebuild it with the functional API"
        )
    return model
