"""Load a trained Keras model safely: .h5, .keras (tf_keras or Keras 3), or a SavedModel folder.

Safe loading is decided on the bytes tf_keras will deserialize, never by string matching:

- .h5: the file is opened once with h5py; its `model_config` attribute is parsed as JSON and
  checked, and that same open h5py.File is what tf_keras loads from.
- .keras: the zip's `config.json` (what tf_keras's saving_lib deserializes) is parsed and checked.
- SavedModel folder: `keras_metadata.pb` is read as protobuf wire format
  (`tinyprune.load.keras_metadata`, no TensorFlow) and every node's metadata JSON is checked.

The check itself is `tinyprune.load.safety.check_config` (a pure walk over the parsed config):
a Lambda layer, a custom, unknown or registered class, a non-Keras module or a TFOpLambda that
calls anything but tensor maths stops the load with one line. Polyglot files are refused before
anything is parsed: an HDF5 file with a user block, a file that is both an HDF5 file and a zip
archive, a zip with data in front of it. Only `unsafe=True` (`--unsafe-load`) skips the check
(for files the user trusts). A subclassed model is refused (tinyprune needs the layer graph).

A Keras 3 file (keras_version 3.x in the zip's metadata.json or the HDF5 attribute) is also
checked by `keras3.check_keras3_config`, then opened with Keras 3 and translated to an
equivalent tf_keras model by `tinyprune.load.keras3` (checked on outputs).

This module loads models; it does not save, prune or convert them.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from tinyprune.errors import InputFileError, ModelLoadError
from tinyprune.load.keras_metadata import read_nodes
from tinyprune.load.safety import check_config

_MODEL_CLASSES = {"Sequential", "Functional", "Model"}
_H5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"
_MAX_METADATA_BYTES = 256 << 20  # far above any real keras_metadata.pb; refuses a file built to exhaust memory


def _has_h5_signature(path: Path) -> bool:
    """An HDF5 superblock at offset 0, 512, 1024, 2048, ... (where HDF5 itself looks for one)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            if f.read(8) == _H5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def _refuse_polyglot(path: Path, head: bytes) -> None:
    is_zip, is_h5 = zipfile.is_zipfile(path), _has_h5_signature(path)
    if is_zip and is_h5:
        raise ModelLoadError(f"{path} is both an HDF5 file and a zip archive (a polyglot file); tinyprune "
                             "refuses it because its loaders would read different models. Re-save it with model.save()")
    if is_h5 and head[:8] != _H5_SIGNATURE:
        raise ModelLoadError(f"{path} is an HDF5 file with a user block (data before the HDF5 header); "
                             "tinyprune refuses it. Re-save the model with model.save('m.h5')")
    if is_zip and head[:4] != _ZIP_SIGNATURE:
        raise ModelLoadError(f"{path} is a zip archive with data in front of it; tinyprune refuses it. "
                             "Re-save the model with model.save('m.keras')")


def _decode(raw: Any) -> Any:
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


def _h5_config(f: Any, path: Path) -> tuple[Any, str | None]:
    """The parsed `model_config` attribute and the Keras version of an open h5py.File."""
    try:
        raw = _decode(f.attrs.get("model_config"))
        version = _decode(f.attrs.get("keras_version"))
    except (OSError, UnicodeDecodeError, TypeError) as e:
        raise ModelLoadError(f"{path} has an unreadable model config ({type(e).__name__}); "
                             "re-save the model with model.save()") from None
    if raw is None:
        raise ModelLoadError(f"{path} holds weights only (no model config); save the whole model with model.save()")
    if not isinstance(raw, str):
        raise ModelLoadError(f"{path} has a model config that is not text; re-save the model with model.save()")
    try:
        return json.loads(raw), version if isinstance(version, str) else None
    except (ValueError, RecursionError):
        raise ModelLoadError(f"{path} has a damaged model config; re-save the model with model.save()") from None


def _keras_zip_config(path: Path) -> tuple[Any, str | None]:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if len(names) != len(set(names)):
                raise ModelLoadError(f"{path} has two archive members of the same name; it is not a file "
                                     "Keras writes. Re-save it with model.save('m.keras')")
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
            config = json.loads(z.read("config.json")) if "config.json" in names else None
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError, NotImplementedError, OSError) as e:
        raise ModelLoadError(f"{path} is not a readable .keras archive ({type(e).__name__}); "
                             "re-save it with model.save('m.keras')") from None
    if config is None:
        raise ModelLoadError(f"{path} has no config.json; it is not a Keras model archive")
    version = meta.get("keras_version") if isinstance(meta, dict) else None
    return config, version if isinstance(version, str) else None


def _savedmodel_nodes(path: Path, unsafe: bool) -> None:
    """Check every node of a SavedModel's keras_metadata.pb (unless `unsafe`)."""
    meta = path / "keras_metadata.pb"
    if not (path / "saved_model.pb").is_file():
        raise InputFileError(f"{path} is a folder but not a SavedModel (no saved_model.pb)")
    if not meta.is_file():
        raise ModelLoadError(f"{path} is a SavedModel without Keras metadata; save it from tf_keras with model.save(folder)")
    if meta.stat().st_size > _MAX_METADATA_BYTES:
        raise ModelLoadError(f"{meta} is larger than {_MAX_METADATA_BYTES >> 20} MB; it is not a Keras metadata file")
    nodes = read_nodes(meta.read_bytes(), str(meta))
    if not nodes:
        raise ModelLoadError(f"{path} has no Keras objects in keras_metadata.pb; save it from tf_keras with model.save(folder)")
    for node in nodes:
        for md in node.metadata:
            if node.node_path == "root" and isinstance(md, dict) and md.get("class_name") not in _MODEL_CLASSES:
                raise ModelLoadError(
                    f"{path} holds a subclassed model ({md.get('class_name')}); tinyprune needs a "
                    "Sequential or functional model: rebuild it with the functional API")
            if not unsafe:
                check_config(md, str(path))


def tf_keras_shipped_classes() -> dict[str, type]:
    """{class name: class} of the classes tf_keras ships outside keras.layers (safe_classes.toml
    [tf_keras_shipped]), imported from tf_keras itself; a class is taken only if it really is
    defined in that tf_keras module."""
    import importlib

    from tinyprune.load.safety import tf_keras_shipped
    from tinyprune.tfsetup import keras  # noqa: F401  (tf_keras must be set up first)

    out: dict[str, type] = {}
    for module, names in tf_keras_shipped().items():
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        for n in names:
            cls = getattr(mod, n, None)
            if isinstance(cls, type) and cls.__module__ == module:
                out[n] = cls
    return out


def load_model(path: str | Path, unsafe: bool = False) -> Any:
    """Load a tf_keras model for pruning (not compiled). Raises ModelLoadError/InputFileError."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such model file; give a .h5, .keras or SavedModel folder")
    h5 = None
    if path.is_dir():
        _savedmodel_nodes(path, unsafe)
        target: Any = path
    else:
        try:
            with path.open("rb") as f:
                head = f.read(8)
        except OSError as e:
            raise InputFileError(f"{path} cannot be read ({e.strerror}); check its permissions") from None
        _refuse_polyglot(path, head)
        if head == _H5_SIGNATURE:
            import h5py

            try:
                h5 = h5py.File(path, "r")
            except OSError as e:
                raise ModelLoadError(f"{path} is not a readable HDF5 model file ({str(e)[:120]}); "
                                     "re-save it with model.save('m.h5')") from None
            if h5.userblock_size:  # the signature test above already refuses this; h5py's word is final
                h5.close()
                raise ModelLoadError(f"{path} is an HDF5 file with a user block; tinyprune refuses it")
            try:
                config, version = _h5_config(h5, path)
            except BaseException:
                h5.close()
                raise
            target = h5  # tf_keras reads the very attributes checked here
        elif head[:4] == _ZIP_SIGNATURE:
            if path.suffix != ".keras":
                raise ModelLoadError(f"{path} is a zip archive; name a Keras archive NAME.keras (tf_keras reads "
                                     "only .keras files as archives)")
            config, version = _keras_zip_config(path)
            target = path
        else:
            raise ModelLoadError(
                f"{path} is neither an HDF5 (.h5) nor a .keras archive; give a model saved with model.save()"
            )
        from tinyprune.load import keras3  # no TensorFlow at import

        try:
            if not isinstance(config, dict):
                raise ModelLoadError(f"{path} has a model config that is a JSON {type(config).__name__}, not an "
                                     "object; it is not a file Keras writes. Re-save the model with model.save()")
            is_keras3 = keras3.is_keras3_version(version)
            if is_keras3:  # checked as JSON here (what cannot be translated, too), then opened and translated
                keras3.check_keras3_config(config, str(path), unsafe)
                keras3.check_file(path)
            elif config.get("class_name") not in _MODEL_CLASSES:
                raise ModelLoadError(
                    f"{path} holds a subclassed model ({config.get('class_name')}); tinyprune needs a "
                    "Sequential or functional model: rebuild it with the functional API"
                )
            if not unsafe:
                check_config(config, str(path))
        except BaseException:
            if h5 is not None:
                h5.close()
            raise
        if is_keras3:
            if h5 is not None:
                h5.close()
            return keras3.load_keras3_file(path, unsafe)

    from tinyprune.tfsetup import keras

    try:
        shipped = tf_keras_shipped_classes()
        if h5 is None and path.suffix == ".keras":
            model = keras.models.load_model(target, compile=False, safe_mode=not unsafe, custom_objects=shipped)
        else:
            model = keras.models.load_model(target, compile=False, custom_objects=shipped)
    except Exception as e:  # Keras raises many types for bad files; the message is what matters
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"{path} could not be loaded by tf_keras: {msg[:200]}") from None
    finally:
        if h5 is not None:
            h5.close()
    if not getattr(model, "_is_graph_network", False) and not isinstance(model, keras.Sequential):
        raise ModelLoadError(
            f"{path} holds a subclassed model ({type(model).__name__}); tinyprune needs a "
            "Sequential or functional model: rebuild it with the functional API"
        )
    return model
