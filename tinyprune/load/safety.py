"""Decide whether a parsed Keras model config is safe to deserialize: a pure walk over data.

`check_config(config, source)` walks the whole config (dicts and lists, every depth) and raises
`ModelLoadError` naming the layer and class at the first thing that would run code from the file
or that it does not know:

- a `Lambda` layer, or any dict that carries stored Python (`function_type`, `__lambda__`);
- a class name that is not in the known-safe set (`safe_classes.toml` next to this module: THE
  one place that set lives);
- a `module` that is not Keras's own (`keras`, `keras.*`, `tf_keras`, `tf_keras.*`), as Keras 3
  writes it; a `registered_name` other than the class's own (a custom registered object);
- a `TFOpLambda` / `SlicingOpLambda` whose TensorFlow function is not plain tensor maths (such a
  layer may call any `tf.*` API, `tf.io.write_file` included).

Both dialects are accepted: tf_keras (`{"class_name", "config"}`) and Keras 3 (with `module`,
`registered_name`, `build_config`). The function imports no TensorFlow and only reads its input.
Where the config comes from (the very bytes tf_keras will open) is `tinyprune.load.model`'s job.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

from tinyprune.errors import ModelLoadError

SAFE_CLASSES_FILE = Path(__file__).with_name("safe_classes.toml")
_CODE_KEYS = ("function_type", "output_shape_type")  # tf_keras Lambda: marshalled bytecode follows
_CODE_CLASSES = {"Lambda", "__lambda__", "function", "__typespec__"}
_MAX_DEPTH = 200  # deeper than any real model; refuses a config built to exhaust the stack


@functools.cache
def safe_sets() -> tuple[frozenset[str], frozenset[str], tuple[str, ...]]:
    """(safe class names, safe TFOpLambda function names, safe TFOpLambda name prefixes)."""
    table = tomllib.loads(SAFE_CLASSES_FILE.read_text(encoding="utf-8"))
    shipped = {n for names in table.get("tf_keras_shipped", {}).values() for n in names}
    classes = frozenset(table["layers"]) | frozenset(table["models"]) | frozenset(table["op_layers"]) \
        | frozenset(table["objects"]) | frozenset(shipped)
    return classes - _CODE_CLASSES, frozenset(table["tf_ops"]["names"]), tuple(table["tf_ops"]["prefixes"])


@functools.cache
def type_specs() -> frozenset[str]:
    """The TensorFlow type specs a SavedModel's metadata may name (safe_classes.toml `type_specs`)."""
    return frozenset(tomllib.loads(SAFE_CLASSES_FILE.read_text(encoding="utf-8")).get("type_specs", []))


def tf_keras_shipped() -> dict[str, list[str]]:
    """{tf_keras module: [class names]} of the layer classes tf_keras ships outside keras.layers."""
    table = tomllib.loads(SAFE_CLASSES_FILE.read_text(encoding="utf-8"))
    return {module: list(names) for module, names in table.get("tf_keras_shipped", {}).items()}


def _is_keras_module(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in ("keras", "tf_keras"))


def _layer_name(d: dict, fallback: str) -> str:
    cfg = d.get("config")
    name = cfg.get("name") if isinstance(cfg, dict) else None
    return str(name) if isinstance(name, str) else fallback


def _refuse(source: str, where: str, what: str) -> ModelLoadError:
    return ModelLoadError(f"{source}: {where} {what}; tinyprune refuses it because loading it could run code "
                          "from the file. Pass --unsafe-load only if you trust the file (and its code is importable)")


def check_config(config: Any, source: str = "the model") -> None:
    """Raise ModelLoadError if `config` (a parsed Keras model config) names anything unsafe.

    `config` is the JSON-decoded model config (tf_keras or Keras 3 dialect), or a list of such
    (e.g. every node of a SavedModel's keras_metadata.pb). Returns None when it is safe.
    """
    classes, op_names, op_prefixes = safe_sets()
    stack: list[tuple[Any, str, int]] = [(config, "the model", 0)]
    while stack:
        node, layer, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise ModelLoadError(f"{source}: the model config is nested more than {_MAX_DEPTH} levels deep; "
                                 "it is not a config Keras writes")
        if isinstance(node, list):
            stack.extend((v, layer, depth + 1) for v in node)
            continue
        if not isinstance(node, dict):
            continue
        for key in _CODE_KEYS:
            if key in node:
                raise _refuse(source, f"layer '{layer}'", f"stores Python code ('{key}')")
        if "class_name" in node:
            cls = node["class_name"]
            layer = _layer_name(node, layer)
            if not isinstance(cls, str):
                raise _refuse(source, f"layer '{layer}'", f"has a class name that is not a string ({cls!r})")
            if cls in _CODE_CLASSES:
                raise _refuse(source, f"layer '{layer}'", f"is a {cls} layer, which runs Python code stored in the file")
            if cls == "TypeSpec":  # a SavedModel's input signature: only plain tensor specs
                if node.get("type_spec") not in type_specs():
                    raise _refuse(source, f"layer '{layer}'", f"stores type spec {node.get('type_spec')!r}, which is "
                                  "not a plain tensor spec")
            elif cls not in classes:
                raise _refuse(source, f"layer '{layer}'", f"has custom class '{cls}' (not a built-in Keras class), "
                              "whose code would run at load")
            module = node.get("module")
            if module is not None and not (isinstance(module, str) and _is_keras_module(module)):
                raise _refuse(source, f"layer '{layer}'", f"names module {module!r}, which is not Keras's own")
            registered = node.get("registered_name")
            if registered is not None and registered != cls:
                raise _refuse(source, f"layer '{layer}'", f"is a registered custom object {registered!r}")
            if cls in ("TFOpLambda", "SlicingOpLambda"):
                cfg = node.get("config")
                fn = cfg.get("function") if isinstance(cfg, dict) else None
                if not isinstance(fn, str) or not (fn in op_names or fn.startswith(op_prefixes)):
                    raise _refuse(source, f"layer '{layer}'", f"calls TensorFlow function {fn!r}, which is not "
                                  "plain tensor maths")
        stack.extend((v, layer, depth + 1) for v in node.values())
