"""Keras 3 models in and out: translate a Keras 3 model to tf_keras exactly, and back.

tinyprune works on tf_keras (Keras 2) inside, because tfmot needs it; users save Keras 3
files (`model.save("m.keras")` with TensorFlow 2.16+). This module is the bridge:

* `check_keras3_config(config, source, unsafe)` refuses Lambda layers, custom classes and
  function references in a Keras 3 config read as plain JSON, before TensorFlow is imported;
* `load_keras3_file(path, unsafe)` opens a checked .keras / .h5 file with Keras 3 and
  translates it; `from_keras3(model)` translates an in-memory `keras.Model`;
  `as_tf_keras(model, data)` is what library entry points call on whatever model they get;
* `to_keras3(tf_keras_model)` translates a (pruned) tf_keras model back, and
  `save_keras3(model, path)` writes it as a Keras 3 .keras file (`KERAS3_FILE` in outputs).

A translation rebuilds the model from its config with a few rewrites (dtype policies to
names, InputLayer batch_shape, the node format, LeakyReLU negative_slope/alpha, options the
other side lacks dropped only when they are at their no-op value), copies the weights layer
by layer and is then checked: the two models' outputs must agree within `TOLERANCE` (max
abs) on random inputs, and on the user's data when the caller gives it. What cannot be
translated exactly is refused with one line naming the layer, its class and why
(`Keras3TranslationError`); a silently different model is never returned.

Keras 3 itself is imported only here (`keras3()`), after `tinyprune.tfsetup` has made
`tf.keras` tf_keras. This module does not prune, quantize or convert.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import tomllib
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyprune.errors import ModelLoadError

TOLERANCE = 1e-5  # max abs difference allowed between a model and its translation
KERAS3_FILE = "model_keras3.keras"  # the Keras 3 copy written next to model.h5
RANDOM_SAMPLES = 8  # random inputs for the translation check
DATA_SAMPLES = 256  # user samples for the check on data (first N of the training split)
_UNKNOWN_DIM = 32  # size used for an input dimension the model leaves open (None)
_BUILTINS_FILE = Path(__file__).with_name("keras3_builtins.toml")
_MODEL_CLASSES = ("Functional", "Sequential", "Model")

# Keras 3 key -> tf_keras key, per layer class (the reverse translation inverts them).
_RENAMES = {"LeakyReLU": {"negative_slope": "alpha"}, "InputLayer": {"batch_shape": "batch_input_shape"}}
# Options one side has and the other lacks, harmless at these values (besides None and the
# source class's own default).
_NO_OP_VALUES = {("data_format", "channels_last"), ("groups", 1), ("optional", False), ("ragged", False),
                 ("sparse", False), ("autocast", True), ("trainable", True), ("rms_scaling", False),
                 ("synchronized", False)}
# Activation names both sides compute identically (each checked by tests/load/test_keras3.py).
_SAME_ACTIVATIONS = {"linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "softsign",
                     "exponential", "swish", "gelu", "mish"}
_ACTIVATION_ALIASES = {"silu": "swish"}  # Keras 3 name -> tf_keras name
_DIFFERENT_ACTIVATIONS = {
    "hard_sigmoid": "Keras 3 computes hard_sigmoid as relu6(x + 3) / 6 and tf_keras as clip(0.2 x + 0.5, 0, 1) "
                    "(0.667 vs 0.700 at x = 1); build it from layers.Rescaling(1.0, offset=3.0), layers.ReLU(6.0) and layers.Rescaling(1 / 6)",
}
_OP_HINT = ("which tf_keras cannot rebuild; use the matching layer "
            "(layers.ReLU, layers.Add, layers.Multiply, layers.Rescaling for x * a + b, layers.Reshape, ...)")


class Keras3TranslationError(ModelLoadError):
    """A Keras 3 model (or a pruned model going back to Keras 3) that cannot be translated exactly."""


def _refuse(name: str, cls: str, why: str) -> Keras3TranslationError:
    return Keras3TranslationError(f"Keras 3 layer '{name}' ({cls}) cannot be translated exactly: {why}")


def _snake(cls: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(cls))


def _op_refusal(d: dict, name: str, cls: str) -> str:
    """Why a keras.ops node is refused, naming the call and what it is applied to (from the JSON alone):
    e.g. "it is a keras.ops call in the graph, keras.ops.add(output of 're_lu', 3.0), which ..."."""

    def arg(v: Any) -> str:
        if _is_tensor_ref(v):
            history = (v.get("config") or {}).get("keras_history") or ["?"]
            return f"output of '{history[0]}'"
        if isinstance(v, list):
            return "[" + ", ".join(arg(x) for x in v) + "]"
        return json.dumps(v)[:40]

    nodes = d.get("inbound_nodes") or []
    node = nodes[0] if nodes and isinstance(nodes[0], dict) else {}
    args = [arg(v) for v in node.get("args") or []]
    args += [f"{k}={arg(v)}" for k, v in (node.get("kwargs") or {}).items() if v is not None]
    module = str(d.get("module") or "keras.src.ops")
    call = f"keras.ops.{_snake(cls)}({', '.join(args)})"[:160]
    return f"it is a keras.ops call in the graph ({module}.{cls}: {call}), {_OP_HINT}"


# --------------------------------------------------------------------------- files, no TensorFlow

def is_keras3_version(version: str | None) -> bool:
    """True for a keras_version string of Keras 3.x."""
    return bool(version) and str(version).split(".")[0] == "3"


def file_keras_version(path: str | Path) -> str | None:
    """The keras_version a .keras archive or .h5 file records, or None (not a readable model file).

    Reads zip metadata.json or the HDF5 attribute only: no TensorFlow.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(8)
        if head[:2] == b"PK":
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("metadata.json")).get("keras_version")
        if head == b"\x89HDF\r\n\x1a\n":
            import h5py

            with h5py.File(path, "r") as f:
                v = f.attrs.get("keras_version")
            return v.decode() if isinstance(v, bytes) else v
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return None


def _builtins() -> dict[str, set[str]]:
    with _BUILTINS_FILE.open("rb") as f:
        data = tomllib.load(f)
    return {k: set(v) for k, v in data.items() if isinstance(v, list)}


def _is_keras_module(module: str) -> bool:
    return module == "keras" or module.startswith("keras.")


def check_keras3_config(config: dict, source: str, unsafe: bool = False) -> None:
    """Refuse a Keras 3 model config that would run code from the file, unless `unsafe`.

    Walks the parsed JSON (zip config.json or the .h5 model_config attribute): every object
    must be a Keras builtin (module `keras` / `keras.*`, registered_name None or builtin);
    Lambda layers, `__lambda__` and function references from other modules are refused.
    Objects without a module (the .h5 format) must have a builtin class name
    (keras3_builtins.toml). No TensorFlow, no keras import.
    """
    if unsafe:
        return
    known = set().union(*_builtins().values())

    def name_of(d: dict) -> str:
        cfg = d.get("config")
        return str(d.get("name") or (cfg.get("name") if isinstance(cfg, dict) else None) or "?")

    def walk(obj: Any) -> None:
        if isinstance(obj, list):
            for v in obj:
                walk(v)
            return
        if not isinstance(obj, dict):
            return
        cls = obj.get("class_name")
        if isinstance(cls, str):
            module = obj.get("module")
            registered = obj.get("registered_name")
            if cls in ("Lambda", "__lambda__"):
                raise ModelLoadError(f"{source}: layer '{name_of(obj)}' is a Lambda layer, which runs Python code "
                                     "stored in the file; load it only if you trust the file, with --unsafe-load")
            if cls == "function" and not (isinstance(module, str) and _is_keras_module(module)):
                raise ModelLoadError(f"{source}: '{name_of(obj)}' refers to the function '{obj.get('config')}' "
                                     f"from module '{module}', whose code would run at load; pass --unsafe-load "
                                     "(and make it importable) if you trust the file")
            custom = None
            if isinstance(module, str) and not _is_keras_module(module):
                custom = f"class '{cls}' from module '{module}'"
            elif isinstance(registered, str) and registered != cls and registered not in known:
                custom = f"registered class '{registered}'"
            elif module is None and not cls.startswith("__") and cls not in known:
                custom = f"class '{cls}'"
            if custom:
                raise ModelLoadError(f"{source}: layer '{name_of(obj)}' has custom {custom}, whose code would run "
                                     "at load; pass --unsafe-load (and make the class importable) if you trust "
                                     "the file")
        for v in obj.values():
            walk(v)

    walk(config)


# --------------------------------------------------------------------------- the Keras 3 import

def keras3():
    """Import and return Keras 3 (the only place tinyprune does), after tf_keras is set up."""
    import tinyprune.tfsetup  # noqa: F401  TF_USE_LEGACY_KERAS before TensorFlow starts

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import keras
    except ImportError:
        raise ModelLoadError("this is a Keras 3 model but the keras package (3.x) is not installed: "
                             "pip install 'keras>=3.10,<4'") from None
    if not is_keras3_version(keras.__version__):
        raise ModelLoadError(f"this is a Keras 3 model but the installed keras is {keras.__version__}: "
                             "pip install 'keras>=3.10,<4'")
    return keras


def is_keras3_model(obj: Any) -> bool:
    """True for a Keras 3 `keras.Model` (checked by class module, without importing keras)."""
    return any(c.__name__ == "Model" and c.__module__.startswith("keras.src.") for c in type(obj).__mro__)


# --------------------------------------------------------------------------- config translation

@dataclass(frozen=True)
class _Side:
    """One direction of translation: from `src` (a keras module) to `dst`."""

    src: Any
    dst: Any
    to_tf_keras: bool


@functools.cache
def _accepted_kwargs(cls: type) -> frozenset[str] | None:
    """Keyword arguments `cls(...)` takes (explicit parameters along the MRO + the base Layer's)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break  # this __init__ takes nothing more: the set is complete
        if klass.__name__ in ("Layer", "Operation"):  # the base layer: its **kwargs take these
            names |= {"name", "trainable", "dtype", "input_shape", "batch_input_shape", "batch_size", "input_dim"}
            break
    names.discard("self")
    return frozenset(names)


@functools.cache
def _defaults(cls: type) -> dict[str, Any]:  # read-only: shared by every caller
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        try:
            params = inspect.signature(init).parameters.values() if init else ()
        except (TypeError, ValueError):
            continue
        out.update({p.name: p.default for p in params if p.default is not inspect.Parameter.empty})
    return out


def _harmless(key: str, value: Any, defaults: dict[str, Any]) -> bool:
    if value is None or key.endswith("_initializer"):  # initializers only make new weights; these are copied
        return True
    try:
        if (key, value) in _NO_OP_VALUES:
            return True
    except TypeError:  # unhashable (a list)
        pass
    return key in defaults and defaults[key] is not None and defaults[key] == value


def _policy_name(value: Any) -> Any:
    if isinstance(value, dict):  # {"class_name": "DTypePolicy", "config": {"name": "float32"}}
        return (value.get("config") or {}).get("name", "float32")
    return value


def _activation(value: Any, side: _Side, name: str, cls: str) -> Any:
    if not isinstance(value, str):
        raise _refuse(name, cls, f"its activation {json.dumps(value)[:80]} is not a builtin activation name")
    if value in _DIFFERENT_ACTIVATIONS:
        raise _refuse(name, cls, f"activation '{value}': {_DIFFERENT_ACTIVATIONS[value]}")
    if side.to_tf_keras:
        value = _ACTIVATION_ALIASES.get(value, value)
    if value not in _SAME_ACTIVATIONS:
        raise _refuse(name, cls, f"activation '{value}' is not one both Keras versions compute identically "
                                 f"(supported: {', '.join(sorted(_SAME_ACTIVATIONS | set(_ACTIVATION_ALIASES)))})")
    return value


def _nested_object(value: dict, key: str, side: _Side, name: str, cls: str) -> dict:
    """An initializer / regularizer / constraint config, rewritten for the other side."""
    kind = key.rsplit("_", 1)[-1]
    module = {"initializer": "initializers", "regularizer": "regularizers", "constraint": "constraints"}.get(kind)
    obj_cls = value.get("class_name")
    target = getattr(getattr(side.dst, module), obj_cls, None) if module else None
    source = getattr(getattr(side.src, module), obj_cls, None) if module else None
    if target is None or not isinstance(target, type):
        if kind == "initializer":
            return None  # only used to create new weights: the weights are copied, the default is fine
        raise _refuse(name, cls, f"its {key} {obj_cls} has no equivalent on the other side")
    cfg = dict(value.get("config") or {})
    accepted = _accepted_kwargs(target) or set(cfg)
    defaults = _defaults(source) if isinstance(source, type) else {}
    for k in [k for k in cfg if k not in accepted]:
        v = cfg.pop(k)
        if kind != "initializer" and not _harmless(k, v, defaults):
            raise _refuse(name, cls, f"its {key} {obj_cls} option {k}={v!r} has no equivalent on the other side")
    return {"class_name": obj_cls, "config": cfg}


def _layer_config(cls: str, cfg: dict, side: _Side, name: str) -> dict:
    target = getattr(side.dst.layers, cls, None)
    source = getattr(side.src.layers, cls, None)
    if not isinstance(target, type):
        where = "tf_keras" if side.to_tf_keras else "Keras 3"
        raise _refuse(name, cls, f"{where} has no layer of this class")
    cfg = dict(cfg)
    renames = {k: v for k, v in _RENAMES.get(cls, {}).items()}
    if not side.to_tf_keras:
        renames = {v: k for k, v in renames.items()}
    for old, new in renames.items():
        if old in cfg:
            cfg[new] = cfg.pop(old)
    cfg["dtype"] = _policy_name(cfg.get("dtype"))
    if cfg["dtype"] is None:
        cfg.pop("dtype")
    for key, value in list(cfg.items()):
        if key in ("activation", "recurrent_activation"):
            cfg[key] = _activation(value, side, name, cls)
        elif isinstance(value, dict) and "class_name" in value:
            cfg[key] = _nested_object(value, key, side, name, cls)
    accepted = _accepted_kwargs(target) or set(cfg)
    defaults = _defaults(source) if isinstance(source, type) else {}
    for key in [k for k in cfg if k not in accepted]:
        value = cfg.pop(key)
        if not _harmless(key, value, defaults):
            where = "tf_keras" if side.to_tf_keras else "Keras 3"
            raise _refuse(name, cls, f"option {key}={value!r} has no {where} equivalent")
    return cfg


def _is_tensor_ref(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _node_to_tf(node: Any, name: str, cls: str) -> list:
    """Keras 3 node {"args": [tensor or [tensors]], "kwargs": {...}} -> tf_keras [[layer, node, tensor, kwargs]]."""
    if isinstance(node, list):  # already the tf_keras format (a Keras 3 .h5 of an old model)
        return node
    args, kwargs = node.get("args", []), {k: v for k, v in (node.get("kwargs") or {}).items() if v is not None}
    if len(args) != 1:
        raise _refuse(name, cls, f"it is called with {len(args)} positional arguments; tf_keras layers take one")
    arg = args[0]
    tensors = [arg] if _is_tensor_ref(arg) else arg
    if not isinstance(tensors, list) or not tensors or not all(_is_tensor_ref(t) for t in tensors):
        raise _refuse(name, cls, "it is called on something other than a tensor or a list of tensors "
                                 f"({json.dumps(arg)[:80]})")
    if any(_is_tensor_ref(v) or (isinstance(v, (list, dict)) and "__keras_tensor__" in json.dumps(v))
           for v in kwargs.values()):
        raise _refuse(name, cls, "it takes a tensor as a keyword argument")
    return [[*t["config"]["keras_history"], kwargs] for t in tensors]


def _triples(value: Any, name: str) -> list:
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [value]
    if not isinstance(value, list):
        raise _refuse(name, "Functional", "its inputs or outputs are a dict or nested structure; give a list")
    return value


def _layer_dict(d: dict, side: _Side) -> dict:
    cls = d.get("class_name", "?")
    cfg = d.get("config") if isinstance(d.get("config"), dict) else {}
    name = str(d.get("name") or cfg.get("name") or "?")
    module = d.get("module") or ""
    if cls in ("Lambda", "TFOpLambda", "SlicingOpLambda"):
        raise _refuse(name, cls, "Lambda and op layers hold code for one Keras version only; "
                                 "replace them with builtin layers")
    if module.startswith("keras.src.ops"):
        raise _refuse(name, cls, _op_refusal(d, name, cls))
    if module and not _is_keras_module(module):
        raise _refuse(name, cls, f"it is a custom class (module '{module}') that only exists for Keras 3")
    if cls in _MODEL_CLASSES:
        new_cls, new_cfg = _model_config(cls, cfg, side)
    else:
        new_cls, new_cfg = cls, _layer_config(cls, cfg, side, name)
    out: dict[str, Any] = {"class_name": new_cls, "config": new_cfg, "name": name}
    if "inbound_nodes" in d:
        out["inbound_nodes"] = ([_node_to_tf(n, name, cls) for n in d["inbound_nodes"]] if side.to_tf_keras
                                else d["inbound_nodes"])
    return out


def _model_config(cls: str, cfg: dict, side: _Side) -> tuple[str, dict]:
    name = str(cfg.get("name", "?"))
    layers = [_layer_dict(d, side) for d in cfg.get("layers", [])]
    if cls == "Sequential":
        out = {"name": name, "layers": layers}
        if cfg.get("build_input_shape") is not None:
            out["build_input_shape"] = cfg["build_input_shape"]
        return "Sequential", out
    if "input_layers" not in cfg:
        raise _refuse(name, cls, "a subclassed model has no layer graph to translate; "
                                 "rebuild it with the functional API")
    ins, outs = _triples(cfg["input_layers"], name), _triples(cfg["output_layers"], name)
    # A nested model that starts with an InputLayer has one node of its own in tf_keras (node 0);
    # tf_keras numbers the outer calls from 1 where Keras 3 numbers them from 0.
    nested = {d["name"] for d in layers if d["class_name"] == "Functional" or (
        d["class_name"] == "Sequential" and d["config"]["layers"]
        and d["config"]["layers"][0]["class_name"] == "InputLayer")}
    if nested:
        delta = 1 if side.to_tf_keras else -1

        def shift(ref: list) -> list:
            return [ref[0], ref[1] + delta, *ref[2:]] if ref[0] in nested else ref

        for d in layers:
            d["inbound_nodes"] = [[shift(ref) for ref in node] for node in d.get("inbound_nodes", [])]
        outs = [shift(ref) for ref in outs]
    if not side.to_tf_keras:  # Keras 3 keeps a single input / output unwrapped (not a list of one)
        ins, outs = (ins[0] if len(ins) == 1 else ins), (outs[0] if len(outs) == 1 else outs)
    return "Functional", {"name": name, "layers": layers, "input_layers": ins, "output_layers": outs}


# --------------------------------------------------------------------------- weights and the check

def _flat_layers(model) -> list:
    """Every non-model layer of `model`, nested models expanded, in order."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and type(layer).__name__ in _MODEL_CLASSES:
            out.extend(_flat_layers(layer))
        else:
            out.append(layer)
    return out


def _copy_weights(src, dst) -> None:
    targets = {layer.name: layer for layer in _flat_layers(dst)}
    for layer in _flat_layers(src):
        weights = layer.get_weights()
        other = targets.get(layer.name)
        if other is None:
            if weights:
                raise _refuse(layer.name, type(layer).__name__, "no layer of that name in the rebuilt model")
            continue
        mine = other.get_weights()
        if [w.shape for w in mine] != [w.shape for w in weights]:
            raise _refuse(layer.name, type(layer).__name__,
                          f"its weights {[tuple(w.shape) for w in weights]} do not match the rebuilt layer's "
                          f"{[tuple(w.shape) for w in mine]}")
        if weights:
            other.set_weights(weights)


def _inputs_for(model, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for t in model.inputs:
        shape = [RANDOM_SAMPLES] + [_UNKNOWN_DIM if d is None else int(d) for d in tuple(t.shape)[1:]]
        dtype = np.dtype(getattr(t.dtype, "name", t.dtype))
        if np.issubdtype(dtype, np.integer):
            out.append(rng.integers(0, 2, size=shape).astype(dtype))
        else:
            out.append(rng.standard_normal(shape).astype(np.float32))
    return out


def _outputs(model, xs: list[np.ndarray]) -> list[np.ndarray]:
    y = model(xs if len(xs) > 1 else xs[0], training=False)
    ys = y if isinstance(y, (list, tuple)) else [y]
    return [np.asarray(v, dtype=np.float64) for v in ys]


def max_difference(a, b, xs: list[np.ndarray]) -> float:
    """Max abs difference between the outputs of models `a` and `b` on inputs `xs`."""
    ya, yb = _outputs(a, xs), _outputs(b, xs)
    if [v.shape for v in ya] != [v.shape for v in yb]:
        return float("inf")
    return max(float(np.max(np.abs(u - v))) if u.size else 0.0 for u, v in zip(ya, yb))


def _first_different_layer(src, dst, xs: list[np.ndarray]) -> str:
    """Name the first top-level layer whose outputs differ (for the refusal message)."""
    try:
        k = keras3() if is_keras3_model(src) else None
        from tinyprune.tfsetup import keras as tk

        def probe(model, lib, name):
            return lib.Model(model.inputs, model.get_layer(name).output)

        for layer in src.layers:
            if type(layer).__name__ == "InputLayer":
                continue
            a = probe(src, k if k else tk, layer.name)
            b = probe(dst, tk if k else keras3(), layer.name)
            if max_difference(a, b, xs) > TOLERANCE:
                return f"first at layer '{layer.name}' ({type(layer).__name__})"
    except Exception:  # the probe is a diagnostic; the refusal stands without it
        pass
    return "at an unidentified layer"


def _verify(src, dst, xs: list[np.ndarray], what: str) -> float:
    diff = max_difference(src, dst, xs)
    if not diff <= TOLERANCE:
        where = _first_different_layer(src, dst, xs)
        raise Keras3TranslationError(f"{what}: the translated model's outputs differ from the original's by "
                                     f"{diff:.3g} (> {TOLERANCE:g}), {where}; refusing to continue with a "
                                     "different model")
    return diff


# --------------------------------------------------------------------------- public API

@dataclass
class _Origin:
    """What a translated tf_keras model remembers about its Keras 3 original."""

    original: Any  # the keras.Model
    random_difference: float
    data_difference: float | None = None


_ORIGINS: weakref.WeakKeyDictionary[Any, _Origin] = weakref.WeakKeyDictionary()


def from_keras3(model, x: np.ndarray | None = None):
    """Translate an in-memory Keras 3 `keras.Model` to an equivalent tf_keras model.

    Checked: outputs equal within TOLERANCE on random inputs (and on `x` when given).
    Raises Keras3TranslationError naming the layer that cannot be translated exactly.
    """
    from tinyprune.tfsetup import keras as tk

    k = keras3()
    if not is_keras3_model(model):
        raise Keras3TranslationError(f"from_keras3 takes a Keras 3 keras.Model, got {type(model).__name__}")
    builtin = type(model).__module__.startswith("keras.src.")
    bases = {c.__name__ for c in type(model).__mro__ if c.__module__.startswith("keras.src.")}
    cls = next((c for c in ("Sequential", "Functional") if builtin and c in bases), None)
    if cls is None:
        raise _refuse(model.name, type(model).__name__, "a subclassed model has no layer graph to translate; "
                                                        "rebuild it with the functional API")
    try:
        has_graph = bool(model.layers) and bool(model.inputs)
    except (AttributeError, ValueError):  # an unbuilt Sequential has no inputs yet
        has_graph = False
    if not has_graph:
        raise _refuse(model.name, cls, "the model has no layers or was never built; give it a keras.Input "
                                       "(or call it once) before saving")
    try:
        config = model.get_config()
    except Exception as e:  # a subclassed model without get_config
        raise _refuse(model.name, type(model).__name__, f"its config cannot be read ({str(e)[:120]})") from None
    new_cls, new_cfg = _model_config(cls, config, _Side(k, tk, True))
    try:
        built = (tk.Sequential if new_cls == "Sequential" else tk.Model).from_config(new_cfg)
    except Exception as e:
        for d in new_cfg["layers"]:  # name the layer whose config tf_keras rejects
            if d["class_name"] not in _MODEL_CLASSES:
                try:
                    tk.layers.deserialize({"class_name": d["class_name"], "config": d["config"]})
                except Exception as e2:
                    raise _refuse(d["name"], d["class_name"],
                                  f"tf_keras rejects its config ({str(e2).splitlines()[0][:160]})") from None
        raise Keras3TranslationError(f"Keras 3 model '{model.name}' could not be rebuilt in tf_keras: "
                                     f"{str(e).splitlines()[0][:200]}") from None
    _copy_weights(model, built)
    diff = _verify(model, built, _inputs_for(model), f"Keras 3 model '{model.name}'")
    _ORIGINS[built] = _Origin(model, diff)
    if x is not None:
        check_on_data(built, x)
    return built


def check_on_data(model, x: np.ndarray) -> float | None:
    """Check a translated model against its Keras 3 original on the user's data (first DATA_SAMPLES).

    Returns the max abs difference, or None when `model` was not translated from Keras 3.
    """
    origin = _ORIGINS.get(model)
    if origin is None:
        return None
    if origin.data_difference is None:
        xs = x if isinstance(x, (list, tuple)) else [x]
        xs = [np.asarray(v[:DATA_SAMPLES]) for v in xs]
        origin.data_difference = _verify(origin.original, model, xs, f"Keras 3 model '{model.name}' on your data")
    return origin.data_difference


def as_tf_keras(model, data: Any = None):
    """The tf_keras model tinyprune works on: a Keras 3 model is translated (and checked),
    a tf_keras model is returned as is. `data` (a Dataset or an array) adds the check on
    the user's data for a Keras 3 model. Library entry points call this on their input."""
    x = getattr(data, "x_train", data)
    if isinstance(x, tuple):  # an (x, y) pair
        x = x[0]
    if is_keras3_model(model):
        return from_keras3(model, x)
    if x is not None and model in _ORIGINS:
        check_on_data(model, x)
    return model


def check_file(path: Path) -> None:
    """Refuse, before TensorFlow, a Keras 3 file whose top-level object is not a Sequential or
    functional model (a single layer, a subclassed model)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                config = json.loads(z.read("config.json"))
        else:
            import h5py

            with h5py.File(path, "r") as f:
                raw = f.attrs["model_config"]
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ModelLoadError(f"{path} is not a readable Keras 3 model file ({str(e)[:120]}); re-save it with "
                             "model.save('m.keras')") from None
    cls = config.get("class_name") if isinstance(config, dict) else None
    if cls not in _MODEL_CLASSES:
        raise ModelLoadError(f"{path} holds a {cls or 'non-model object'}, not a Sequential or functional Keras "
                             "model: save the model (keras.Model) with model.save('m.keras'); a subclassed "
                             "model must be rebuilt with the functional API")
    _precheck(config, path)


def _precheck(config: Any, path: Path) -> None:
    """The refusals the JSON alone can decide (keras.ops nodes, activations that differ), before TensorFlow."""
    side = _Side(None, None, True)
    if isinstance(config, list):
        for v in config:
            _precheck(v, path)
    elif isinstance(config, dict):
        cfg = config.get("config")
        if isinstance(config.get("class_name"), str) and isinstance(cfg, dict):
            cls, name = config["class_name"], str(config.get("name") or cfg.get("name") or "?")
            try:
                if str(config.get("module") or "").startswith("keras.src.ops"):
                    raise _refuse(name, cls, _op_refusal(config, name, cls))
                for key in ("activation", "recurrent_activation"):
                    if isinstance(cfg.get(key), str):
                        _activation(cfg[key], side, name, cls)
            except Keras3TranslationError as e:
                raise Keras3TranslationError(f"{path}: {e}") from None
        for v in config.values():
            _precheck(v, path)


def load_keras3_file(path: str | Path, unsafe: bool = False):
    """Open a Keras 3 .keras / .h5 file (already checked by check_keras3_config) and translate it."""
    path = Path(path)
    check_file(path)
    k = keras3()
    try:
        if path.suffix == ".keras" or zipfile.is_zipfile(path):
            model = k.saving.load_model(path, compile=False, safe_mode=not unsafe)
        else:
            model = k.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for bad files; the message is what matters
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"{path} could not be loaded by Keras 3: {msg[:200]}") from None
    try:
        return from_keras3(model)
    except Keras3TranslationError as e:
        raise Keras3TranslationError(f"{path}: {e}") from None


def came_from_keras3(model) -> bool:
    """True when `model` (tf_keras) is the translation of a Keras 3 model."""
    return model in _ORIGINS


def wants_keras3(*models, report: dict | None = None) -> bool:
    """Should a writer add the Keras 3 copy? Yes when a model was translated from Keras 3 or
    the report's input file ("model") is a Keras 3 file."""
    if any(m is not None and came_from_keras3(m) for m in models):
        return True
    path = (report or {}).get("model")
    return bool(path) and Path(str(path)).is_file() and is_keras3_version(file_keras_version(path))


def to_keras3(model):
    """Translate a tf_keras model (e.g. a pruned one) to an equivalent Keras 3 `keras.Model`.

    Checked: outputs equal within TOLERANCE on random inputs. Raises Keras3TranslationError.
    """
    from tinyprune.tfsetup import keras as tk

    k = keras3()
    cls = "Sequential" if isinstance(model, tk.Sequential) else "Functional"
    new_cls, cfg = _model_config(cls, model.get_config(), _Side(tk, k, False))
    try:
        built = (k.Sequential if new_cls == "Sequential" else k.Model).from_config(cfg)
    except Exception as e:
        raise Keras3TranslationError(f"model '{model.name}' could not be rebuilt in Keras 3: "
                                     f"{str(e).splitlines()[0][:200]}") from None
    _copy_weights(model, built)
    _verify(model, built, _inputs_for(model), f"model '{model.name}' translated back to Keras 3")
    return built


def save_keras3(model, path: str | Path) -> Path:
    """Write tf_keras `model` as a Keras 3 .keras file that keras.saving.load_model opens."""
    path = Path(path)
    to_keras3(model).save(path)
    return path


def _generate_builtins() -> str:  # pragma: no cover - run by hand when keras is upgraded
    k = keras3()
    lines = [f"# Class names of Keras {k.__version__} builtins (dir() of each keras module), used by",
             "# tinyprune.load.keras3.check_keras3_config to tell builtin from custom classes without",
             "# importing keras. Regenerate: python -m tinyprune.load.keras3 > tinyprune/load/keras3_builtins.toml"]
    for mod in ("layers", "initializers", "regularizers", "constraints", "activations", "optimizers", "losses",
                "metrics", "dtype_policies"):
        names = sorted(n for n in dir(getattr(k, mod)) if n[:1].isupper())
        lines.append(f"{mod} = {json.dumps(names)}")
    lines.append(f"models = {json.dumps(['Functional', 'Model', 'Sequential'])}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(_generate_builtins(), end="")
